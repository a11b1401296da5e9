"""The wire log: the events the study tools report, as text lines and as JSON lines.

Owns: the event values (:class:`HandshakeEvent`, :class:`FrameEvent`, :class:`ViolationEvent`,
:class:`TcpEvent`), their one-line rendering (``rawws trace``, ``--trace``), their JSON form (the
``--jsonl`` capture that ``rawws replay`` reads back) and the redaction of both. The schema is
documented in ``docs/tools.md``; :data:`SCHEMA_VERSION` changes when it does.

Also: :class:`EventWriter` (where events go: text lines, JSON lines), :class:`RecordConverter`
(the sans-I/O protocol's tracing hook records, :class:`~rawws.sansio.reader.FrameRecord`, as
frame events of one connection) and :class:`Tracing` (``--trace``: every connection of a server
or a client traced to an :class:`EventWriter`).

A leaf module, like :mod:`rawws.redact`: it imports nothing from rawws but the redaction, so the
tools, the command line and the chat server (its inspector) may all use it. Records are read by
their attributes, never imported.

Does not own: decoding bytes into events (:mod:`rawws.tools.decode` for the proxy, the tracing
hook of the sans-I/O protocol for ``--trace``).

Text lines::

    0.001203 #1 > GET /ws?token=*** HTTP/1.1
    0.001203 #1 >     Host: 127.0.0.1:8765
    0.002871 #1 < HTTP/1.1 101 Switching Protocols
    0.003012 #1 > TEXT fin=1 rsv=000 mask=37fa213d len=5 'Hello'
    0.003140 #1 < TEXT fin=1 rsv=100 len=7 inflated=5 'Hello'
    0.004001 #1 > ! RFC 6455 §5.1: client frame is not masked (close 1002)
    0.004500 #1 = closed by the client

Time (seconds since the tool started), the connection number, the direction (``>`` client to
server, ``<`` server to client, ``=`` the TCP connection itself), then the event.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import inspect
import itertools
import json
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Literal

from .redact import redact_header, redact_payload, redact_target, redact_text

__all__ = [
    "OPCODE_NAMES",
    "SCHEMA_VERSION",
    "Direction",
    "Event",
    "EventWriter",
    "FrameEvent",
    "HandshakeEvent",
    "RecordConverter",
    "TcpEvent",
    "Tracing",
    "ViolationEvent",
    "add_trace_flags",
    "dumps",
    "event_from_json",
    "format_event",
    "opcode_label",
    "read_jsonl",
    "redacted",
]

#: Version of the JSON-lines schema (the ``v`` field of every event).
SCHEMA_VERSION = 1

Direction = Literal["c2s", "s2c"]

_ARROWS = {"c2s": ">", "s2c": "<"}
#: How many characters of text (or bytes shown as hex, a third of it) a line previews.
PREVIEW = 75


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64: {exc}") from None


@dataclasses.dataclass(frozen=True, slots=True)
class HandshakeEvent:
    """The HTTP head of the opening handshake: the request (``c2s``) or the response (``s2c``).

    ``line`` is the start line (``GET /ws HTTP/1.1``, ``HTTP/1.1 101 Switching Protocols``) and
    ``headers`` the header lines in order, as they were sent."""

    t: float
    conn: int
    dir: Direction
    line: str
    headers: tuple[tuple[str, str], ...]
    kind: Literal["handshake"] = "handshake"

    def to_json(self) -> dict[str, Any]:
        return {"v": SCHEMA_VERSION, "t": round(self.t, 6), "conn": self.conn, "dir": self.dir,
                "kind": self.kind, "line": self.line,
                "headers": [[name, value] for name, value in self.headers]}


@dataclasses.dataclass(frozen=True, slots=True)
class FrameEvent:
    """One frame as it was on the wire (RFC 6455 §5.2), its payload unmasked.

    ``opcode`` is the name (``TEXT``...) or, for a reserved opcode, the number. ``length`` is
    the declared payload length; ``payload`` what the tool kept of it (all of it unless
    ``truncated``). ``compressed``: the frame belongs to a message whose first frame had RSV1
    with permessage-deflate negotiated; ``inflated`` is then what this frame inflated to.
    ``text``: the payload (inflated, if compressed) of a frame of a text message, or of a ping or
    pong, when it is valid UTF-8 on its own. ``code`` / ``reason``: the body of a close frame,
    when it has one. ``index`` counts the frames of this direction from 1."""

    t: float
    conn: int
    dir: Direction
    index: int
    opcode: str | int
    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    masked: bool
    mask: bytes | None
    length: int
    payload: bytes | None
    text: str | None = None
    compressed: bool = False
    inflated: bytes | None = None
    code: int | None = None
    reason: str | None = None
    truncated: bool = False
    redacted: bool = False
    kind: Literal["frame"] = "frame"

    @property
    def opcode_value(self) -> int:
        return _OPCODE_VALUES[self.opcode] if isinstance(self.opcode, str) else self.opcode

    @property
    def data(self) -> bytes | None:
        """The application data of the frame: inflated if compressed, else the payload."""
        return self.inflated if self.compressed else self.payload

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": SCHEMA_VERSION, "t": round(self.t, 6), "conn": self.conn, "dir": self.dir,
            "kind": self.kind, "index": self.index, "opcode": self.opcode, "fin": self.fin,
            "rsv1": self.rsv1, "rsv2": self.rsv2, "rsv3": self.rsv3, "masked": self.masked,
            "mask": None if self.mask is None else self.mask.hex(), "length": self.length,
            "payload_b64": _b64(self.payload),
        }
        if self.text is not None:
            out["text"] = self.text
        if self.compressed:
            out["compressed"] = True
            out["inflated_b64"] = _b64(self.inflated)
        if self.code is not None:
            out["code"] = self.code
            out["reason"] = self.reason
        if self.truncated:
            out["truncated"] = True
        if self.redacted:
            out["redacted"] = True
        return out


#: The names the wire log gives the opcodes of RFC 6455 §5.2 (reserved ones stay numbers).
OPCODE_NAMES = {0: "CONT", 1: "TEXT", 2: "BINARY", 8: "CLOSE", 9: "PING", 10: "PONG"}
_OPCODE_VALUES = {name: value for value, name in OPCODE_NAMES.items()}


def opcode_label(opcode: int) -> str | int:
    """``TEXT``, ``CONT``... or the number of a reserved opcode."""
    return OPCODE_NAMES.get(opcode, opcode)


@dataclasses.dataclass(frozen=True, slots=True)
class ViolationEvent:
    """A rule the sender broke: the RFC section (``"5.1"``, or ``"RFC 7692 6.1"``), the close
    code a strict receiver fails the connection with, what happened, and the frame it is about
    (its ``index`` in this direction; ``None`` for the handshake)."""

    t: float
    conn: int
    dir: Direction
    rfc: str
    code: int
    message: str
    frame: int | None = None
    kind: Literal["violation"] = "violation"

    @property
    def section(self) -> str:
        return self.rfc if self.rfc.startswith("RFC") else f"RFC 6455 §{self.rfc}"

    def to_json(self) -> dict[str, Any]:
        return {"v": SCHEMA_VERSION, "t": round(self.t, 6), "conn": self.conn, "dir": self.dir,
                "kind": self.kind, "rfc": self.rfc, "code": self.code, "message": self.message,
                "frame": self.frame}


@dataclasses.dataclass(frozen=True, slots=True)
class TcpEvent:
    """The TCP connection: ``open`` (``peer`` is the client's address), ``eof`` (the side
    ``dir`` came from ended its stream), ``closed``, or ``error`` (``detail`` says which)."""

    t: float
    conn: int
    event: Literal["open", "eof", "closed", "error"]
    dir: Direction | None = None
    detail: str = ""
    kind: Literal["tcp"] = "tcp"

    def to_json(self) -> dict[str, Any]:
        return {"v": SCHEMA_VERSION, "t": round(self.t, 6), "conn": self.conn, "dir": self.dir,
                "kind": self.kind, "event": self.event, "detail": self.detail}


Event = HandshakeEvent | FrameEvent | ViolationEvent | TcpEvent


# --- text lines --------------------------------------------------------------------------------


def _quote(text: str) -> str:
    shown = text[:PREVIEW]
    return repr(shown) + ("..." if len(text) > PREVIEW else "")


def _hex(data: bytes) -> str:
    limit = PREVIEW // 3
    return data[:limit].hex(" ") + (" ..." if len(data) > limit else "") if data else "(empty)"


def _preview(event: FrameEvent) -> str:
    if event.code is not None:
        return f"code={event.code} reason={event.reason!r}"
    if event.opcode == "CLOSE":
        return "(no status)" if event.length == 0 else _hex(event.payload or b"")
    if event.text is not None:
        return _quote(event.text)
    data = event.data
    if data is None:
        return "(payload not kept)"
    return _hex(data)


def format_event(event: Event) -> list[str]:
    """The text line(s) of ``event``: one, or for a handshake one per header more."""
    prefix = f"{event.t:9.6f} #{event.conn}"
    if isinstance(event, TcpEvent):
        who = {"c2s": " by the client", "s2c": " by the server", None: ""}[event.dir]
        text = {"open": f"connection from {event.detail}", "eof": f"end of stream{who}",
                "closed": "connection closed", "error": f"error: {event.detail}"}[event.event]
        return [f"{prefix} = {text}"]
    arrow = _ARROWS[event.dir]
    if isinstance(event, HandshakeEvent):
        return [f"{prefix} {arrow} {event.line}",
                *(f"{prefix} {arrow}     {name}: {value}" for name, value in event.headers)]
    if isinstance(event, ViolationEvent):
        return [f"{prefix} {arrow} ! {event.section}: {event.message} (close {event.code})"]
    rsv = f"{event.rsv1:d}{event.rsv2:d}{event.rsv3:d}"
    parts = [str(event.opcode), f"fin={event.fin:d}", f"rsv={rsv}"]
    if event.mask is not None:
        parts.append(f"mask={event.mask.hex()}")
    parts.append(f"len={event.length}")
    if event.compressed:
        parts.append("inflated=?" if event.inflated is None else f"inflated={len(event.inflated)}")
    if event.truncated:
        parts.append("(truncated)")
    parts.append(_preview(event))
    return [f"{prefix} {arrow} {' '.join(parts)}"]


# --- redaction ---------------------------------------------------------------------------------


def redacted(event: Event) -> Event:
    """``event`` with its secrets blanked (rawws.redact): the request target's query values,
    credential headers, and secret JSON fields or JWT-shaped strings in text payloads. A frame
    whose text changed loses its payload bytes too (``payload=None``, ``redacted=True``): a
    redacted capture cannot be replayed (record with ``--show-secrets`` for that)."""
    if isinstance(event, HandshakeEvent):
        line = event.line
        if event.dir == "c2s":
            method, sep, rest = line.partition(" ")
            target, sep2, version = rest.rpartition(" ")
            line = (f"{method}{sep}{redact_target(target)}{sep2}{version}" if sep2
                    else redact_text(line))
        headers = tuple((name, redact_header(name, value)) for name, value in event.headers)
        return dataclasses.replace(event, line=line, headers=headers)
    if isinstance(event, ViolationEvent):
        return dataclasses.replace(event, message=redact_text(event.message))
    if isinstance(event, TcpEvent):
        return event
    changes: dict[str, Any] = {}
    if event.text is not None:
        text = redact_payload(event.text)
        if text != event.text:
            changes.update(text=text, payload=None, inflated=None, redacted=True)
    if event.reason:
        reason = redact_payload(event.reason)
        if reason != event.reason:
            changes.update(reason=reason, payload=None, redacted=True)
    if not changes and event.text is None and event.data:
        # Bytes that are not valid UTF-8 on their own (a text message split mid-character, a
        # binary frame): blank them if the UTF-8 they start with carries a secret.
        sample = event.data[: 4 * PREVIEW].decode("utf-8", "replace")
        if redact_payload(sample) != sample:
            changes.update(payload=None, inflated=None, redacted=True)
    return dataclasses.replace(event, **changes) if changes else event


# --- JSON lines ----------------------------------------------------------------------------------


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...],
           default: Any = ...) -> Any:
    if name not in data:
        if default is ...:
            raise ValueError(f"missing field {name!r}")
        return default
    value = data[name]
    if value is None and default is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"field {name!r} has the wrong type ({type(value).__name__})")
    return value


def event_from_json(data: dict[str, Any]) -> Event:
    """Read one event back from its JSON form (raises ``ValueError`` for a malformed one)."""
    if not isinstance(data, dict):
        raise ValueError("an event is a JSON object")
    kind = _field(data, "kind", str)
    t = float(_field(data, "t", (int, float)))
    conn = _field(data, "conn", int, 1)
    direction = _field(data, "dir", str, None)
    if direction not in ("c2s", "s2c", None):
        raise ValueError(f"unknown direction {direction!r}")
    if kind == "tcp":
        return TcpEvent(t, conn, _field(data, "event", str), direction,
                        _field(data, "detail", str, ""))
    if direction is None:
        raise ValueError("missing field 'dir'")
    if kind == "handshake":
        headers = _field(data, "headers", list)
        if not all(isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h)
                   for h in headers):
            raise ValueError("headers are [name, value] pairs")
        return HandshakeEvent(t, conn, direction, _field(data, "line", str),
                              tuple((name, value) for name, value in headers))
    if kind == "violation":
        return ViolationEvent(t, conn, direction, _field(data, "rfc", str),
                              _field(data, "code", int), _field(data, "message", str),
                              _field(data, "frame", int, None))
    if kind != "frame":
        raise ValueError(f"unknown event kind {kind!r}")
    opcode = _field(data, "opcode", (str, int))
    if isinstance(opcode, str) and opcode not in _OPCODE_VALUES:
        raise ValueError(f"unknown opcode name {opcode!r}")
    mask = _field(data, "mask", str, None)
    try:
        mask_bytes = None if mask is None else bytes.fromhex(mask)
    except ValueError:
        raise ValueError(f"invalid mask {mask!r}") from None
    return FrameEvent(
        t, conn, direction, _field(data, "index", int, 0), opcode,
        _field(data, "fin", bool), _field(data, "rsv1", bool, False),
        _field(data, "rsv2", bool, False), _field(data, "rsv3", bool, False),
        _field(data, "masked", bool, mask is not None), mask_bytes,
        _field(data, "length", int), _unb64(_field(data, "payload_b64", str, None)),
        _field(data, "text", str, None), _field(data, "compressed", bool, False),
        _unb64(_field(data, "inflated_b64", str, None)), _field(data, "code", int, None),
        _field(data, "reason", str, None), _field(data, "truncated", bool, False),
        _field(data, "redacted", bool, False))


def read_jsonl(lines: Iterable[str]) -> Iterator[Event]:
    """Events from JSON lines (blank lines skipped); ``ValueError`` names the bad line."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield event_from_json(json.loads(line))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"line {number}: {exc}") from None


