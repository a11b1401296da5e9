"""What the ASGI shell translates, with no I/O: the connection scope, and headers both ways.

Owns: the ``websocket`` connection scope built from the upgrade request (ASGI HTTP & WebSocket
spec 2.5, "WebSocket Connection Scope"); the checks on the headers an application hands us
(``websocket.accept``, ``websocket.http.response.start``); the request target and client as
they appear in access log lines (query string redacted).

Does not own: anything with a transport, a task or a timer (:mod:`rawws.asgi.protocol`), or a
WebSocket rule (:mod:`rawws.sansio`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote

from ..redact import redact_target
from ..sansio.handshake import parse_tokens
from ..sansio.http11 import Request

__all__ = ["SPEC_VERSION", "build_scope", "client_label", "log_target", "response_headers"]

#: The version of the ASGI HTTP & WebSocket spec this shell implements: 2.4 (``send()`` on a
#: closed connection raises an ``OSError`` subclass) and 2.5 (``reason`` in
#: ``websocket.disconnect``).
SPEC_VERSION = "2.5"

# RFC 9110 §5.6.2: a header name is a token.
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 9110 §5.5: no control character in a value but HTAB (CR and LF would split the head).
_BAD_VALUE = bytes(c for c in range(0x20) if c != 0x09) + b"\x7f"


def build_scope(
    request: Request,
    *,
    asgi_version: str,
    scheme: str,
    server: tuple[str, int | None] | None,
    client: tuple[str, int] | None,
    root_path: str,
    state: dict[str, Any],
) -> dict[str, Any]:
    """The connection scope of ``request``.

    As uvicorn's protocols do: ``path`` and ``raw_path`` start with ``root_path``; ``path`` is
    percent-decoded (UTF-8), ``raw_path`` and ``query_string`` are the bytes received. Header
    names are lowercased (the spec asks for it, and Starlette's lookups rely on it); values are
    the bytes received (ISO-8859-1 round-trips them).
    """
    target = request.target
    raw_path, _, query = target.partition("?")
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
               for name, value in request.headers.items()]
    return {
        "type": "websocket",
        "asgi": {"version": asgi_version, "spec_version": SPEC_VERSION},
        "http_version": "1.1",
        "scheme": scheme,
        "server": server,
        "client": client,
        "root_path": root_path,
        "path": root_path + unquote(raw_path),
        "raw_path": root_path.encode("latin-1") + raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "headers": headers,
        "subprotocols": parse_tokens(request.headers.get_all("Sec-WebSocket-Protocol")),
        "state": state,
        "extensions": {"websocket.http.response": {}},
    }


def response_headers(
    headers: Iterable[Sequence[bytes]], *, what: str
) -> list[tuple[str, str]]:
    """Check headers an application sent and return them as ``str`` pairs.

    A name must be a token and a value must hold no control character: a CR or LF in either
    would let an application (or the user input it echoes) inject headers or a body into the
    response. Raises ``RuntimeError`` (an application error) naming ``what`` sent them.
    """
    result = []
    for item in headers:
        name, value = item
        if not isinstance(name, bytes | bytearray) or not isinstance(value, bytes | bytearray):
            raise RuntimeError(f"{what}: header names and values must be bytes, "
                               f"got {type(name).__name__} and {type(value).__name__}")
        if not name or name.translate(None, _TCHAR):
            raise RuntimeError(f"{what}: invalid header name {bytes(name)[:64]!r}")
        if value.translate(None, _BAD_VALUE) != value:
            raise RuntimeError(f"{what}: control character in the value of header "
                               f"{bytes(name).decode('latin-1')!r}")
        result.append((name.decode("latin-1"), value.decode("latin-1")))
    return result


def log_target(scope: dict[str, Any]) -> str:
    """The request target for an access line, as uvicorn writes it (raw path, query string),
    with every query value blanked (:func:`rawws.redact.redact_target`).

    WebSocket clients in browsers cannot send headers, so the query string is where their
    credentials go (``?token=``): uvicorn logs them; rawws never does.
    """
    target: str = scope["raw_path"].decode("latin-1")
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    return redact_target(target).replace('"', "%22")


def client_label(scope: dict[str, Any]) -> str:
    """``host:port`` of the client for log lines (after proxy headers, when trusted)."""
    client = scope.get("client")
    if not client:
        return ""
    return f"{client[0]}:{int(client[1])}"
