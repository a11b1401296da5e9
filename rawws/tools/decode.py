"""Decoding one TCP connection seen from the middle: both byte streams in, wire-log events out.

Owns: :class:`ConnectionDecoder`, which the tracing proxy feeds with every chunk it forwards.
It reads the opening handshake (the request head, then the response head), learns from the
101 whether permessage-deflate applies, then reads frames in both directions with the sans-I/O
core's own header decoder and rules (:mod:`rawws.sansio.reader`) and inflates with its own
permessage-deflate (:mod:`rawws.sansio.deflate`): the tools decode exactly as the stack does.

Does not own: sockets (the proxy), output (the wire log), policy. It never fixes anything and
never stops: a broken rule becomes a :class:`~rawws.wirelog.ViolationEvent` with its RFC
section, and decoding goes on as far as the bytes allow.

Theory of operation:

1. Each direction is a small state machine: HTTP head, then frames (after a 101), or opaque
   bytes (after any other response: a plain HTTP exchange is not decoded further).
2. Client frames that arrive before the response are held (at most :data:`MAX_HELD` bytes)
   until the response says which extensions apply.
3. A frame is reported when its last byte arrives. Its payload is kept up to ``max_payload``
   bytes (longer frames are ``truncated``: shown, not inflated, not replayable); memory per
   connection is bounded by that, whatever the peers send.
4. Checks, per frame: the header rules (opcode, RSV bits against the negotiated extensions,
   mask bit for the direction, 64-bit length, control frames, continuation order; the minimal
   length encoding too, a MUST for senders that receivers do not enforce), RSV1 on a
   continuation frame (RFC 7692 §6.1), the DEFLATE data (RFC 7692 §7.2.2), UTF-8 across the
   fragments of a text message (§8.1), the close frame's body (§5.5.1, §7.4), and any frame
   after a close frame (§5.5.1).
5. The handshake is checked with the core's rules too: the request as a server would
   (§4.2.1; the code is the HTTP status it would answer), the response as a client would
   (§4.1; the code is 1002, "_Fail the WebSocket Connection_").
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..errors import InvalidHandshake, ProtocolError
from ..sansio import handshake
from ..sansio.deflate import PerMessageDeflate
from ..sansio.frames import RSV1, Frame
from ..sansio.http11 import Headers, HeadParser, Request, parse_request_line, parse_status_line
from ..sansio.mask import apply_mask
from ..sansio.reader import (
    Header,
    Violation,
    check_close_payload,
    check_continuation,
    check_control,
    check_length,
    check_mask,
    check_minimal_length,
    check_opcode,
    check_rsv,
    decode_header,
)
from ..sansio.utf8 import Utf8Decoder
from ..wirelog import (
    Direction,
    Event,
    FrameEvent,
    HandshakeEvent,
    TcpEvent,
    ViolationEvent,
    opcode_label,
)

__all__ = ["MAX_HELD", "MAX_PAYLOAD", "ConnectionDecoder"]

#: Payload bytes kept per frame (and the most a frame may inflate to) by default.
MAX_PAYLOAD = 16 * 2**20
#: Client bytes held while the response is awaited.
MAX_HELD = 2**20

_HEAD, _FRAMES, _HELD, _OPAQUE = "head", "frames", "held", "opaque"


class _Stream:
    """One direction of the connection."""

    def __init__(self, direction: Direction) -> None:
        self.dir: Direction = direction
        self.mode = _HEAD
        self.head: HeadParser | None = HeadParser()
        self.buf = bytearray()
        self.header: Header | None = None
        self.kept = bytearray()
        self.left = 0  # payload bytes of the current frame still to come
        self.frames = 0
        self.in_message = False
        self.message_text = False
        self.compressed = False
        self.utf8: Utf8Decoder | None = None  # None: not a text message, or already invalid
        self.closed = False  # a close frame was sent this way
        self.deflate: PerMessageDeflate | None = None
        self.deflate_broken = False


class ConnectionDecoder:
    """Decode both directions of connection number ``conn``.

    ``clock`` gives the time of each event (seconds; the proxy passes its elapsed time).
    """

    def __init__(self, conn: int, *, clock: Callable[[], float] = time.monotonic,
                 max_payload: int = MAX_PAYLOAD) -> None:
        self.conn = conn
        self.clock = clock
        self.max_payload = max_payload
        self.streams = {"c2s": _Stream("c2s"), "s2c": _Stream("s2c")}
        self.request: Request | None = None
        self.rsv_allowed = 0
        self.extensions: list[str] = []

    # --- the boundary ----------------------------------------------------------------------------

    def feed(self, direction: Direction, data: bytes) -> list[Event]:
        """Decode ``data``, the next bytes sent in ``direction``; return the events completed."""
        stream = self.streams[direction]
        events: list[Event] = []
        if stream.mode == _OPAQUE or not data:
            return events
        if stream.mode == _HEAD:
            data = self._head(stream, data, events)
            if stream.mode != _FRAMES and stream.mode != _HELD:
                return events
        if stream.mode == _HELD:
            stream.buf += data
            if len(stream.buf) > MAX_HELD:
                stream.mode = _OPAQUE
                stream.buf = bytearray()
                events.append(TcpEvent(self.clock(), self.conn, "error", direction,
                                       f"over {MAX_HELD} bytes sent before the response: "
                                       "not decoded"))
            return events
        stream.buf += data
        self._frames(stream, events)
        return events

    def eof(self, direction: Direction) -> list[Event]:
        """The side ``direction`` comes from ended its stream."""
        stream = self.streams[direction]
        events: list[Event] = []
        if stream.mode == _FRAMES and stream.header is not None:
            # The frame as far as it came (its header rules are still worth reporting).
            self._frame(stream, stream.header, events)
            stream.header = None
        events.append(TcpEvent(self.clock(), self.conn, "eof", direction))
        if stream.mode == _FRAMES and (events[0].kind == "frame" or stream.buf):
            events.append(TcpEvent(self.clock(), self.conn, "error", direction,
                                   "the stream ended in the middle of a frame"))
        stream.mode = _OPAQUE
        return events

    # --- the handshake ---------------------------------------------------------------------------

    def _head(self, stream: _Stream, data: bytes, events: list[Event]) -> bytes:
        assert stream.head is not None
        try:
            head = stream.head.feed(data)
        except InvalidHandshake as exc:
            stream.mode = _OPAQUE
            events.append(TcpEvent(self.clock(), self.conn, "error", stream.dir,
                                   f"unreadable HTTP head: {exc}"))
            return b""
        if head is None:
            return b""
        rest = stream.head.rest
        stream.head = None
        start, items = head
        line = start.decode("latin-1")
        headers = Headers(items)
        now = self.clock()
        events.append(HandshakeEvent(now, self.conn, stream.dir, line, tuple(items)))
        if stream.dir == "c2s":
            self._request(line, start, headers, events)
            # Frames sent before the response wait for it (the extensions decide their RSV).
            stream.mode = _HELD if self.request is not None and self.request.is_upgrade else (
                _OPAQUE)
        else:
            self._response(start, headers, events)
        return rest

    def _request(self, line: str, start: bytes, headers: Headers, events: list[Event]) -> None:
        try:
            method, target, version = parse_request_line(start)
        except InvalidHandshake as exc:
            events.append(ViolationEvent(self.clock(), self.conn, "c2s", "4.2.1", exc.status,
                                         str(exc)))
            return
        self.request = request = Request(method, target, headers, version=version)
        if not request.is_upgrade:
            return
        try:
            handshake.check_request(request)
        except InvalidHandshake as exc:
            events.append(ViolationEvent(self.clock(), self.conn, "c2s", "4.2.1", exc.status,
                                         str(exc)))

    def _response(self, start: bytes, headers: Headers, events: list[Event]) -> None:
        client = self.streams["c2s"]
        server = self.streams["s2c"]
        try:
            _, status, _ = parse_status_line(start)
        except InvalidHandshake as exc:
            events.append(ViolationEvent(self.clock(), self.conn, "s2c", "4.1", 1002, str(exc)))
            status = 0
        request = self.request
        if status != 101 or request is None or not request.is_upgrade:
            server.mode = client.mode = _OPAQUE
            client.buf = bytearray()
            return
        key = request.headers.get("Sec-WebSocket-Key") or ""
        offered = handshake.parse_tokens(request.headers.get_all("Sec-WebSocket-Protocol"))
        try:
            handshake.check_response_headers(headers, key, offered)
        except InvalidHandshake as exc:
            events.append(ViolationEvent(self.clock(), self.conn, "s2c", "4.1", 1002, str(exc)))
        self._extensions(headers, events)
        server.mode = client.mode = _FRAMES
        held, client.buf = bytes(client.buf), bytearray()
        if held:
            client.buf += held
            self._frames(client, events)

    def _extensions(self, headers: Headers, events: list[Event]) -> None:
        assert self.request is not None
        try:
            offers = handshake.parse_extension_header(
                self.request.headers.get_all("Sec-WebSocket-Extensions"))
            accepted = handshake.parse_extension_header(
                headers.get_all("Sec-WebSocket-Extensions"))
        except InvalidHandshake as exc:
            events.append(ViolationEvent(self.clock(), self.conn, "s2c", "9.1", 1002, str(exc)))
            return
        offered_names = {name for name, _ in offers}
        for name, params in accepted:
            self.extensions.append(name)
            if name not in offered_names:
                events.append(ViolationEvent(
                    self.clock(), self.conn, "s2c", "4.1", 1002,
                    f"the server accepted extension {name!r}, which was not offered"))
            if name != "permessage-deflate":
                self.rsv_allowed = RSV1 | 0x20 | 0x10  # unknown meaning: RSV bits not judged
                continue
            response = dict(params)
            client_nct = "client_no_context_takeover" in response or any(
                "client_no_context_takeover" in dict(p) for n, p in offers if n == name)
            try:
                server_bits = int(response.get("server_max_window_bits") or 15)
                client_bits = int(response.get("client_max_window_bits") or 15)
                # Each direction inflates what the other side compressed: the client's
                # frames with the client's window, the server's with the server's.
                self.streams["c2s"].deflate = PerMessageDeflate(
                    remote_no_context_takeover=client_nct,
                    remote_max_window_bits=max(client_bits, 9))
                self.streams["s2c"].deflate = PerMessageDeflate(
                    remote_no_context_takeover="server_no_context_takeover" in response,
                    remote_max_window_bits=max(server_bits, 9))
            except ValueError as exc:
                events.append(ViolationEvent(self.clock(), self.conn, "s2c", "RFC 7692 7.1",
                                             1002, f"bad permessage-deflate parameter: {exc}"))
                continue
            self.rsv_allowed |= RSV1

    # --- frames ----------------------------------------------------------------------------------

    def _frames(self, stream: _Stream, events: list[Event]) -> None:
        buf = stream.buf
        pos = 0
        while True:
            if stream.header is None:
                header = decode_header(buf, pos)
                if header is None:
                    break
                pos += header.header_length
                stream.header = header
                stream.left = header.length
                stream.kept = bytearray()
            take = min(stream.left, len(buf) - pos)
            room = self.max_payload - len(stream.kept)
            if room > 0:
                stream.kept += buf[pos : pos + min(take, room)]
            pos += take
            stream.left -= take
            if stream.left:
                break
            self._frame(stream, stream.header, events)
            stream.header = None
        del buf[:pos]

    def _frame(self, stream: _Stream, header: Header, events: list[Event]) -> None:
        now = self.clock()
        stream.frames += 1
        index = stream.frames
        violations: list[Violation] = []

        def check(violation: Violation | None) -> None:
            if violation is not None:
                violations.append(violation)

        opcode = header.opcode
        is_data = opcode in (0, 1, 2)
        if stream.closed:
            violations.append(Violation(1002, "5.5.1", "frame sent after a close frame"))
        check(check_opcode(header))
        check(check_rsv(header, allowed=self.rsv_allowed))
        check(check_mask(header, expect_mask=stream.dir == "c2s"))
        check(check_length(header))
        check(check_minimal_length(header))
        check(check_control(header))
        check(check_continuation(header, in_message=stream.in_message))
        deflate = stream.deflate
        if deflate is not None and opcode == 0 and header.rsv1:
            violations.append(Violation(1002, "RFC 7692 6.1",
                                        "RSV1 set on a continuation frame"))

        truncated = header.length > len(stream.kept)  # over max_payload, or cut by the EOF
        payload = bytes(stream.kept)
        stream.kept = bytearray()
        if header.mask_key is not None and payload:
            payload = bytes(apply_mask(payload, header.mask_key))

        # Message state (§5.4): a data frame starts or continues a message.
        if opcode in (1, 2):
            stream.message_text = opcode == 1
            stream.compressed = deflate is not None and header.rsv1
            stream.utf8 = Utf8Decoder() if opcode == 1 else None
        elif opcode == 0 and not stream.in_message:
            stream.message_text = False
            stream.compressed = False
            stream.utf8 = None
        compressed = is_data and stream.compressed

        inflated: bytes | None = None
        if is_data and deflate is not None and not stream.deflate_broken:
            if truncated:
                stream.deflate_broken = True  # the window is lost with the missing bytes
            else:
                frame = Frame(opcode, payload, header.fin, header.rsv1 and opcode != 0,
                              header.rsv2, header.rsv3)
                try:
                    decoded = deflate.decode(frame, max_size=self.max_payload)
                except ProtocolError as exc:
                    violations.append(Violation(exc.close_code, "RFC 7692 7.2.2", str(exc)))
                    stream.deflate_broken = True
                else:
                    if compressed:
                        inflated = decoded.payload
        data = inflated if compressed else (None if truncated else payload)

        text: str | None = None
        if data is not None and ((stream.message_text and is_data) or opcode in (9, 10)):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if is_data and stream.utf8 is not None:
            if data is None:
                stream.utf8 = None  # cannot be checked any more
            else:
                try:
                    stream.utf8.decode(data, header.fin)
                except UnicodeDecodeError as exc:
                    violations.append(Violation(1007, "8.1",
                                                f"text message is not valid UTF-8: {exc.reason}"))
                    stream.utf8 = None

        code: int | None = None
        reason: str | None = None
        if opcode == 8:
            stream.closed = True
            if not truncated:
                check(check_close_payload(payload))
                if len(payload) >= 2:
                    code = int.from_bytes(payload[:2], "big")
                    try:
                        reason = payload[2:].decode("utf-8")
                    except UnicodeDecodeError:
                        reason = None

        if is_data and (opcode != 0 or stream.in_message):
            stream.in_message = not header.fin

        events.append(FrameEvent(
            now, self.conn, stream.dir, index, opcode_label(opcode), header.fin, header.rsv1,
            header.rsv2, header.rsv3, header.masked, header.mask_key, header.length, payload, text,
            compressed, inflated, code, reason, truncated))
        events.extend(ViolationEvent(now, self.conn, stream.dir, v.section, v.close_code,
                                     v.message, index) for v in violations)
