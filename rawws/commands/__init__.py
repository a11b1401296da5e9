"""The command line's own subcommands (``rawws client``, ``rawws echo``) and what every
subcommand shares: a help formatter that shows every default, and one-line descriptions of
the ways a connection can fail.

Each subcommand module exposes ``add_parser(subparsers)``; :mod:`rawws.__main__` only
registers them. Exit statuses, everywhere: 0 success, 1 a runtime failure (one line on
stderr), 2 a usage or configuration error (one line on stderr), 130 interrupted (Ctrl+C).
``docs/cli.md`` is the reference.
"""

from __future__ import annotations

import argparse
import copy
import socket
import ssl
import urllib.parse
from typing import Any, NoReturn

from ..errors import InvalidHandshake, InvalidStatus, InvalidURI

__all__ = ["USAGE", "DefaultsHelpFormatter", "OneLineParser", "describe_connect_error",
           "listen_error"]

#: Exit status of a usage or configuration error (argparse's own).
USAGE = 2


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` shows the default of every option that has one, help text or not."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" not in text and action.option_strings
                and action.default not in (None, False, argparse.SUPPRESS, [])):
            text += " (default: %(default)s)"
        return text.strip()

    def add_argument(self, action: argparse.Action) -> None:
        if (action.help is None and action.option_strings
                and action.default not in (None, False, argparse.SUPPRESS, [])):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        super().add_argument(action)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (status 2), pointing at
    ``--help`` instead of printing the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {message} (--help shows the usage)\n")


def _where(uri: str) -> str:
    try:
        parts = urllib.parse.urlsplit(uri)
        host = parts.hostname or "?"
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError:
        return uri
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe_connect_error(exc: BaseException, uri: str, open_timeout: float | None) -> str:
    """One line for a failed connection attempt to ``uri``: what failed and where, no
    traceback (the HTTP status and the start of the body text for a refused handshake)."""
    where = _where(uri)
    if isinstance(exc, InvalidStatus):
        body = exc.body[:300].decode("utf-8", "replace").strip().splitlines()
        detail = f": {body[0]}" if body else ""
        return (f"the server at {where} refused the WebSocket handshake: "
                f"HTTP {exc.status_code} {exc.reason}{detail}")
    if isinstance(exc, InvalidURI):
        return str(exc)
    if isinstance(exc, InvalidHandshake):
        return f"invalid handshake with {where}: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS with {where}: certificate verify failed: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        host = where.rpartition(":")[0]
        return f"cannot resolve {host}: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {where}: connection refused (is the server running?)"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} within {open_timeout} s"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return f"cannot connect to {where}: {exc}"


def listen_error(exc: OSError, host: Any, port: Any) -> str:
    """One line for a server that cannot listen (a port in use, an address not here)."""
    reason = exc.strerror or str(exc)
    if "error while attempting to bind" in str(exc):
        reason = str(exc).rpartition("): ")[2] or reason
    return f"cannot listen on {host}:{port}: {reason}"