def dumps(event: Event) -> str:
    """One JSON line (no newline)."""
    return json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":"))


# --- writing events -----------------------------------------------------------------------------


class EventWriter:
    """Where events go: text lines to ``text`` and JSON lines to ``jsonl`` (either may be
    ``None``), redacted unless ``show_secrets``."""

    def __init__(self, text: IO[str] | None = None, jsonl: IO[str] | None = None, *,
                 show_secrets: bool = False) -> None:
        self.text = text
        self.jsonl = jsonl
        self.show_secrets = show_secrets
        #: Every event written (for tests and embedders), when ``keep`` is set.
        self.events: list[Event] = []
        self.keep = False

    def __call__(self, events: list[Event]) -> None:
        if not events:
            return
        if not self.show_secrets:
            events = [redacted(event) for event in events]
        if self.keep:
            self.events.extend(events)
        if self.text is not None:
            self.text.write("".join(line + "\n" for e in events for line in format_event(e)))
            self.text.flush()
        if self.jsonl is not None:
            self.jsonl.write("".join(dumps(e) + "\n" for e in events))
            self.jsonl.flush()


# --- the tracing hook's records, as events -------------------------------------------------------


class RecordConverter:
    """The tracer of one connection: each :class:`~rawws.sansio.reader.FrameRecord` becomes a
    :class:`FrameEvent` (and a :class:`ViolationEvent` when the record has one), handed to
    ``sink`` as a list.

    ``side`` is the side the protocol plays (``"server"``: received frames are ``c2s``;
    ``"client"``: received frames are ``s2c``). ``hold``: keep the events until
    :meth:`release` (a client learns its connection's number after the first frames)."""

    def __init__(self, conn: int, side: str, sink: Callable[[list[Event]], None], *,
                 clock: Callable[[], float] = time.monotonic, hold: bool = False) -> None:
        if side not in ("server", "client"):
            raise ValueError(f"side is 'server' or 'client', not {side!r}")
        self.conn = conn
        self.sink = sink
        self.clock = clock
        self._received: Direction = "c2s" if side == "server" else "s2c"
        self._sent: Direction = "s2c" if side == "server" else "c2s"
        self._count = {"c2s": 0, "s2c": 0}
        self._text = {"c2s": False, "s2c": False}
        self._compressed = {"c2s": False, "s2c": False}
        self._held: list[Event] | None = [] if hold else None

    def release(self) -> None:
        held, self._held = self._held, None
        if held:
            self.sink(held)

    def __call__(self, record: Any) -> None:
        direction = self._received if record.direction == "received" else self._sent
        header = record.header
        opcode = header.opcode
        self._count[direction] += 1
        index = self._count[direction]
        if opcode in (1, 2):
            self._text[direction] = opcode == 1
        payload = bytes(record.payload)
        inflated = None if record.inflated is None else bytes(record.inflated)
        if opcode in (1, 2):
            self._compressed[direction] = header.rsv1
        compressed = opcode < 8 and (inflated is not None or (
            opcode in (0, 1, 2) and self._compressed[direction]))
        if compressed and inflated is None and opcode in (1, 2) and header.fin:
            # A frame serialized once for many connections (a broadcast) is recorded as bytes:
            # such a message is compressed without context takeover, so it inflates alone.
            inflated = _inflate_alone(payload)
        data = inflated if compressed else payload
        text = None
        if (opcode in (0, 1) and self._text[direction]) or opcode in (9, 10):
            try:
                text = data.decode("utf-8") if data is not None else None
            except UnicodeDecodeError:
                text = None
        code = reason = None
        if opcode == 8 and len(payload) >= 2:
            code = int.from_bytes(payload[:2], "big")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                reason = None
        now = self.clock()
        events: list[Event] = [FrameEvent(
            now, self.conn, direction, index, opcode_label(opcode), header.fin, header.rsv1,
            header.rsv2, header.rsv3, header.masked, header.mask_key, header.length, payload,
            text, compressed, inflated if compressed else None, code, reason,
            truncated=len(payload) < header.length)]
        violation = record.violation
        if violation is not None:
            events.append(ViolationEvent(now, self.conn, direction, violation.section,
                                         violation.close_code, violation.message, index))
        if self._held is not None:
            self._held.extend(events)
        else:
            self.sink(events)


