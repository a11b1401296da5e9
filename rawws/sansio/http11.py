"""HTTP/1.1 messages for the opening handshake and for plain requests on the same port.

Owns: :class:`Headers` (case-insensitive, multi-valued), :class:`Request`, :class:`Response`,
:class:`HeadParser`, which reads a request or response head incrementally with hard limits,
so a peer can never make rawws buffer an unbounded head (RFC 9112 §2-§5, RFC 6585 §5), and
:class:`BodyReader`, which reads the body of a plain request (RFC 9112 §6), bounded too.

Does not own: WebSocket rules about particular headers (see :mod:`rawws.sansio.handshake`).

Limits and the status each one answers with (requests; for responses the client just fails):

1. request line longer than ``max_line`` → 414 URI Too Long (RFC 9112 §3);
2. a header line longer than ``max_line`` → 431 Request Header Fields Too Large (RFC 6585 §5);
3. more than ``max_headers`` header lines → 431;
4. the whole head longer than ``max_head`` → 431;
5. a malformed line (no colon, space before the colon, bad method or target, obs-fold,
   a control character in a value, bare LF) → 400 (RFC 9112 §2.2, §5.1);
6. a body: ``Transfer-Encoding`` → 411 Length Required (rawws reads ``Content-Length`` bodies
   only, RFC 9112 §6.3); a malformed or contradictory ``Content-Length`` → 400 (RFC 9110
   §8.6); more than ``max_body_size`` bytes → 413 Content Too Large (RFC 9110 §15.5.14).
"""

from __future__ import annotations

import dataclasses
import sys
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping

from ..errors import (
    HeaderLineTooLong,
    HeadTooLarge,
    InvalidHandshake,
    InvalidHeader,
    InvalidMessage,
    MultipleValuesError,
    RequestLineTooLong,
    TooManyHeaders,
)

__all__ = [
    "MAX_HEAD",
    "MAX_HEADERS",
    "MAX_LINE",
    "BodyReader",
    "HeadParser",
    "Headers",
    "Request",
    "Response",
    "content_length",
    "reason_phrase",
]

MAX_LINE = 8192
MAX_HEADERS = 128
MAX_HEAD = 65536

# RFC 9110 §5.6.2: token = 1*tchar
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 9110 §5.5: field-value characters: VCHAR, SP, HTAB and obs-text; no other control characters.
_BAD_VALUE_CHARS = bytes(c for c in range(0x20) if c != 0x09) + b"\x7f"

# Character checks run in C: ``bytes.translate(None, delete)`` removes the allowed (or the
# forbidden) characters, and the length tells (benchmarks/run.py, handshake scenario).


_VISIBLE_ASCII = bytes(range(0x21, 0x7F))  # what a request target may contain


def _is_token(data: bytes) -> bool:
    """RFC 9110 §5.6.2: token = 1*tchar."""
    return bool(data) and not data.translate(None, _TCHAR)

