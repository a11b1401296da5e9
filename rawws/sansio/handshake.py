"""The opening handshake (RFC 6455 §4): the rules, separate from the state machine.

Owns: ``Sec-WebSocket-Key`` / ``Sec-WebSocket-Accept``, validation of the client's upgrade request
and of the server's 101 response, subprotocol negotiation (§4.2.2, §11.3.4), extension
negotiation (§9.1) with the ``Sec-WebSocket-Extensions`` grammar, and the origin policy (§10.2).

Theory of operation (server side, :func:`check_request`), in order; the first rule broken decides
the HTTP status:

1. The method is ``GET`` (§4.1: "The method of the request MUST be GET") → else 405.
2. The version is ``HTTP/1.1`` (§4.1: "the HTTP version MUST be at least 1.1") → else 400 for
   HTTP/1.0, 505 for anything newer than 1.1.
3. ``Host`` is present, once (RFC 9112 §3.2: a server MUST respond 400 otherwise).
4. ``Upgrade`` includes the token ``websocket``, case-insensitively (§4.2.1 item 3) → else 400.
5. ``Connection`` includes the token ``Upgrade``, case-insensitively (§4.2.1 item 4) → else 400.
6. ``Sec-WebSocket-Version`` is ``13`` (§4.2.1 item 6) → else 426 with a
   ``Sec-WebSocket-Version: 13`` header (§4.4). A missing version gets the same answer: the
   remedy for the client is the same.
7. ``Sec-WebSocket-Key`` appears once and is the base64 encoding of 16 bytes (§4.2.1 item 5)
   → else 400.
8. ``Origin``, when an origin policy is set, is allowed (§10.2) → else 403.

One rule is checked earlier, when the request has been read and before any hook sees it
(:func:`check_no_body`): an upgrade request carries no body (§4.1 defines none), so
``Content-Length`` other than 0, or any ``Transfer-Encoding``, is refused with 400. The bytes
after such a head would otherwise be read as WebSocket frames: request smuggling.

Then subprotocols and extensions are negotiated; neither can fail the handshake on the server:
an unsupported offer is declined by leaving it out of the response.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Sequence

from ..errors import (
    InvalidHandshake,
    InvalidHeader,
    InvalidMethod,
    InvalidOrigin,
    InvalidProtocol,
    InvalidUpgrade,
    InvalidVersion,
    NegotiationError,
)
from .extensions import (
    ClientExtensionFactory,
    Extension,
    ExtensionParams,
    ServerExtensionFactory,
)
from .http11 import Headers, Request, Response, content_length

__all__ = [
    "GUID",
    "OriginPolicy",
    "accept_key",
    "build_accept_response",
    "build_extension_header",
    "build_request",
    "check_no_body",
    "check_request",
    "check_response_headers",
    "generate_key",
    "negotiate_client_extensions",
    "negotiate_server_extensions",
    "negotiate_subprotocol",
    "parse_extension_header",
    "parse_tokens",
]

#: RFC 6455 §1.3: the globally unique identifier concatenated to the key.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Allowed origins: a sequence of exact origins (``None`` in it allows requests with no
#: ``Origin`` header, which non-browser clients send), or a predicate on the origin.
OriginPolicy = Sequence[str | None] | Callable[[str | None], bool]


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for ``key``: base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2, 5.4)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def generate_key(random: Callable[[int], bytes]) -> str:
    """A fresh ``Sec-WebSocket-Key``: base64 of 16 random bytes (RFC 6455 §4.1 item 7)."""
    return base64.b64encode(random(16)).decode("ascii")


def parse_tokens(values: Sequence[str]) -> list[str]:
    """The comma-separated tokens of every value of a header (RFC 9110 §5.6.1), stripped."""
    return [token.strip() for value in values for token in value.split(",") if token.strip()]


#: Header values by lowercase name, built once per handshake (:meth:`Headers.table`).
HeaderTable = dict[str, list[str]]


def _has_token(table: HeaderTable, name: str, token: str) -> bool:
    return any(t.lower() == token for t in parse_tokens(table.get(name.lower(), ())))


def _single(table: HeaderTable, name: str) -> str:
    values = table.get(name.lower())
    if not values:
        raise InvalidHeader(name)
    if len(values) > 1:
        raise InvalidHeader(name, ", ".join(values))
    return values[0]


def _first(table: HeaderTable, name: str) -> str | None:
    values = table.get(name.lower())
    return values[0] if values else None


def check_request(request: Request, *, origins: OriginPolicy | None = None,
                  table: HeaderTable | None = None) -> str:
    """Validate an upgrade request (rules 1-8 in the module docstring). Return the key.

    ``table`` is ``request.headers.table()`` when the caller already built it.
    """
    if table is None:
        table = request.headers.table()
    if request.method != "GET":
        raise InvalidMethod(request.method)  # 405
    if request.version != "HTTP/1.1":
        raise InvalidProtocol(request.version)  # 505 for a later version, else 400
    _single(table, "Host")
    if not _has_token(table, "Upgrade", "websocket"):
        raise InvalidUpgrade("Upgrade", _first(table, "Upgrade"))
    if not _has_token(table, "Connection", "upgrade"):
        raise InvalidUpgrade("Connection", _first(table, "Connection"))
    versions = table.get("sec-websocket-version", [])
    if versions != ["13"]:
        raise InvalidVersion("Sec-WebSocket-Version", ", ".join(versions) or None)
    key = _single(table, "Sec-WebSocket-Key")
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidHeader("Sec-WebSocket-Key", key) from None
    if len(raw) != 16:
        raise InvalidHeader("Sec-WebSocket-Key", key)
    if origins is not None:
        origin = _first(table, "Origin")
        allowed = origins(origin) if callable(origins) else origin in origins
        if not allowed:
            raise InvalidOrigin("Origin", origin)
    return key


def check_no_body(headers: Headers) -> None:
    """An upgrade request has no body: any ``Transfer-Encoding``, or a ``Content-Length``
    other than 0 (or not a number), is refused with 400 (see the module docstring)."""
    if "Transfer-Encoding" in headers:
        raise InvalidHeader("Transfer-Encoding", headers.get("Transfer-Encoding"), 400)
    length = content_length(headers)  # 400 for a malformed value
    if length:
        raise InvalidHandshake(f"an upgrade request has no body (Content-Length: {length})")


def negotiate_subprotocol(
    offered: Sequence[str], supported: Sequence[str] | None
) -> str | None:
    """Pick the first subprotocol in the server's order of preference that the client offered.

    RFC 6455 §4.2.2 item 5.4: the server selects one or none of the client's values. A server
    that lists subprotocols refuses (400) a client that offers none of them, as websockets
    does: the application declared it speaks only those (a ``select_subprotocol`` hook that
    returns ``None`` accepts such clients anyway).
    """
    if not supported:
        return None
    for protocol in supported:
        if protocol in offered:
            return protocol
    expected = ", ".join(supported)
    if not offered:
        raise NegotiationError(f"no subprotocol offered; expected one of: {expected}")
    raise NegotiationError(f"none of the subprotocols offered ({', '.join(offered)}) is "
                           f"supported; expected one of: {expected}")


# --- Sec-WebSocket-Extensions (RFC 6455 §9.1) ---------------------------------------------------


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _is_token(value: str) -> bool:
    """RFC 9110 §5.6.2: token = 1*tchar."""
    return _TOKEN.fullmatch(value) is not None


def parse_extension_header(values: Sequence[str]) -> list[tuple[str, ExtensionParams]]:
    """Parse every ``Sec-WebSocket-Extensions`` value into ``[(name, [(param, value)])]``.

    Grammar (§9.1): ``extension = extension-token *( ";" extension-param )`` and
    ``extension-param = token [ "=" (token | quoted-string) ]``; a quoted value must itself
    be a token once unquoted. Raises :class:`~rawws.errors.InvalidHeader` (400) otherwise.
    """
    result: list[tuple[str, ExtensionParams]] = []
    for value in values:
        for item in _split_outside_quotes(value, ","):
            item = item.strip()
            if not item:
                continue
            name, *raw_params = _split_outside_quotes(item, ";")
            name = name.strip()
            if not _is_token(name):
                raise InvalidHeader("Sec-WebSocket-Extensions", value)
            params: ExtensionParams = []
            for raw in raw_params:
                pname, eq, pvalue = raw.strip().partition("=")
                pname = pname.strip()
                if not _is_token(pname):
                    raise InvalidHeader("Sec-WebSocket-Extensions", value)
                if not eq:
                    params.append((pname, None))
                    continue
                pvalue = pvalue.strip()
                if len(pvalue) >= 2 and pvalue[0] == pvalue[-1] == '"':
                    pvalue = pvalue[1:-1]
                if not _is_token(pvalue):
                    raise InvalidHeader("Sec-WebSocket-Extensions", value)
                params.append((pname, pvalue))
            result.append((name, params))
    return result


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    if '"' not in text:
        return text.split(sep)  # the usual case: no quoted-string
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for c in text:
        if c == '"':
            quoted = not quoted
        if c == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return parts


def build_extension_header(extensions: Sequence[tuple[str, ExtensionParams]]) -> str:
    """The inverse of :func:`parse_extension_header`."""
    return ", ".join(
        "; ".join([name, *(p if v is None else f"{p}={v}" for p, v in params)])
        for name, params in extensions
    )


def negotiate_server_extensions(
    header_values: Sequence[str], factories: Sequence[ServerExtensionFactory]
) -> tuple[str | None, list[Extension]]:
    """Accept at most one offer per extension, in the client's order of preference (§9.1).

    Offers of an extension the server does not support, or that its factory declines, are left
    out of the response. Returns the response header value (``None`` if empty) and the
    extensions in the order they apply.
    """
    if not factories or not header_values:
        return None, []
    accepted: list[Extension] = []
    response: list[tuple[str, ExtensionParams]] = []
    for name, params in parse_extension_header(header_values):
        for factory in factories:
            if factory.name != name or any(ext.name == name for ext in accepted):
                continue
            try:
                response_params, extension = factory.process_request_params(params, accepted)
            except NegotiationError:
                continue
            accepted.append(extension)
            response.append((name, response_params))
    return (build_extension_header(response) if response else None), accepted


def negotiate_client_extensions(
    header_values: Sequence[str], factories: Sequence[ClientExtensionFactory]
) -> list[Extension]:
    """Check the server's ``Sec-WebSocket-Extensions`` against what the client offered.

    RFC 6455 §9.1: the server's response may only contain extensions the client offered; any
    other makes the client fail the connection.
    """
    accepted: list[Extension] = []
    for name, params in parse_extension_header(header_values):
        for factory in factories:
            if factory.name == name:
                accepted.append(factory.process_response_params(params, accepted))
                break
        else:
            raise NegotiationError(f"server accepted extension {name!r}, which was not offered")
    return accepted


def check_response_headers(
    headers: Headers, key: str, subprotocols: Sequence[str] | None
) -> str | None:
    """Validate a 101 response for the request that carried ``key`` (RFC 6455 §4.1, client
    items 2-6). Returns the selected subprotocol."""
    table = headers.table()
    if not _has_token(table, "Upgrade", "websocket"):
        raise InvalidUpgrade("Upgrade", headers.get("Upgrade"))
    if not _has_token(table, "Connection", "upgrade"):
        raise InvalidUpgrade("Connection", headers.get("Connection"))
    accept = _single(table, "Sec-WebSocket-Accept")
    if accept != accept_key(key):
        raise InvalidHeader("Sec-WebSocket-Accept", accept)
    protocols = parse_tokens(table.get("sec-websocket-protocol", ()))
    if not protocols:
        return None
    # §4.1 item 6: a subprotocol the client did not offer fails the connection.
    if len(protocols) > 1 or not subprotocols or protocols[0] not in subprotocols:
        raise NegotiationError(f"server selected unexpected subprotocol {protocols!r}")
    return protocols[0]


# --- building the two messages -------------------------------------------------------------------


def build_request(*, host: str, port: int, resource: str, secure: bool, key: str,
                  origin: str | None = None, subprotocols: Sequence[str] | None = None,
                  extension_factories: Sequence[ClientExtensionFactory] = (),
                  extra_headers: Headers | Sequence[tuple[str, str]] | None = None,
                  user_agent: str | None = None) -> Request:
    """The client's upgrade request (RFC 6455 §4.1, items 1-12 of the client requirements)."""
    default_port = 443 if secure else 80
    bracketed = f"[{host}]" if ":" in host else host  # an IPv6 literal (RFC 3986 §3.2.2)
    headers = Headers([
        ("Host", bracketed if port == default_port else f"{bracketed}:{port}"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ])
    if origin is not None:
        headers["Origin"] = origin
    if subprotocols:
        headers["Sec-WebSocket-Protocol"] = ", ".join(subprotocols)
    if extension_factories:
        headers["Sec-WebSocket-Extensions"] = build_extension_header(
            [(f.name, f.get_request_params()) for f in extension_factories]
        )
    if extra_headers is not None:
        headers.extend(extra_headers)
    if user_agent and "User-Agent" not in headers:
        headers["User-Agent"] = user_agent
    return Request("GET", resource, headers)


def build_accept_response(key: str, *, subprotocol: str | None,
                          extensions_header: str | None) -> Response:
    """The server's 101 for a request that passed :func:`check_request` (RFC 6455 §4.2.2
    item 5)."""
    headers = Headers([
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ])
    if subprotocol is not None:
        headers["Sec-WebSocket-Protocol"] = subprotocol
    if extensions_header is not None:
        headers["Sec-WebSocket-Extensions"] = extensions_header
    return Response(101, headers)
