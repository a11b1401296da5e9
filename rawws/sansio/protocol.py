"""The WebSocket connection as a sans-I/O state machine (RFC 6455 §4-§7).

Owns: the connection state (CONNECTING, OPEN, CLOSING, CLOSED) and its one transition table; the
frame parser; message assembly (§5.4) with size limits and incremental UTF-8 checks (§8.1);
automatic pong (§5.5.2) and close echo (§5.5.1); failing the connection (§7.1.7); the outbox.

Does not own: sockets, timers or tasks. The caller (``rawws.aio``) feeds bytes with
:meth:`Protocol.receive_data` and :meth:`Protocol.receive_eof`, then collects
:meth:`Protocol.events_received` and :meth:`Protocol.data_to_send`, and closes the TCP connection
when :attr:`Protocol.close_transport` says so.

Theory of operation
-------------------

1. Bytes in, events and bytes out. Every call that can produce output appends frames to one
   outbox, so the bytes the application sends and the bytes the RFC requires (pong, close echo)
   leave in the order they were produced.
2. Events: a data message *is* its event (``str`` for text, ``bytes`` for binary); control frames
   give :class:`Ping`, :class:`Pong` and :class:`CloseReceived`; the handshake gives a
   :class:`~rawws.sansio.http11.Request` (server) or :class:`~rawws.sansio.http11.Response`
   (client).
3. Peer errors never escape :meth:`receive_data`: a :class:`~rawws.errors.ProtocolError` is caught
   and the connection is failed with the close code it carries (§7.1.7): a close frame is queued,
   parsing stops for good, and the server asks for the TCP connection to be closed.
4. Frames are checked when their header is complete, before any payload is buffered: opcode,
   RSV bits, mask bit, control-frame rules, continuation order, and the declared length against
   the message budget (1009). Payload bytes are then consumed as they arrive (no frame is
   re-buffered whole unless an extension needs it), which is what lets a bad UTF-8 byte fail the
   connection before the rest of its frame arrives.
5. The state changes only in :meth:`_set_state`, checked against ``TRANSITIONS``:

   ============ ================================================================
   CONNECTING   → OPEN (handshake succeeded), → CLOSED (handshake failed / EOF)
   OPEN         → CLOSING (close frame sent or received), → CLOSED (EOF, no close)
   CLOSING      → CLOSED (the TCP connection ended)
   ============ ================================================================

6. Closing (§7.1.1): the server closes TCP first, as soon as the closing handshake is complete
   (or right after failing); the client waits for the server to close it (the asyncio layer
   bounds the wait with ``close_timeout``).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
from collections.abc import Callable, Hashable, Sequence
from typing import cast

from ..errors import (
    InvalidHandshake,
    InvalidHeader,
    InvalidState,
    InvalidStatus,
    InvalidUTF8,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
)
from ..redact import redact_target, redact_text
from . import handshake
from .codes import CloseCode, Opcode
from .extensions import ClientExtensionFactory, Extension, ServerExtensionFactory
from .frames import (
    RSV1,
    RSV2,
    RSV3,
    Frame,
    _pack_2,
    _pack_4,
    _pack_10,
    serialize_close_payload,
)
from .frames import serialize_frame as _serialize_frame
from .http11 import (
    MAX_HEAD,
    MAX_HEADERS,
    MAX_LINE,
    Headers,
    HeadParser,
    Request,
    Response,
    parse_request_line,
    parse_status_line,
)
from .mask import apply_mask
from .reader import check_header, check_size, decode_header, parse_close_payload
from .utf8 import Utf8Decoder

__all__ = [
    "TRANSITIONS",
    "ClientProtocol",
    "CloseReceived",
    "Event",
    "Ping",
    "Pong",
    "Protocol",
    "ServerProtocol",
    "Side",
    "State",
]

_DEFAULT_LOGGER = logging.getLogger("rawws")

# Payloads under the mask's threshold (every 7-bit length) come back as ``bytes``.
_mask_small = cast(Callable[[bytes, bytes], bytes], apply_mask)


class State(enum.IntEnum):
    """Connection states (RFC 6455 §4.1 "_The WebSocket Connection is Established_", §7)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


TRANSITIONS: dict[State, frozenset[State]] = {
    State.CONNECTING: frozenset({State.OPEN, State.CLOSED}),
    State.OPEN: frozenset({State.CLOSING, State.CLOSED}),
    State.CLOSING: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}


class Side(enum.Enum):
    SERVER = "server"
    CLIENT = "client"