_REASONS = {
    101: "Switching Protocols",
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    426: "Upgrade Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status`` (RFC 9110 §15)."""
    return _REASONS.get(status, "Unknown")


class Headers:
    """Case-insensitive, ordered, multi-valued HTTP headers.

    ``headers[name]`` returns the single value and raises ``KeyError`` when the header is absent
    and :class:`~rawws.errors.MultipleValuesError` (a ``LookupError`` and a ``ValueError``)
    when it is repeated; use :meth:`get_all` where a header may legitimately repeat.
    ``headers[name] = value`` adds a header; :meth:`replace` sets it.

    The mapping methods of websockets' ``Headers`` work the same (``get``, ``get_all``,
    ``raw_items``, ``update``, ``setdefault``, ``keys``, ``clear``, keyword arguments to the
    constructor). Two differ on purpose: iterating and ``len()`` see every header line (names
    as sent, repeats included) and :meth:`items` returns the raw ``(name, value)`` list, where
    websockets iterates over distinct lowercase names.
    """

    __slots__ = ("_items",)

    def __init__(
        self, items: Headers | Iterable[tuple[str, str]] | Mapping[str, str] | None = None,
        **kwargs: str,
    ) -> None:
        self._items: list[tuple[str, str]] = []
        if items is not None:
            self.extend(items)
        if kwargs:
            self.extend(kwargs)

    def extend(self, items: Headers | Iterable[tuple[str, str]] | Mapping[str, str]) -> None:
        """Add every header of ``items`` (headers, pairs or a mapping), in order."""
        if isinstance(items, Headers):
            self._items.extend(items._items)
        else:
            self._items.extend(items.items() if isinstance(items, Mapping) else items)

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        if len(values) > 1:
            raise MultipleValuesError(f"multiple {name} headers")
        return values[0]

    def __setitem__(self, name: str, value: str) -> None:
        """Add a header (like ``email.message``); use :meth:`replace` to overwrite."""
        self._items.append((name, value))

    def __delitem__(self, name: str) -> None:
        lower = name.lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != lower]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        lower = name.lower()
        return any(n.lower() == lower for n, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(n.lower(), v) for n, v in self._items] == [
            (n.lower(), v) for n, v in other._items
        ]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        lower = name.lower()
        for n, v in self._items:
            if n.lower() == lower:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order."""
        lower = name.lower()
        return [v for n, v in self._items if n.lower() == lower]

    def table(self) -> dict[str, list[str]]:
        """Every value by lowercase name, in one pass (for code that looks up many headers)."""
        table: dict[str, list[str]] = {}
        for n, v in self._items:
            lower = n.lower()
            values = table.get(lower)
            if values is None:
                table[lower] = [v]
            else:
                values.append(v)
        return table

    def replace(self, name: str, value: str) -> None:
        """Set ``name`` to the single ``value``."""
        del self[name]
        self._items.append((name, value))

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def raw_items(self) -> Iterator[tuple[str, str]]:
        """Every ``(name, value)``, in order (websockets' name for :meth:`items`)."""
        return iter(list(self._items))

    def keys(self) -> list[str]:
        """The distinct header names, lowercase, in order of first appearance."""
        return list(dict.fromkeys(n.lower() for n, _ in self._items))

    def update(self, *others: Headers | Iterable[tuple[str, str]] | Mapping[str, str],
               **kwargs: str) -> None:
        """Add every header of ``others`` and ``kwargs`` (adds, as ``headers[name] = value``
        does: websockets' ``update`` has the same meaning)."""
        for other in others:
            self.extend(other)
        if kwargs:
            self.extend(kwargs)

    def setdefault(self, name: str, value: str) -> str:
        """Add ``name: value`` unless ``name`` is present; return the value it has."""
        present = self.get(name)
        if present is not None:
            return present
        self._items.append((name, value))
        return value

    def clear(self) -> None:
        self._items = []

    def copy(self) -> Headers:
        return Headers(self._items)

    def serialize(self) -> bytes:
        """``Name: value\\r\\n`` lines, in order."""
        return "".join(f"{n}: {v}\r\n" for n, v in self._items).encode("latin-1")


@dataclasses.dataclass(slots=True)
class Request:
    """An HTTP request: a WebSocket upgrade request or a plain request on the same port.

    ``target`` is the request target as sent; ``path`` is the same (path and query string, as
    websockets' ``Request.path``: ``urlparse(request.path).query`` finds the query);
    ``unquoted_path`` is the percent-decoded path without the query string; ``query`` maps each
    parameter to its last value (``query_all`` keeps every value). ``body`` is empty for
    upgrade requests.
    """

    method: str
    target: str
    headers: Headers
    body: bytes = b""
    version: str = "HTTP/1.1"

    @property
    def path(self) -> str:
        """The request target: the path and the query string, as sent."""
        return self.target

    @property
    def unquoted_path(self) -> str:
        """The percent-decoded path, without the query string."""
        return urllib.parse.unquote(self.target.partition("?")[0])

    @property
    def query_string(self) -> str:
        return self.target.partition("?")[2]

    @property
    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.query_string, keep_blank_values=True))

    @property
    def query_all(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.query_string, keep_blank_values=True)

    @property
    def is_upgrade(self) -> bool:
        """Whether the request is a WebSocket opening handshake, valid or not: it asks for
        ``Upgrade: websocket`` or carries a ``Sec-WebSocket-Key``. Anything else is a plain HTTP
        request."""
        return "Sec-WebSocket-Key" in self.headers or any(
            token.strip().lower() == "websocket"
            for value in self.headers.get_all("Upgrade")
            for token in value.split(",")
        )

    def serialize(self) -> bytes:
        head = f"{self.method} {self.target} {self.version}\r\n".encode("latin-1")
        return head + self.headers.serialize() + b"\r\n" + self.body


