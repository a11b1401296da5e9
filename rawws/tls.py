"""TLS contexts from command-line flags: ``--certfile``, ``--keyfile``, ``--ca-certs`` on the
servers (``rawws serve``, ``rawws echo``), ``--ca-certs`` (and a client certificate) on the
clients (``rawws client``, ``rawws chat``). Library users pass their own
:class:`ssl.SSLContext` as ``ssl=`` and need none of this.

Owns: turning those flags into a context, and every way they can be wrong into one
:class:`TLSConfigError` (a ``ValueError``) whose message fits on one line, so that the CLIs exit
with status 2 and that line, never a traceback and never a server that silently runs without
TLS. Imports nothing from rawws.

Choices, for a server facing the internet without a proxy:

* TLS 1.2 at least (RFC 8996 deprecates 1.0 and 1.1; RFC 9325 §3.1.1); the ``ssl`` module's
  default ciphers otherwise (Python's secure defaults, maintained with OpenSSL).
* ``--ca-certs`` on a server means *client certificates are required* and must chain to those
  CAs (``CERT_REQUIRED``): asking for a certificate and accepting its absence would be an
  open door that looks closed.
* A private key protected by a passphrase is refused with a clear message rather than
  prompting on the terminal (a server started by a service manager would hang there).
"""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path
from typing import Any

__all__ = ["TLSConfigError", "add_client_flags", "add_server_flags", "client_context",
           "server_context"]


class TLSConfigError(ValueError):
    """The TLS flags cannot make a working context; the message says why, on one line."""


def _encrypted_key() -> str:
    raise TLSConfigError("the private key is encrypted with a passphrase: give an "
                         "unencrypted key file (and protect it with file permissions)")


def _check_file(path: str | Path, what: str) -> None:
    file = Path(path)
    if not file.is_file():
        raise TLSConfigError(f"{what} {str(path)!r} does not exist or is not a file")
    try:
        with file.open("rb"):
            pass
    except OSError as exc:
        raise TLSConfigError(f"{what} {str(path)!r} cannot be read: {exc.strerror}") from None


def _load_chain(context: ssl.SSLContext, certfile: str | Path,
                keyfile: str | Path | None) -> None:
    _check_file(certfile, "certificate file")
    if keyfile is not None:
        _check_file(keyfile, "key file")
    try:
        context.load_cert_chain(certfile, keyfile, password=_encrypted_key)
    except TLSConfigError:
        raise
    except ssl.SSLError as exc:
        detail = exc.reason or exc.strerror or str(exc)
        hint = "" if keyfile is not None else " (no --keyfile: does the certificate file " \
                                                "hold the key too?)"
        raise TLSConfigError(f"cannot load the certificate {str(certfile)!r}"
                             + (f" with the key {str(keyfile)!r}" if keyfile else "")
                             + f": {detail}{hint}") from None
    except OSError as exc:
        raise TLSConfigError(f"cannot load the certificate: {exc.strerror or exc}") from None


def _load_cas(context: ssl.SSLContext, ca_certs: str | Path) -> None:
    _check_file(ca_certs, "CA file")
    try:
        context.load_verify_locations(cafile=ca_certs)
    except (ssl.SSLError, OSError, ValueError) as exc:
        detail = getattr(exc, "reason", None) or str(exc)
        raise TLSConfigError(f"cannot load the CA certificates {str(ca_certs)!r}: "
                             f"{detail}") from None
    if not context.get_ca_certs():
        raise TLSConfigError(f"the CA file {str(ca_certs)!r} holds no certificate")


def server_context(*, certfile: str | Path | None, keyfile: str | Path | None = None,
                   ca_certs: str | Path | None = None) -> ssl.SSLContext | None:
    """The server's context: None without ``certfile`` (plain TCP) unless another TLS flag
    was given, which is an error (it would otherwise be silently ignored)."""
    if certfile is None:
        given = [flag for flag, value in (("--keyfile", keyfile), ("--ca-certs", ca_certs))
                 if value is not None]
        if given:
            raise TLSConfigError(f"{' and '.join(given)} without --certfile: TLS needs the "
                                 "server's certificate")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, certfile, keyfile)
    if ca_certs is not None:
        _load_cas(context, ca_certs)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(*, ca_certs: str | Path | None = None, certfile: str | Path | None = None,
                   keyfile: str | Path | None = None) -> ssl.SSLContext | None:
    """The client's context for ``wss://``: the system's trusted CAs, or only ``ca_certs``
    when given; a client certificate with ``certfile``. None when no flag was given (the
    client then uses a default context for ``wss://``)."""
    if ca_certs is None and certfile is None:
        if keyfile is not None:
            raise TLSConfigError("--keyfile without --certfile")
        return None
    if ca_certs is not None:
        # Only these CAs (the system's are not loaded): a private CA means "this server".
        # PROTOCOL_TLS_CLIENT checks the certificate and the host name.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _load_cas(context, ca_certs)
    else:
        context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile is not None:
        _load_chain(context, certfile, keyfile)
    elif keyfile is not None:
        raise TLSConfigError("--keyfile without --certfile")
    return context


def add_server_flags(group: argparse.ArgumentParser | Any) -> None:
    """``--certfile`` / ``--keyfile`` / ``--ca-certs`` for a server command (a parser or an
    argument group); pass the values to :func:`server_context`."""
    group.add_argument("--certfile", metavar="PEM",
                       help="serve TLS (wss://, https://) with this certificate chain (PEM)")
    group.add_argument("--keyfile", metavar="PEM",
                       help="its private key, if not in --certfile (unencrypted)")
    group.add_argument("--ca-certs", metavar="PEM",
                       help="require client certificates signed by these CAs")


def add_client_flags(parser: argparse.ArgumentParser | Any) -> None:
    """``--ca-certs`` / ``--certfile`` / ``--keyfile`` for a client command; pass the values
    to :func:`client_context`."""
    parser.add_argument("--ca-certs", metavar="PEM",
                        help="for wss://: trust only these CAs (default: the system's)")
    parser.add_argument("--certfile", metavar="PEM",
                        help="for wss://: present this client certificate")
    parser.add_argument("--keyfile", metavar="PEM",
                        help="its private key, if not in --certfile")