@dataclasses.dataclass(frozen=True, slots=True)
class Ping:
    """A ping arrived; the pong with the same payload is already queued (§5.5.2)."""

    payload: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Pong:
    """A pong arrived (§5.5.3)."""

    payload: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame arrived; the echo (if due) is already queued (§5.5.1)."""

    code: int
    reason: str


Event = str | bytes | Ping | Pong | CloseReceived | Request | Response

_CONNECTING = State.CONNECTING
_OP_CONT = Opcode.CONTINUATION.value
_OP_TEXT = Opcode.TEXT.value
_OP_BINARY = Opcode.BINARY.value
_OP_CLOSE = Opcode.CLOSE.value
_OP_PING = Opcode.PING.value
_OP_PONG = Opcode.PONG.value

_MASK_POOL_SIZE = 4096  # random bytes drawn at once for client masking keys (1024 frames)


class Protocol:
    """State shared by both sides: framing, assembly, control frames, closing.

    ``max_size`` bounds a message (``None``: unlimited); ``max_frame_size`` bounds a single
    frame. ``random`` supplies random bytes (masking keys, handshake keys): inject a
    deterministic source in tests. ``logger`` receives the debug transcript (``<`` received,
    ``>`` sent, ``=`` state change, ``!`` error, ``x`` TCP closed).
    """

    __slots__ = (
        "_broadcast_key",
        "_buf",
        "_close_echo_due",
        "_deferred_failure",
        "_events",
        "_expect_mask",
        "_frame_chunks",
        "_frame_fin",
        "_frame_key",
        "_frame_left",
        "_frame_offset",
        "_frame_opcode",
        "_frame_rsv",
        "_mask_pool",
        "_mask_pos",
        "_max_frame_size",
        "_max_size",
        "_msg_decoder",
        "_msg_opcode",
        "_msg_parts",
        "_msg_size",
        "_msg_text",
        "_out",
        "_parsing",
        "_plain_send",
        "_rsv_allowed",
        "_send_opcode",
        "_small_frame_limit",
        "close_rcvd",
        "close_rcvd_first",
        "close_sent",
        "close_transport",
        "debug",
        "eof_received",
        "extensions",
        "failure",
        "logger",
        "random",
        "state",
    )

    side: Side

    def __init__(
        self,
        *,
        state: State = State.CONNECTING,
        max_size: int | None = 2**20,
        max_frame_size: int | None = None,
        random: Callable[[int], bytes] = os.urandom,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self.state = state
        self._max_size = max_size
        self._max_frame_size = max_frame_size
        self.random = random
        self.logger = logger if logger is not None else _DEFAULT_LOGGER
        self.debug = self.logger.isEnabledFor(logging.DEBUG)
        # RFC 6455 §5.1: clients mask every frame, servers none.
        self._expect_mask = self.side is Side.SERVER

        #: Negotiated extensions, in the order they apply on send.
        self.extensions: list[Extension] = []
        # Derived from the extensions (and the side, the limits, the transcript): see
        # _use_extensions() and _fast_path_limit().
        self._rsv_allowed = 0
        self._plain_send = False
        self._small_frame_limit = -1
        self._broadcast_key: Hashable | None = None
        self._use_extensions([])
        #: The close frame received and the one sent, as ``(code, reason)``.
        self.close_rcvd: tuple[int, str] | None = None
        self.close_sent: tuple[int, str] | None = None
        #: Whether the peer's close arrived before we sent ours.
        self.close_rcvd_first = False
        #: Set when the TCP connection should be closed now (the server closes first, §7.1.1).
        self.close_transport = False
        #: The error that failed the connection, if any (peer error or handshake error).
        self.failure: Exception | None = None
        self._deferred_failure: ProtocolError | None = None
        self._close_echo_due = False
        self.eof_received = False

        self._events: list[Event] = []
        self._out: list[bytes] = []
        self._mask_pool = b""
        self._mask_pos = 0

        # Parser state: leftover bytes of an incomplete header, then the frame being streamed.
        self._parsing = True
        self._buf = b""
        self._frame_left = 0
        self._frame_offset = 0
        self._frame_key: bytes | None = None
        self._frame_fin = True
        self._frame_opcode = 0
        self._frame_rsv = 0
        self._frame_chunks: list[bytes | bytearray] | None = None  # None: streamed into the message

        # Assembler state: the message being received (opcode 0: none).
        self._msg_opcode = 0
        self._msg_parts: list[bytes | bytearray] = []
        self._msg_text: list[str] = []
        self._msg_size = 0
        self._msg_decoder: Utf8Decoder | None = None

        # Sender state: a fragmented message being sent (opcode 0: none).
        self._send_opcode = 0

    @property
    def max_size(self) -> int | None:
        """The largest message accepted, in bytes (``None``: unlimited); over it: 1009."""
        return self._max_size

    @max_size.setter
    def max_size(self, value: int | None) -> None:
        self._max_size = value
        self._small_frame_limit = self._fast_path_limit()

    @property
    def max_frame_size(self) -> int | None:
        """The largest frame accepted, in bytes (``None``: unlimited); over it: 1009."""
        return self._max_frame_size

    @max_frame_size.setter
    def max_frame_size(self, value: int | None) -> None:
        self._max_frame_size = value
        self._small_frame_limit = self._fast_path_limit()

    def _fast_path_limit(self) -> int:
        """The largest 7-bit payload length the parser's fast path may take: under every size
        limit, and -1 (never) when extensions or the transcript need the general path."""
        if self.debug or self.extensions:
            return -1
        limit = 125
        for bound in (self._max_size, self._max_frame_size):
            if bound is not None:
                limit = min(limit, bound)
        return limit

    # --- state -----------------------------------------------------------------------------------

    def _set_state(self, state: State) -> None:
        if state not in TRANSITIONS[self.state]:
            raise InvalidState(f"cannot go from {self.state.name} to {state.name}")
        if self.debug:
            self.logger.debug("= %s -> %s", self.state.name, state.name)
        self.state = state

    @property
    def close_code(self) -> int:
        """The code of the close frame received, or 1006 when none arrived (§7.1.5)."""
        return self.close_rcvd[0] if self.close_rcvd is not None else CloseCode.ABNORMAL_CLOSURE

    @property
    def close_reason(self) -> str:
        return self.close_rcvd[1] if self.close_rcvd is not None else ""

    @property
    def sending_fragmented(self) -> bool:
        """Whether a fragmented message is being sent (started with ``fin=False``)."""
        return bool(self._send_opcode)

    @property
    def receiving(self) -> bool:
        """Whether more messages may still arrive (the handshake is over, no close frame was
        received, the connection was not failed and the TCP stream has not ended)."""
        return self._parsing and self.state in (State.OPEN, State.CLOSING)

    def _use_extensions(self, extensions: list[Extension]) -> None:
        """Set the negotiated extensions and everything derived from them."""
        self.extensions = extensions
        self._rsv_allowed = 0
        for ext in extensions:
            self._rsv_allowed |= ext.rsv_bits
        # An unfragmented message can be serialized directly: server, no extension, no
        # transcript (send_text / send_binary).
        self._plain_send = self.side is Side.SERVER and not extensions and not self.debug
        self._small_frame_limit = self._fast_path_limit()
        if self.side is Side.CLIENT:
            self._broadcast_key = None  # every client frame has its own masking key
        else:
            keys = tuple(ext.broadcast_key for ext in extensions)
            self._broadcast_key = None if None in keys else keys

    # --- the boundary ----------------------------------------------------------------------------

    def events_received(self) -> list[Event]:
        """Return the events produced since the last call."""
        events, self._events = self._events, []
        return events

    def data_to_send(self, *, hold: bool = False) -> list[bytes]:
        """Return the bytes to write, in order, produced since the last call.

        A failure or close echo held behind messages that arrived with it (see
        :meth:`_peer_error`) is acted on here, unless ``hold`` is true: the caller is still
        handling those messages and only writes what its answers produced so far.
        """
        if hold:
            out, self._out = self._out, []
            return out
        if self._deferred_failure is not None:
            self._fail_with(self._deferred_failure)
            self._deferred_failure = None
        if self._close_echo_due:
            self._close_echo_due = False
            self._echo_close()
        out, self._out = self._out, []
        return out

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the network. Never raises for peer errors.

        After the handshake, this is the frame parser: the one place where frames are read
        (§5.2). Written for speed (benchmarks/micro.py, "parse"; benchmarks/run.py, 64 B echo):
        one loop over the bytes at hand, header fields read by index, no object per frame on
        the common path (a complete, unfragmented, uncompressed message becomes its event
        directly), and no further call for it.
        """
        if not self._parsing or self.state is _CONNECTING:
            if self.state is _CONNECTING and self._parsing:
                self._receive_handshake(data)
            # Otherwise: "An endpoint MUST NOT continue to attempt to process data (including a
            # responding Close frame) from the remote endpoint after being instructed to _Fail
            # the WebSocket Connection_" (§7.1.7), and no frame may follow a close frame
            # (§5.5.1).
            return
        try:
            if self._buf:
                data = self._buf + data
                self._buf = b""
            pos = 0
            end = len(data)
            expect_mask = self._expect_mask
            # The fast path below applies to frames up to this length (no limit can be crossed).
            small = self._small_frame_limit
            events = self._events
            while pos < end and self._parsing:
                # Payload of a frame whose header was read in an earlier call (or earlier here).
                if self._frame_left:
                    take = min(self._frame_left, end - pos)
                    self._frame_chunk(data[pos : pos + take])
                    pos += take
                    continue

                # --- header ----------------------------------------------------------------------
                if end - pos < 2:
                    break
                b0 = data[pos]
                b1 = data[pos + 1]

                # Fast path: a whole unfragmented TEXT or BINARY frame (FIN set, RSV clear: b0 is
                # 0x81 or 0x82) with a 7-bit length, masked as this side expects, outside any
                # fragmented message, with no extension and no transcript. Every rule of the
                # general path below holds for it by construction: the opcode is known, no RSV bit,
                # the right mask bit, no control frame, no continuation, and the length is under
                # every limit (``small``). Measured: benchmarks/micro.py, "parse".
                if ((b0 == 0x82 or b0 == 0x81) and b1 & 0x7F <= small and not self._msg_opcode
                        and (b1 >= 0x80) is expect_mask):
                    start = pos + 6 if expect_mask else pos + 2  # after the masking key, if any
                    stop = start + (b1 & 0x7F)
                    if stop <= end:
                        if not expect_mask:
                            payload = data[start:stop]
                        elif stop > start:
                            payload = _mask_small(data[start:stop], data[start - 4 : start])
                        else:
                            payload = b""
                        pos = stop
                        if b0 == 0x82:
                            events.append(payload)
                        else:
                            try:
                                events.append(payload.decode("utf-8"))
                            except UnicodeDecodeError as exc:
                                raise InvalidUTF8(f"text message is not valid UTF-8: "
                                                  f"{exc.reason}") from None
                        continue
                # General path: the header decoded, then every rule checked (reader.py).
                header = decode_header(data, pos)
                if header is None:
                    break
                opcode = header.opcode
                in_message = self._msg_opcode != 0
                violation = check_header(header, expect_mask=expect_mask,
                                         rsv_allowed=self._rsv_allowed, in_message=in_message)
                if violation is None and opcode < 8:
                    # Checked on the declared length, before any payload is buffered.
                    violation = check_size(header.length, max_size=self._max_size,
                                           received=self._msg_size if opcode == _OP_CONT else 0,
                                           max_frame_size=self._max_frame_size)
                if violation is not None:
                    raise violation.error()
                if opcode >= 8 or self._max_size is None:
                    budget = None
                else:
                    budget = self._max_size - (self._msg_size if opcode == _OP_CONT else 0)
                fin = header.fin
                rsv = header.rsv
                length = header.length
                key = header.mask_key
                head = header.header_length
                pos += head
                if end - pos >= length:
                    # Common case: the whole frame is here.
                    raw: bytes | bytearray = data[pos : pos + length]
                    pos += length
                    if key is not None and length:
                        raw = apply_mask(raw, key)
                    payload = bytes(raw) if type(raw) is bytearray else cast(bytes, raw)
                    self._frame(fin, rsv, opcode, payload, budget)
                    continue

                # The payload is still arriving: remember the frame, consume what is here.
                self._frame_left = length
                self._frame_offset = 0
                self._frame_key = key
                self._frame_fin = fin
                self._frame_opcode = opcode
                self._frame_rsv = rsv
                if opcode >= 8 or self.extensions:
                    # Control frames (at most 125 bytes) and frames an extension decodes whole.
                    self._frame_chunks = []
                else:
                    self._frame_chunks = None
                    if opcode:
                        self._start_message(opcode)
                if self.debug:
                    self.logger.debug("< %s frame header, %d-byte payload arriving",
                                      _opname(opcode), length)
            if pos < end and self._parsing:
                self._buf = data[pos:]
        except ProtocolError as exc:
            self._peer_error(exc)

    def receive_eof(self) -> None:
        """The peer ended the TCP stream."""
        self._tcp_ended("x EOF from peer")

    def connection_lost(self) -> None:
        """The TCP connection is closed (by either side). Same as EOF for the state machine."""
        self._tcp_ended("x TCP connection closed")

    def _tcp_ended(self, note: str) -> None:
        if self.eof_received:
            return
        self.eof_received = True
        if self.debug:
            self.logger.debug(note)
        self._parsing = False
        if self.state is not State.CLOSED:
            self._set_state(State.CLOSED)
        self.close_transport = True

    def _receive_handshake(self, data: bytes) -> None:
        raise NotImplementedError

    # --- failing ---------------------------------------------------------------------------------

    def fail(self, code: int, reason: str = "") -> None:
        """_Fail the WebSocket Connection_ (§7.1.7) with ``code``.

        "If _The WebSocket Connection is Established_ prior to the point where the endpoint is
        required to _Fail the WebSocket Connection_, the endpoint SHOULD send a Close frame with
        an appropriate status code (Section 7.4) before proceeding to _Close the WebSocket
        Connection_."
        """
        if self.debug:
            self.logger.debug("! failing with %d %s", code, reason)
        if self.state is State.OPEN:
            # Keep the reason within a control frame (123 bytes of UTF-8).
            encoded = reason.encode()[:123].decode("utf-8", "ignore")
            self._send_close_frame(code, encoded)
            self._set_state(State.CLOSING)
        self._stop_parsing()
        # A server closes TCP at once; a client waits for the server to do it (§7.1.1).
        if self.side is Side.SERVER:
            self.close_transport = True

    def _fail_with(self, exc: ProtocolError) -> None:
        self.failure = exc
        self.fail(exc.close_code, str(exc))

    # --- receiving frames ------------------------------------------------------------------------

    def _peer_error(self, exc: ProtocolError) -> None:
        """Fail the connection for a peer error found while parsing.

        When messages that arrived *before* the bad frame are still waiting in the events, the
        failure is applied at the next :meth:`data_to_send` instead: the application can answer
        those messages first, exactly as if the bad frame had arrived in a later read (Autobahn
        3.x-5.x send a valid message and a bad frame in one write and expect the valid one to be
        echoed). Parsing stops at once either way.
        """
        if self._events and self.state is State.OPEN:
            self.failure = exc
            self._deferred_failure = exc
            self._stop_parsing()
        else:
            self._fail_with(exc)

    def _stop_parsing(self) -> None:
        """Read nothing more: drop the partial frame and message (§7.1.7, §5.5.1)."""
        self._parsing = False
        self._buf = b""
        self._frame_left = 0
        self._reset_message()

    def _frame_chunk(self, chunk: bytes | bytearray) -> None:
        """Consume part of the payload of the frame being streamed."""
        key = self._frame_key
        if key is not None:
            shift = self._frame_offset & 3
            chunk = apply_mask(chunk, key[shift:] + key[:shift] if shift else key)
        self._frame_offset += len(chunk)
        self._frame_left -= len(chunk)
        last = not self._frame_left
        chunks = self._frame_chunks
        if chunks is None:
            # An unextended data frame: feed the message as bytes arrive (fail-fast UTF-8).
            self._message_data(chunk, last and self._frame_fin)
            return
        chunks.append(chunk)
        if last:
            payload = b"".join(chunks)
            self._frame_chunks = None
            opcode = self._frame_opcode
            if opcode >= 8 or self.max_size is None:
                budget = None
            else:
                budget = self.max_size - (self._msg_size if opcode == _OP_CONT else 0)
            self._frame(self._frame_fin, self._frame_rsv, opcode, payload, budget)

    def _frame(self, fin: bool, rsv: int, opcode: int, payload: bytes, budget: int | None) -> None:
        """Handle one complete frame (payload unmasked)."""
        if self.debug:
            self.logger.debug("< %s", Frame(opcode, payload, fin, bool(rsv & RSV1),
                                            bool(rsv & RSV2), bool(rsv & RSV3)))
        if opcode >= 8:
            self._control_frame(opcode, payload)
            return
        if self.extensions:
            frame = Frame(opcode, payload, fin, bool(rsv & RSV1), bool(rsv & RSV2),
                          bool(rsv & RSV3))
            for ext in reversed(self.extensions):
                frame = ext.decode(frame, max_size=budget)
            payload = frame.payload
        if opcode and fin:
            # An unfragmented message: the common case, no assembly needed.
            if opcode == _OP_TEXT:
                try:
                    self._events.append(payload.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise InvalidUTF8(f"text message is not valid UTF-8: {exc.reason}") from None
            else:
                self._events.append(payload)
            return
        if opcode:
            self._start_message(opcode)
        self._message_data(payload, fin)

    # --- assembling messages (§5.4) --------------------------------------------------------------

    def _start_message(self, opcode: int) -> None:
        self._msg_opcode = opcode
        self._msg_size = 0
        if opcode == _OP_TEXT:
            self._msg_decoder = Utf8Decoder()

    def _message_data(self, data: bytes | bytearray, final: bool) -> None:
        self._msg_size += len(data)
        if self.max_size is not None and self._msg_size > self.max_size:
            # Reached only when an extension's output grew past the budget without raising.
            raise PayloadTooBig(f"message over {self.max_size} bytes")
        decoder = self._msg_decoder
        if decoder is not None:
            try:
                text = decoder.decode(data, final)
            except UnicodeDecodeError as exc:
                # §8.1: fail as soon as the bytes cannot become valid UTF-8.
                raise InvalidUTF8(f"text message is not valid UTF-8: {exc.reason}") from None
            if text:
                self._msg_text.append(text)
            if final:
                self._events.append("".join(self._msg_text))
                self._reset_message()
        else:
            if data:
                self._msg_parts.append(data)
            if final:
                self._events.append(b"".join(self._msg_parts))
                self._reset_message()

    def _reset_message(self) -> None:
        self._msg_opcode = 0
        self._msg_parts = []
        self._msg_text = []
        self._msg_size = 0
        self._msg_decoder = None

    # --- control frames (§5.5) -------------------------------------------------------------------

    def _control_frame(self, opcode: int, payload: bytes) -> None:
        if opcode == _OP_PING:
            # §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
            # response, unless it already received a Close frame. [...] A Pong frame sent in
            # response to a Ping frame must have identical Application data."
            if self.state is not State.CLOSED and self.close_rcvd is None:
                self._send_frame(_OP_PONG, payload)
            self._events.append(Ping(payload))
        elif opcode == _OP_PONG:
            self._events.append(Pong(payload))
        else:
            self._close_frame(payload)

    def _close_frame(self, payload: bytes) -> None:
        code, reason = parse_close_payload(payload)  # raises 1002 / 1007 for a bad body
        self.close_rcvd = (code, reason)
        # Nothing after a close frame is data (§5.5.1: "the endpoint [...] MUST NOT send any more
        # data frames" after it), so parsing stops here.
        self._stop_parsing()
        if self.state is State.OPEN:
            self.close_rcvd_first = True
        if self.state is State.OPEN and self._events:
            # Messages that arrived before this close are still to be handled: the echo waits
            # for the next data_to_send(), so replies to them can go out first (§5.5.1: the
            # endpoint "MAY delay sending a Close frame until its current message is sent").
            self._close_echo_due = True
        else:
            self._echo_close()
        self._events.append(CloseReceived(code, reason))

    def _echo_close(self) -> None:
        """§5.5.1: "If an endpoint receives a Close frame and did not previously send a Close
        frame, the endpoint MUST send a Close frame in response. [...] it typically echos the
        status code it received." """
        assert self.close_rcvd is not None
        code, reason = self.close_rcvd
        if self.state is State.OPEN:
            self._send_close_frame(None if code == CloseCode.NO_STATUS_RCVD else code, reason)
            self._set_state(State.CLOSING)
        if self.side is Side.SERVER:
            # §7.1.1: the closing handshake is complete; the server closes TCP first.
            self.close_transport = True

    # --- sending ---------------------------------------------------------------------------------

    def _masking_key(self) -> bytes:
        # §5.3: "The masking key MUST be derived from a strong source of entropy": drawn from
        # ``random`` (os.urandom by default) 4 KiB at a time, which avoids a system call per
        # frame (benchmarks/micro.py, "serialize").
        pos = self._mask_pos
        if pos >= len(self._mask_pool):
            self._mask_pool = self.random(_MASK_POOL_SIZE)
            pos = 0
        self._mask_pos = pos + 4
        return self._mask_pool[pos : pos + 4]

    def _send_frame(self, opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> None:
        key = self._masking_key() if self.side is Side.CLIENT else None
        self._out.append(_serialize_frame(opcode, payload, fin=fin, rsv=rsv, masking_key=key))
        if self.debug:
            self.logger.debug("> %s", Frame(opcode, payload, fin, bool(rsv & RSV1),
                                            bool(rsv & RSV2), bool(rsv & RSV3)))

    def _send_close_frame(self, code: int | None, reason: str) -> None:
        payload = serialize_close_payload(code, reason)  # validates before anything is recorded
        self.close_sent = (code if code is not None else CloseCode.NO_STATUS_RCVD, reason)
        self._send_frame(_OP_CLOSE, payload)

    def _refuse_new_message(self) -> None:
        self._check_open()
        raise InvalidState("a fragmented message is being sent: use send_continuation()")

    def _check_open(self) -> None:
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send: connection is {self.state.name}")

    def _encode(self, opcode: int, payload: bytes, fin: bool,
                compress: bool | None) -> tuple[bytes, int]:
        """Apply the extensions to a data frame: its payload and RSV bits."""
        if not self.extensions:
            return payload, 0
        frame = Frame(opcode, payload, fin)
        for ext in self.extensions:
            frame = ext.encode(frame, compress=compress)
        rsv = (RSV1 if frame.rsv1 else 0) | (RSV2 if frame.rsv2 else 0) | (
            RSV3 if frame.rsv3 else 0)
        return frame.payload, rsv

    def _send_data(self, opcode: int, payload: bytes, fin: bool, compress: bool | None) -> None:
        payload, rsv = self._encode(opcode, payload, fin, compress)
        self._send_frame(opcode, payload, fin, rsv)

    def send_text(self, data: str | bytes, *, fin: bool = True,
                  compress: bool | None = None) -> None:
        """Send a text message, or its first fragment when ``fin`` is false.

        ``data`` may be ``bytes`` already encoded as UTF-8 (not checked: the caller vouches).
        """
        if self.state is not State.OPEN or self._send_opcode:
            self._refuse_new_message()
        payload = data.encode() if isinstance(data, str) else data
        if fin and self._plain_send:
            # The common case: an unmasked frame, its header packed here rather than by
            # frames.serialize_frame(), one call less per reply (benchmarks/run.py, echo).
            n = len(payload)
            self._out.append((_pack_2(0x81, n) if n < 126 else _pack_4(0x81, 126, n)
                              if n < 65536 else _pack_10(0x81, 127, n)) + payload)
            return
        self._send_data(_OP_TEXT, payload, fin, compress)
        if not fin:
            self._send_opcode = _OP_TEXT

    def send_binary(self, data: bytes | bytearray | memoryview, *, fin: bool = True,
                    compress: bool | None = None) -> None:
        """Send a binary message, or its first fragment when ``fin`` is false."""
        if self.state is not State.OPEN or self._send_opcode:
            self._refuse_new_message()
        payload = data if type(data) is bytes else bytes(data)
        if fin and self._plain_send:
            # The common case: an unmasked frame, its header packed here rather than by
            # frames.serialize_frame(), one call less per reply (benchmarks/run.py, echo).
            n = len(payload)
            self._out.append((_pack_2(0x82, n) if n < 126 else _pack_4(0x82, 126, n)
                              if n < 65536 else _pack_10(0x82, 127, n)) + payload)
            return
        self._send_data(_OP_BINARY, payload, fin, compress)
        if not fin:
            self._send_opcode = _OP_BINARY

    def send_continuation(self, data: str | bytes, *, fin: bool,
                          compress: bool | None = None) -> None:
        """Send the next fragment of the message started with ``fin=False`` (§5.4)."""
        self._check_open()
        if not self._send_opcode:
            raise InvalidState("no fragmented message is being sent")
        payload = data.encode() if isinstance(data, str) else bytes(data)
        self._send_data(_OP_CONT, payload, fin, compress)
        if fin:
            self._send_opcode = 0

    def send_ping(self, data: bytes = b"") -> None:
        """Send a ping (§5.5.2). At most 125 bytes."""
        self._check_open()
        if len(data) > 125:
            raise ValueError("ping payload is limited to 125 bytes")
        self._send_frame(_OP_PING, bytes(data))

    def send_pong(self, data: bytes = b"") -> None:
        """Send an unsolicited pong (§5.5.3: serves as a unidirectional heartbeat)."""
        self._check_open()
        if len(data) > 125:
            raise ValueError("pong payload is limited to 125 bytes")
        self._send_frame(_OP_PONG, bytes(data))

    def send_close(self, code: int | None = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (§7.1.2). ``code=None`` sends a close frame without a body.

        After this, received data frames are still delivered until the peer's close arrives.
        """
        self._check_open()
        self._send_close_frame(code, reason)
        # A fragmented message being sent can never be finished now (§5.5.1: no data frames
        # after a close frame); the close itself, a control frame, may interleave with it (§5.4).
        self._send_opcode = 0
        self._set_state(State.CLOSING)

    def send_prepared(self, frame_bytes: bytes) -> None:
        """Queue a frame serialized by :meth:`prepare_message` on a protocol with the same
        :attr:`broadcast_key` (the compress-once broadcast path)."""
        self._check_open()
        if self._send_opcode:
            raise InvalidState("a fragmented message is being sent")
        self._out.append(frame_bytes)

    @property
    def broadcast_key(self) -> Hashable | None:
        """Protocols with equal keys serialize any message to identical bytes.

        ``None`` when a frame depends on this connection (a client masks with a fresh key; an
        extension may carry compression state from one message to the next).
        """
        return self._broadcast_key

    def prepare_message(self, message: str | bytes, *, compress: bool | None = None) -> bytes:
        """Serialize ``message`` as one frame without queuing it (the broadcast path).

        Only meaningful when :attr:`broadcast_key` is not ``None``: the same bytes then suit
        every protocol with that key. With per-connection state, use ``send_text/binary``.
        """
        if isinstance(message, str):
            opcode, payload = _OP_TEXT, message.encode()
        else:
            opcode, payload = _OP_BINARY, bytes(message)
        payload, rsv = self._encode(opcode, payload, True, compress)
        return _serialize_frame(opcode, payload, rsv=rsv)


def _opname(opcode: int) -> str:
    try:
        return Opcode(opcode).name
    except ValueError:
        return f"opcode {opcode:#x}"


class ServerProtocol(Protocol):
    """The server side: reads the upgrade request (or a plain HTTP request), then frames.

    During the handshake, :meth:`receive_data` produces one :class:`Request` event; the caller
    answers with :meth:`send_response` of :meth:`accept` (101) or :meth:`reject` (an error).
    A request that is not an upgrade (no ``Upgrade: websocket``, no ``Sec-WebSocket-Key``) is a
    plain HTTP request: its body (``Content-Length``, at most ``max_body_size``) is read first.
    """

    __slots__ = (
        "_body",
        "_body_left",
        "_early",
        "_head",
        "_pending_extensions",
        "_request",
        "extension_factories",
        "extra_headers",
        "max_body_size",
        "origins",
        "request",
        "response",
        "select_subprotocol",
        "server_header",
        "subprotocol",
        "subprotocols",
    )

    side = Side.SERVER

    def __init__(
        self,
        *,
        origins: handshake.OriginPolicy | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: Callable[[Sequence[str]], str | None] | None = None,
        extensions: Sequence[ServerExtensionFactory] = (),
        extra_headers: Headers | Sequence[tuple[str, str]] | None = None,
        server_header: str | None = "rawws",
        max_body_size: int = 2**20,
        max_line: int = MAX_LINE,
        max_headers: int = MAX_HEADERS,
        max_head: int = MAX_HEAD,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.origins = origins
        self.subprotocols = subprotocols
        self.select_subprotocol = select_subprotocol
        self.extension_factories = extensions  # shared by every connection of a server
        self.extra_headers = extra_headers
        self.server_header = server_header
        self.max_body_size = max_body_size
        self._head: HeadParser | None = HeadParser(max_line=max_line, max_headers=max_headers,
                                                   max_head=max_head)
        self._request: Request | None = None
        self._body_left = 0
        self._body: list[bytes] = []
        self._early = b""  # bytes that followed the head (pipelined frames or a body)
        #: The request, once read, and the subprotocol chosen for it.
        self.request: Request | None = None
        self.subprotocol: str | None = None
        self.response: Response | None = None
        self._pending_extensions: list[Extension] = []

    def _receive_handshake(self, data: bytes) -> None:
        if self.response is not None or not self._parsing:
            return  # a response is decided: ignore anything else the client sends
        try:
            if self._request is not None:
                self._receive_body(data)
                return
            if self.request is not None:
                self._early += data  # frames sent before our 101: keep them for later
                return
            assert self._head is not None
            head = self._head.feed(data)
            if head is None:
                return
            rest = self._head.rest
            self._head = None  # the parser and its buffer are not needed any more
            start, header_items = head
            method, target, version = parse_request_line(start)
            request = Request(method, target, Headers(header_items), version=version)
            if request.is_upgrade:
                self.request = request
                self._early = rest
                self._events.append(request)
            else:
                self._start_body(request, rest)
        except InvalidHandshake as exc:
            self.failure = exc
            response = self.reject(exc.status, str(exc))
            self.send_response(response)
            # The request could not be read: there is no Request event to answer; the
            # response sent is the event (the caller may count or log it).
            self._events.append(response)

    def _start_body(self, request: Request, rest: bytes) -> None:
        headers = request.headers
        if "Transfer-Encoding" in headers:
            # RFC 9112 §6.3: a server MAY reject a body without Content-Length with 411.
            raise InvalidHandshake("chunked request bodies are not supported: "
                                   "send Content-Length", 411)
        lengths = set(parse_lengths(headers.get_all("Content-Length")))
        if len(lengths) > 1:
            raise InvalidHeader("Content-Length", ", ".join(headers.get_all("Content-Length")))
        length = lengths.pop() if lengths else 0
        if length > self.max_body_size:
            raise InvalidHandshake(f"request body of {length} bytes over "
                                   f"{self.max_body_size}", 413)
        self._request = request
        self._body_left = length
        self._body = []
        self._receive_body(rest)

    def _receive_body(self, data: bytes) -> None:
        assert self._request is not None
        if self._body_left:
            chunk = data[: self._body_left]
            self._body.append(chunk)
            self._body_left -= len(chunk)
        if not self._body_left:
            request = self._request
            request.body = b"".join(self._body)
            self._request = None
            self._body = []
            self.request = request
            self._events.append(request)
        # Bytes after the body (a pipelined request) are ignored: rawws answers one plain
        # request per connection, with "Connection: close".

    def accept(self, request: Request) -> Response:
        """Validate ``request`` and build the response: 101, or the error it deserves."""
        try:
            table = request.headers.table()
            key = handshake.check_request(request, origins=self.origins, table=table)
            offered = handshake.parse_tokens(table.get("sec-websocket-protocol", ()))
            if self.select_subprotocol is not None:
                subprotocol = self.select_subprotocol(offered)
                if subprotocol is not None and subprotocol not in offered:
                    raise NegotiationError(f"selected subprotocol {subprotocol!r} not offered")
            else:
                subprotocol = handshake.negotiate_subprotocol(offered, self.subprotocols)
            ext_header, extensions = handshake.negotiate_server_extensions(
                table.get("sec-websocket-extensions", ()), self.extension_factories
            )
        except InvalidHandshake as exc:
            self.failure = exc
            if self.debug:
                self.logger.debug("! invalid handshake: %s", redact_text(str(exc)))
            return self.reject(exc.status, str(exc),
                               [("Sec-WebSocket-Version", "13")] if exc.status == 426 else ())
        headers = Headers([
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", handshake.accept_key(key)),
        ])
        if subprotocol is not None:
            headers["Sec-WebSocket-Protocol"] = subprotocol
        if ext_header is not None:
            headers["Sec-WebSocket-Extensions"] = ext_header
        self._add_common_headers(headers)
        self.subprotocol = subprotocol
        self._pending_extensions = extensions
        return Response(101, headers)

    def reject(self, status: int, text: str = "",
               headers: Sequence[tuple[str, str]] | Headers = ()) -> Response:
        """Build an error response with a plain-text body."""
        body = (text + "\n").encode() if text else b""
        hdrs = Headers(headers)
        if "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "text/plain; charset=utf-8"
        return Response(status, hdrs, body)

    def _add_common_headers(self, headers: Headers) -> None:
        if self.extra_headers is not None:
            headers.extend(self.extra_headers)
        if self.server_header and "Server" not in headers:
            headers["Server"] = self.server_header

    def send_response(self, response: Response) -> None:
        """Send the handshake response (or the answer to a plain request).

        A 101 opens the connection; anything else ends it: the server closes TCP after writing.
        """
        if self.state is not State.CONNECTING or self.response is not None:
            raise InvalidState("a response was already sent")
        self.response = response
        if response.status == 101:
            self._use_extensions(self._pending_extensions)
            self._pending_extensions = []
            self._out.append(response.serialize())
            if self.debug:
                self.logger.debug("> HTTP 101 to %s",
                                  redact_target(self.request.target) if self.request else "")
            self._set_state(State.OPEN)
            early, self._early = self._early, b""
            if early:
                self.receive_data(early)
            return
        headers = response.headers
        if response.status >= 400 and self.failure is None:
            self.failure = InvalidHandshake(f"rejected with HTTP {response.status}",
                                            response.status)
        if "Content-Length" not in headers:
            headers["Content-Length"] = str(len(response.body))
        if "Connection" not in headers:
            headers["Connection"] = "close"
        self._add_common_headers(headers)
        self._out.append(response.serialize())
        if self.debug:
            self.logger.debug("> HTTP %d %s", response.status, response.reason)
        self._parsing = False
        self._set_state(State.CLOSED)
        self.close_transport = True


def parse_lengths(values: Sequence[str]) -> list[int]:
    """Content-Length values (RFC 9110 §8.6): digits only; several equal values are allowed."""
    lengths = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item.isdigit() or not item.isascii() or len(item) > 18:
                raise InvalidHeader("Content-Length", value)
            lengths.append(int(item))
    return lengths


class ClientProtocol(Protocol):
    """The client side: sends the upgrade request, validates the 101, then frames."""

    __slots__ = (
        "_head",
        "extension_factories",
        "extra_headers",
        "host",
        "key",
        "origin",
        "port",
        "request",
        "resource",
        "response",
        "secure",
        "subprotocol",
        "subprotocols",
        "user_agent",
    )

    side = Side.CLIENT

    def __init__(
        self,
        *,
        host: str,
        port: int,
        resource: str = "/",
        secure: bool = False,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        extensions: Sequence[ClientExtensionFactory] = (),
        extra_headers: Headers | Sequence[tuple[str, str]] | None = None,
        user_agent: str | None = "rawws",
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.host = host
        self.port = port
        self.resource = resource
        self.secure = secure
        self.origin = origin
        self.subprotocols = list(subprotocols) if subprotocols else None
        self.extension_factories = list(extensions)
        self.extra_headers = extra_headers
        self.user_agent = user_agent
        self.key = handshake.generate_key(self.random)
        self._head: HeadParser | None = HeadParser()
        self.request: Request | None = None
        self.response: Response | None = None
        self.subprotocol: str | None = None

    def connect(self) -> Request:
        """Build the upgrade request (RFC 6455 §4.1)."""
        default_port = 443 if self.secure else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        host_header = host if self.port == default_port else f"{host}:{self.port}"
        headers = Headers([
            ("Host", host_header),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", self.key),
            ("Sec-WebSocket-Version", "13"),
        ])
        if self.origin is not None:
            headers["Origin"] = self.origin
        if self.subprotocols:
            headers["Sec-WebSocket-Protocol"] = ", ".join(self.subprotocols)
        if self.extension_factories:
            headers["Sec-WebSocket-Extensions"] = handshake.build_extension_header(
                [(f.name, f.get_request_params()) for f in self.extension_factories]
            )
        if self.extra_headers is not None:
            headers.extend(self.extra_headers)
        if self.user_agent and "User-Agent" not in headers:
            headers["User-Agent"] = self.user_agent
        return Request("GET", self.resource, headers)

    def send_request(self, request: Request) -> None:
        self.request = request
        self._out.append(request.serialize())
        if self.debug:
            self.logger.debug("> GET %s HTTP/1.1", redact_target(request.target))

    def _receive_handshake(self, data: bytes) -> None:
        if not self._parsing:
            return
        try:
            assert self._head is not None
            head = self._head.feed(data)
            if head is None:
                return
            rest = self._head.rest
            self._head = None
            start, header_items = head
            _, status, reason = parse_status_line(start)
            headers = Headers(header_items)
            if status != 101:
                raise InvalidStatus(Response(status, headers, rest, reason=reason))
            self.subprotocol = handshake.check_response_headers(
                headers, self.key, self.subprotocols
            )
            extensions = handshake.negotiate_client_extensions(
                headers.get_all("Sec-WebSocket-Extensions"), self.extension_factories
            )
        except InvalidHandshake as exc:
            self.failure = exc
            if self.debug:
                self.logger.debug("! handshake failed: %s", redact_text(str(exc)))
            self._parsing = False
            self._set_state(State.CLOSED)
            self.close_transport = True
            return
        self.response = Response(status, headers, reason=reason)
        self._use_extensions(extensions)
        self._set_state(State.OPEN)
        self._events.append(self.response)
        if rest:
            self.receive_data(rest)