@dataclasses.dataclass(slots=True)
class Response:
    """An HTTP response. For plain requests rawws adds ``Content-Length`` and ``Connection``."""

    status: int
    headers: Headers = dataclasses.field(default_factory=Headers)
    body: bytes = b""
    reason: str = ""

    def __post_init__(self) -> None:
        self.status = int(self.status)  # an http.HTTPStatus works too
        if not self.reason:
            self.reason = reason_phrase(self.status)

    @property
    def status_code(self) -> int:
        """websockets' name for :attr:`status`."""
        return self.status

    @property
    def reason_phrase(self) -> str:
        """websockets' name for :attr:`reason`."""
        return self.reason

    def serialize(self) -> bytes:
        head = f"HTTP/1.1 {self.status} {self.reason}\r\n".encode("latin-1")
        return head + self.headers.serialize() + b"\r\n" + self.body


def _check_value(value: bytes) -> None:
    if len(value.translate(None, _BAD_VALUE_CHARS)) != len(value):
        raise InvalidMessage("control character in header value")


# Values that differ on every connection: not worth sharing.
_UNSHARED = frozenset({b"host", b"cookie", b"authorization", b"sec-websocket-key"})


def _parse_header_line(line: bytes) -> tuple[str, str]:
    # RFC 9112 §5.1: field-line = field-name ":" OWS field-value OWS; no whitespace before ":".
    name, sep, value = line.partition(b":")
    if not sep or not _is_token(name):
        raise InvalidMessage(f"invalid header line: {line[:64]!r}")
    value = value.strip(b" \t")
    _check_value(value)
    # Names, and most values (Upgrade, Connection, the user agent, the extensions offer), are
    # the same on thousands of connections: interned, they are stored once while a request is
    # kept for the life of its connection (benchmarks/memory.py).
    text = value.decode("latin-1")
    if name.lower() not in _UNSHARED and len(value) <= 256:
        text = sys.intern(text)
    return sys.intern(name.decode("ascii")), text


class HeadParser:
    """Read an HTTP head incrementally, within limits. ``feed()`` returns the head when complete.

    After the head is complete, :attr:`rest` holds the bytes that followed it (a body, or the
    first WebSocket frames the client sent without waiting for the response).

    Written for speed (benchmarks/run.py, handshake scenario): the head is found with one
    search for the blank line and split in one call; the limits are checked on the pieces,
    and on an incomplete head as soon as one is crossed, so nothing is ever buffered beyond
    ``max_head`` plus one line.
    """

    __slots__ = ("_buf", "_scanned", "max_head", "max_headers", "max_line", "rest")

    def __init__(
        self,
        *,
        max_line: int = MAX_LINE,
        max_headers: int = MAX_HEADERS,
        max_head: int = MAX_HEAD,
    ) -> None:
        self.max_line = max_line
        self.max_headers = max_headers
        self.max_head = max_head
        self._buf = b""
        self._scanned = 0  # bytes already searched for the blank line
        self.rest = b""

    def feed(self, data: bytes) -> tuple[bytes, list[tuple[str, str]]] | None:
        """Add bytes; return ``(start_line, headers)`` once the head is complete, else ``None``.

        Raises :class:`~rawws.errors.InvalidHandshake` subclasses carrying the HTTP status.
        """
        buf = self._buf + data if self._buf else data
        if not self._scanned:
            # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the
            # request line.
            while buf[:2] == b"\r\n":
                buf = buf[2:]
        end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end < 0:
            self._buf = buf
            self._scanned = len(buf)
            self._check_incomplete(buf)
            return None
        self._buf = b""
        self.rest = buf[end + 4 :]
        lines = buf[:end].split(b"\r\n")
        if end > self.max_head:
            raise HeadTooLarge(f"HTTP head over {self.max_head} bytes")
        if len(lines) > self.max_headers + 1:
            raise TooManyHeaders(f"more than {self.max_headers} header lines")
        for index, line in enumerate(lines):
            if len(line) > self.max_line:
                self._too_long(first=index == 0)
            if b"\n" in line or b"\r" in line:
                raise InvalidMessage("bare CR or LF in HTTP head (CRLF required)")
        start, *header_lines = lines
        headers = []
        for line in header_lines:
            if line[:1] in (b" ", b"\t"):
                # RFC 9112 §5.2: obs-fold is deprecated; a server MAY reject it with 400.
                raise InvalidMessage("obsolete line folding in header")
            headers.append(_parse_header_line(line))
        return start, headers

    def _check_incomplete(self, buf: bytes) -> None:
        """Fail as soon as an incomplete head crosses a limit."""
        if len(buf) > self.max_line:  # otherwise no line can be too long
            for index, line in enumerate(buf.split(b"\r\n")):
                if len(line) > self.max_line:
                    self._too_long(first=index == 0)
        if len(buf) > self.max_head:
            raise HeadTooLarge(f"HTTP head over {self.max_head} bytes")
        if buf.count(b"\n") != buf.count(b"\r\n"):
            raise InvalidMessage("bare LF in HTTP head (CRLF required)")
        if buf.count(b"\r\n") > self.max_headers + 1:
            raise TooManyHeaders(f"more than {self.max_headers} header lines")

    def _too_long(self, *, first: bool) -> None:
        if first:
            raise RequestLineTooLong(f"request line over {self.max_line} bytes")  # 414
        raise HeaderLineTooLong(f"header line over {self.max_line} bytes")


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """Split ``GET /path HTTP/1.1`` into its three parts (RFC 9112 §3)."""
    parts = line.split(b" ")
    if len(parts) != 3:
        raise InvalidMessage(f"invalid request line: {line[:64]!r}")
    method, target, version = parts
    if not _is_token(method):
        raise InvalidMessage(f"invalid method: {method[:32]!r}")
    if not target or target.translate(None, _VISIBLE_ASCII):
        raise InvalidMessage(f"invalid request target: {target[:64]!r}")
    if not version.startswith(b"HTTP/") or len(version) != 8:
        raise InvalidMessage(f"invalid HTTP version: {version[:16]!r}")
    return method.decode("ascii"), target.decode("ascii"), version.decode("ascii")


