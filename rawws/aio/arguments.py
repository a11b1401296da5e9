"""Arguments of :func:`~rawws.aio.server.serve` and :func:`~rawws.aio.client.connect` in the
shapes websockets accepts, turned into rawws' settings.

Owns: the ``(high, low)`` and ``(message, fragment)`` tuples, origin lists with compiled
patterns, telling a two-argument hook from a one-argument one, what a handshake hook may
return (websockets' legacy tuple included), refusing an unbounded close, and the
``host:port`` form of an address in logs. Does not own the settings' meaning (the server,
the client and the connection do). No asyncio here: the threaded API (rawws.sync) uses it.
"""

from __future__ import annotations

import base64
import inspect
import logging
import re
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, cast

from ..sansio.handshake import OriginPolicy
from ..sansio.http11 import Headers, Response

__all__ = [
    "Origins",
    "basic_authorization",
    "check_close_timeout",
    "format_address",
    "high_water",
    "hook_response",
    "origin_policy",
    "positional_arity",
]


def format_address(address: Any) -> str:
    """``host:port`` (``[host]:port`` for IPv6), or the Unix socket path."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address) if address else "-"


#: websockets' origins: exact strings, compiled patterns (full match), None for "no Origin
#: header"; or rawws' predicate.
Origins = Sequence["str | re.Pattern[str] | None"] | Callable[[str | None], bool]


def positional_arity(function: Callable[..., Any]) -> int:
    """How many positional arguments ``function`` takes (a ``*args`` counts as many)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 1
    count = 0
    for parameter in parameters:
        if parameter.kind is parameter.VAR_POSITIONAL:
            return 2**16
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def origin_policy(origins: Origins | None) -> OriginPolicy | None:
    """rawws' policy for websockets' list of origins, which may hold compiled patterns."""
    if origins is None or callable(origins):
        return origins
    allowed = list(origins)
    if not any(isinstance(origin, re.Pattern) for origin in allowed):
        return cast(OriginPolicy, allowed)

    def matches(origin: str | None) -> bool:
        for candidate in allowed:
            if isinstance(candidate, re.Pattern):
                if origin is not None and candidate.fullmatch(origin):
                    return True
            elif candidate == origin:
                return True
        return False

    return matches


def high_water(limit: int | tuple[int | None, int | None] | None) -> int | None:
    """websockets' ``(high, low)`` pair: rawws takes the high-water mark (its low-water mark is
    always a quarter of it)."""
    return limit[0] if isinstance(limit, tuple) else limit


def check_close_timeout(close_timeout: float | None) -> float:
    if close_timeout is None or not close_timeout >= 0:
        # Fail closed: a close that may wait forever lets a silent peer hold the connection.
        raise ValueError(f"close_timeout must be a number of seconds >= 0, not "
                         f"{close_timeout!r} (rawws always bounds the closing handshake)")
    return close_timeout


def hook_response(hook: str, value: object,
                  logger: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> Response:
    """What ``process_request`` / ``process_response`` returned, as the response to send: a
    Response, or a clear error.

    websockets' legacy API returned ``(status, headers, body)``: it is answered as meant, with
    a warning, rather than left to fail (or to hang the client until a timeout).
    """
    if isinstance(value, Response):
        return value
    if isinstance(value, tuple) and len(value) == 3:
        status, headers, body = value
        logger.warning(
            "%s returned a (status, headers, body) tuple, websockets' legacy API: answered as "
            "HTTP %s; return connection.respond(status, text) or a Response instead",
            hook, int(status))
        return Response(int(status), Headers(headers),
                        body.encode() if isinstance(body, str) else bytes(body))
    raise TypeError(f"{hook} must return None or a Response, not {type(value).__name__}")


def basic_authorization(uri: str) -> str | None:
    """The ``Authorization`` value for credentials in ``uri`` (``ws://user:pass@host/``), as
    websockets sends them (HTTP Basic, RFC 7617), or ``None``."""
    parts = urllib.parse.urlsplit(uri)
    if parts.username is None:
        return None
    credentials = (f"{urllib.parse.unquote(parts.username)}:"
                   f"{urllib.parse.unquote(parts.password or '')}")
    return "Basic " + base64.b64encode(credentials.encode()).decode()