#: The most a frame of a broadcast is inflated to, for display.
_INFLATE_LIMIT = 2**20


def _inflate_alone(payload: bytes) -> bytes | None:
    """A permessage-deflate message without context takeover, inflated (RFC 7692 §7.2.2), or
    ``None`` if it does not inflate alone or inflates past :data:`_INFLATE_LIMIT`."""
    inflater = zlib.decompressobj(-15)
    try:
        data = inflater.decompress(payload + b"\x00\x00\xff\xff", _INFLATE_LIMIT + 1)
    except zlib.error:
        return None
    return data if len(data) <= _INFLATE_LIMIT and not inflater.unconsumed_tail else None


def _head(line: str, headers: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    items = headers.raw_items() if hasattr(headers, "raw_items") else headers
    return line, tuple((str(k), str(v)) for k, v in items)


class Tracing:
    """``--trace``: the connections of a server (or a client) traced to ``sink``.

    A server installs :meth:`process_response` (it may wrap the server's own hook): each
    upgrade is numbered, its request and response heads become handshake events, and the
    connection gets a :class:`RecordConverter` as its tracer when the answer is a 101. A client
    gets its tracer from :meth:`client_tracer` (pass it to ``rawws.connect(tracer=...)``) and
    reports its handshake with :meth:`client_opened` once connected.
    """

    def __init__(self, sink: Callable[[list[Event]], None], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sink = sink
        self._clock = clock
        self._start = clock()
        self._ids = itertools.count(1)
        self._files: list[IO[str]] = []

    @classmethod
    def from_flags(cls, trace: bool, trace_jsonl: str | None, *,
                   text: IO[str] | None = None) -> Tracing | None:
        """The ``--trace`` (text lines on ``text``, stderr by default) and ``--trace-jsonl
        FILE`` flags of ``rawws echo``, ``rawws client`` and ``rawws serve``; ``None`` when
        neither is given (no tracer anywhere: no cost). Raises ``OSError`` for a file that
        cannot be written. Redacted, like every log (rawws.redact)."""
        if not trace and not trace_jsonl:
            return None
        jsonl = open(trace_jsonl, "w", encoding="utf-8") if trace_jsonl else None  # noqa: SIM115
        if text is None and trace:
            import sys
            text = sys.stderr
        tracing = cls(EventWriter(text if trace else None, jsonl))
        if jsonl is not None:
            tracing._files.append(jsonl)
        return tracing

    def close(self) -> None:
        for file in self._files:
            file.close()
        self._files.clear()

    def clock(self) -> float:
        return self._clock() - self._start

    def process_response(self, ws: Any, request: Any, response: Any) -> None:
        conn = next(self._ids)
        now = self.clock()
        line, headers = _head(f"{request.method} {request.target} {request.version}",
                              request.headers)
        reply, reply_headers = _head(f"HTTP/1.1 {response.status} {response.reason}",
                                     response.headers)
        self.sink([HandshakeEvent(now, conn, "c2s", line, headers),
                   HandshakeEvent(now, conn, "s2c", reply, reply_headers)])
        if response.status == 101:
            ws.set_tracer(RecordConverter(conn, "server", self.sink, clock=self.clock))

    def wrap(self, hook: Callable[..., Any] | None) -> Callable[..., Any]:
        """A ``process_response`` hook that runs ``hook`` first, then traces what it let
        through (its replacement response, if it returned one)."""
        def process_response(ws: Any, request: Any, response: Any) -> Any:
            result = hook(ws, request, response) if hook is not None else None
            if inspect.isawaitable(result):
                pending = result

                async def later() -> Any:
                    replaced = await pending
                    self.process_response(ws, request, replaced or response)
                    return replaced
                return later()
            self.process_response(ws, request, result or response)
            return result
        return process_response

    def client_tracer(self) -> RecordConverter:
        return RecordConverter(next(self._ids), "client", self.sink, clock=self.clock,
                               hold=True)

    def client_opened(self, tracer: RecordConverter, ws: Any) -> None:
        now = self.clock()
        request, response = ws.request, ws.response
        events: list[Event] = []
        if request is not None:
            line, headers = _head(f"{request.method} {request.target} {request.version}",
                                  request.headers)
            events.append(HandshakeEvent(now, tracer.conn, "c2s", line, headers))
        if response is not None:
            line, headers = _head(f"HTTP/1.1 {response.status} {response.reason}",
                                  response.headers)
            events.append(HandshakeEvent(now, tracer.conn, "s2c", line, headers))
        self.sink(events)
        tracer.release()


def add_trace_flags(parser: Any) -> None:
    """``--trace`` and ``--trace-jsonl FILE`` on an ``argparse`` parser."""
    parser.add_argument("--trace", action="store_true",
                        help="print every frame of every connection on stderr, one line each "
                             "(as rawws trace does)")
    parser.add_argument("--trace-jsonl", metavar="FILE",
                        help="write the same events as JSON lines to FILE")