def parse_status_line(line: bytes) -> tuple[str, int, str]:
    """Split ``HTTP/1.1 101 Switching Protocols`` into version, status and reason (RFC 9112 §4)."""
    version, _, rest = line.partition(b" ")
    status, _, reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/") or len(status) != 3 or not status.isdigit():
        raise InvalidMessage(f"invalid status line: {line[:64]!r}")
    return version.decode("ascii"), int(status), reason.decode("latin-1")


# --- bodies (RFC 9112 §6) ------------------------------------------------------------------------


def content_length(headers: Headers) -> int:
    """The ``Content-Length`` of a message, 0 when absent (RFC 9110 §8.6: digits only;
    several values are allowed when they are equal). Raises
    :class:`~rawws.errors.InvalidHeader` (400) otherwise."""
    values = headers.get_all("Content-Length")
    lengths = set()
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item.isdigit() or not item.isascii() or len(item) > 18:
                raise InvalidHeader("Content-Length", value)
            lengths.add(int(item))
    if len(lengths) > 1:
        raise InvalidHeader("Content-Length", ", ".join(values))
    return lengths.pop() if lengths else 0


class BodyReader:
    """Read the body of a plain request, at most ``max_body_size`` bytes (rules 6 above).

    :meth:`feed` returns the whole body once it has arrived, ``None`` until then. Bytes after
    it (a pipelined request) are ignored: rawws answers one plain request per connection, with
    ``Connection: close``.
    """

    __slots__ = ("_left", "_parts")

    def __init__(self, headers: Headers, *, max_body_size: int) -> None:
        if "Transfer-Encoding" in headers:
            # RFC 9112 §6.3: a server MAY reject a body without Content-Length with 411.
            raise InvalidHandshake("chunked request bodies are not supported: "
                                   "send Content-Length", 411)
        length = content_length(headers)
        if length > max_body_size:
            raise InvalidHandshake(f"request body of {length} bytes over {max_body_size}", 413)
        self._left = length
        self._parts: list[bytes] = []

    def feed(self, data: bytes) -> bytes | None:
        if self._left:
            chunk = data[: self._left]
            self._parts.append(chunk)
            self._left -= len(chunk)
        if self._left:
            return None
        return b"".join(self._parts)
