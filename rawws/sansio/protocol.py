"""The WebSocket connection as a sans-I/O state machine (RFC 6455 §4-§7).

Owns: the connection state (CONNECTING, OPEN, CLOSING, CLOSED) and the one table that changes
it; control frames (pong §5.5.2-§5.5.3, close echo §5.5.1); failing the connection (§7.1.7);
the closing handshake (§7.1); the opening handshake's place in it, on both sides
(:class:`ServerProtocol`, :class:`ClientProtocol`).

Does not own: sockets, timers or tasks. The caller (``rawws.aio``) feeds bytes with
:meth:`Protocol.receive_data` and :meth:`Protocol.receive_eof`, then collects
:meth:`Protocol.events_received` and :meth:`Protocol.data_to_send`, and closes the TCP connection
when :attr:`Protocol.close_transport` says so.

One frame, in order through the modules: ``receive_data`` → :class:`~.reader.FrameReader`
(bytes to frames, every header rule) → :class:`~.assembler.MessageAssembler` (frames to messages:
fragments, UTF-8, size, inflation) → an event. Control frames come back here. ``send_*`` →
:class:`~.writer.FrameWriter` (extensions, masking, the outbox) → ``data_to_send``.

Theory of operation
-------------------

1. Bytes in, events and bytes out. Every call that can produce output queues it in one outbox,
   so the bytes the application sends and the bytes the RFC requires (pong, close echo) leave in
   the order they were produced.
2. Events: a data message *is* its event (``str`` for text, ``bytes`` for binary); control frames
   give :class:`Ping`, :class:`Pong` and :class:`CloseReceived`; the handshake gives a
   :class:`~rawws.sansio.http11.Request` (server) or :class:`~rawws.sansio.http11.Response`
   (client).
3. Peer errors never escape :meth:`~Protocol.receive_data`: a
   :class:`~rawws.errors.ProtocolError` is caught and the connection is failed with the close
   code it carries (§7.1.7): a close frame is queued and reading stops for good.
4. The state changes in one place, :meth:`Protocol._transition`, and only as ``TRANSITIONS``
   says:

   ============ ================ ==========
   state        trigger          next state
   ============ ================ ==========
   CONNECTING   HANDSHAKE_DONE   OPEN
   CONNECTING   HANDSHAKE_FAILED CLOSED
   CONNECTING   TCP_CLOSED       CLOSED
   OPEN         CLOSE_SENT       CLOSING
   OPEN         TCP_CLOSED       CLOSED
   CLOSING      TCP_CLOSED       CLOSED
   ============ ================ ==========

   Receiving the peer's close changes nothing by itself: answering it (CLOSE_SENT) does.
5. A close owed to the peer may wait for answers (:attr:`~Protocol.close_pending`). When the
   peer's close, or a frame that fails the connection, arrives in the same
   :meth:`~Protocol.receive_data` as messages before it, the close frame we owe is held: the
   state stays OPEN, so the application can answer those messages first, exactly as if the bad
   frame had come in a later read (§5.5.1: an endpoint "MAY delay sending a Close frame until
   its current message is sent"; Autobahn 3.x-5.x, 7.1.6). The adapter calls
   :meth:`~Protocol.release_close` once they are answered. Otherwise the close goes out at once.
6. Closing TCP (§7.1.1): the server closes it first, as soon as the closing handshake is
   complete (or right after failing); the client waits for the server to close it (the adapter
   bounds the wait with ``close_timeout``). :attr:`~Protocol.close_transport` says when.
7. Pongs (§5.5.2, §5.5.3): every ping is answered, in order, while writing flows. While the
   adapter reports its write buffer above the high-water mark (:meth:`~Protocol.pause_writing`),
   the pong is *owed* instead: at most one, for the most recent ping, sent when writing resumes
   (:meth:`~Protocol.resume_writing`). A peer that pings and never reads cannot make the
   connection queue pongs without bound.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
from collections.abc import Callable, Hashable

from ..errors import (
    InvalidState,
    ProtocolError,
)
from ..redact import redact_text
from .assembler import MessageAssembler
from .codes import CloseCode, Opcode
from .extensions import Extension
from .frames import Frame, _pack_2, _pack_4, serialize_close_payload
from .http11 import (
    Request,
    Response,
)
from .options import DEFAULT_OPTIONS, Options
from .reader import FrameReader, FrameRecord, Tracer, parse_close_payload
from .writer import _SPLIT, FrameWriter

__all__ = [
    "TRANSITIONS",
    "CloseReceived",
    "Event",
    "Ping",
    "Pong",
    "Protocol",
    "Side",
    "State",
    "Trigger",
]

_DEFAULT_LOGGER = logging.getLogger("rawws")


class State(enum.IntEnum):
    """Connection states (RFC 6455 §4.1 "_The WebSocket Connection is Established_", §7)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class Trigger(enum.Enum):
    """What moves the state (theory of operation, rule 4)."""

    HANDSHAKE_DONE = "the opening handshake succeeded"
    HANDSHAKE_FAILED = "the opening handshake failed"
    CLOSE_SENT = "our close frame is queued"
    TCP_CLOSED = "the TCP connection ended"


#: The one source of truth for state changes: ``(state, trigger) -> next state``.
TRANSITIONS: dict[tuple[State, Trigger], State] = {
    (State.CONNECTING, Trigger.HANDSHAKE_DONE): State.OPEN,
    (State.CONNECTING, Trigger.HANDSHAKE_FAILED): State.CLOSED,
    (State.CONNECTING, Trigger.TCP_CLOSED): State.CLOSED,
    (State.OPEN, Trigger.CLOSE_SENT): State.CLOSING,
    (State.OPEN, Trigger.TCP_CLOSED): State.CLOSED,
    (State.CLOSING, Trigger.TCP_CLOSED): State.CLOSED,
}


class Side(enum.Enum):
    SERVER = "server"
    CLIENT = "client"


@dataclasses.dataclass(frozen=True, slots=True)
class Ping:
    """A ping arrived; its pong is already queued, or owed (§5.5.2)."""

    payload: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Pong:
    """A pong arrived (§5.5.3)."""

    payload: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame arrived; the echo (if due) is queued or pending (§5.5.1)."""

    code: int
    reason: str


Event = str | bytes | Ping | Pong | CloseReceived | Request | Response

_CONNECTING = State.CONNECTING
_OPEN = State.OPEN
_OP_TEXT = Opcode.TEXT.value
_OP_BINARY = Opcode.BINARY.value
_OP_CONT = Opcode.CONTINUATION.value
_OP_CLOSE = Opcode.CLOSE.value
_OP_PING = Opcode.PING.value
_OP_PONG = Opcode.PONG.value


class _Transcript:
    """The debug transcript's frame lines (``<`` received, ``>`` sent, ``!`` a violation), as
    a tracer: payloads are previewed and redacted by :class:`~rawws.sansio.frames.Frame`."""

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> None:
        self.logger = logger

    def __call__(self, record: FrameRecord) -> None:
        h = record.header
        payload = record.inflated if record.inflated is not None else record.payload
        frame = Frame(h.opcode, payload, h.fin, h.rsv1, h.rsv2, h.rsv3)
        if record.violation is not None:
            self.logger.debug("! %s: %s", frame, record.violation)
        else:
            self.logger.debug("%s %s", "<" if record.direction == "received" else ">", frame)


def _both(first: Tracer | None, second: Tracer | None) -> Tracer | None:
    if first is None or second is None:
        return first or second

    def tee(record: FrameRecord) -> None:
        first(record)
        second(record)

    return tee


class Protocol:
    """What both sides share: reading, control frames, closing, sending.

    ``options`` holds the limits (:class:`~rawws.sansio.options.Options`); ``random`` supplies
    random bytes (masking keys, handshake keys): inject a deterministic source in tests.
    ``logger`` receives the debug transcript (``<`` received, ``>`` sent, ``=`` state change,
    ``!`` error, ``x`` TCP closed); ``tracer`` is called with a
    :class:`~rawws.sansio.reader.FrameRecord` for every frame received and sent (for tools;
    without one, tracing costs nothing).
    """

    __slots__ = (
        "_assembler",
        "_broadcast_key",
        "_events",
        "_failed",
        "_pending_failure",
        "_plain_send",
        "_pong_owed",
        "_reader",
        "_send_opcode",
        "_writer",
        "close_pending",
        "close_rcvd",
        "close_rcvd_first",
        "close_sent",
        "debug",
        "eof_received",
        "extensions",
        "failure",
        "logger",
        "options",
        "random",
        "state",
        "tracer",
        "writing_paused",
    )

    side: Side

    def __init__(
        self,
        *,
        options: Options = DEFAULT_OPTIONS,
        state: State = State.CONNECTING,
        random: Callable[[int], bytes] = os.urandom,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.options = options
        self.state = state
        self.random = random
        self.logger = logger if logger is not None else _DEFAULT_LOGGER
        self.debug = self.logger.isEnabledFor(logging.DEBUG)
        #: The tracer given (the transcript's own, at debug level, is added to it).
        self.tracer = tracer
        frames = _both(tracer, _Transcript(self.logger) if self.debug else None)
        self._events: list[Event] = []
        self._assembler = MessageAssembler(self._events, max_size=options.max_size)
        # §5.1: clients mask every frame, servers none.
        self._reader = FrameReader(self._assembler, self, expect_mask=self.side is Side.SERVER,
                                   max_frame_size=options.max_frame_size, tracer=frames)
        self._writer = FrameWriter(mask=self.side is Side.CLIENT, random=random, tracer=frames)
        #: Negotiated extensions, in the order they apply on send.
        self.extensions: list[Extension] = []
        self._plain_send = False
        self._broadcast_key: Hashable | None = None
        self._use_extensions([])
        #: The close frame received and the one sent, as ``(code, reason)``.
        self.close_rcvd: tuple[int, str] | None = None
        self.close_sent: tuple[int, str] | None = None
        #: Whether the peer's close arrived before we sent ours.
        self.close_rcvd_first = False
        #: The error that failed the connection, if any (peer error or handshake error).
        self.failure: Exception | None = None
        self._failed = False
        #: The close frame owed to the peer and held behind the messages that came before it
        #: (rule 5), as ``(code, reason)``: answer them, then call :meth:`release_close`.
        #: ``None`` when no close is held (an attribute, not a property: the adapter reads it
        #: after every read).
        self.close_pending: tuple[int | None, str] | None = None
        self._pending_failure = False  # the close held is a failure's (not an echo)
        self.eof_received = False
        #: Set by the adapter while its write buffer is above the high-water mark (rule 7).
        self.writing_paused = False
        self._pong_owed: bytes | None = None
        # A fragmented message being sent (opcode 0: none).
        self._send_opcode = 0

    # --- options ---------------------------------------------------------------------------------

    @property
    def max_size(self) -> int | None:
        """The largest message accepted, in bytes (``None``: unlimited); over it: 1009."""
        return self.options.max_size

    @max_size.setter
    def max_size(self, value: int | None) -> None:
        self.options = dataclasses.replace(self.options, max_size=value)
        self._assembler.max_size = value
        self._reader.configure()

    @property
    def max_frame_size(self) -> int | None:
        """The largest frame accepted, in bytes (``None``: unlimited); over it: 1009."""
        return self.options.max_frame_size

    @max_frame_size.setter
    def max_frame_size(self, value: int | None) -> None:
        self.options = dataclasses.replace(self.options, max_frame_size=value)
        self._reader.max_frame_size = value
        self._reader.configure()

    @property
    def fast_path(self) -> bool:
        """Whether the fast paths (small whole frames in, plain frames out) may be taken. Both
        paths give the same events and bytes; tests turn them off to prove it."""
        return self._reader.fast_path

    @fast_path.setter
    def fast_path(self, value: bool) -> None:
        self._reader.fast_path = value
        self._use_extensions(self.extensions)

    def set_tracer(self, tracer: Tracer | None) -> None:
        """Trace this connection's frames from now on with ``tracer`` (``None``: stop, and the
        fast paths are back). A frame already half read when the tracer is set is not
        recorded; set it before frames flow (a server: in its handshake hooks)."""
        self.tracer = tracer
        frames = _both(tracer, _Transcript(self.logger) if self.debug else None)
        self._reader.tracer = frames
        self._writer.tracer = frames
        self._use_extensions(self.extensions)  # recomputes the fast paths

    def _use_extensions(self, extensions: list[Extension]) -> None:
        """Set the negotiated extensions and everything derived from them."""
        self.extensions = extensions
        rsv = 0
        for ext in extensions:
            rsv |= ext.rsv_bits
        self._reader.rsv_allowed = rsv
        self._assembler.extensions = extensions
        self._writer.extensions = extensions
        self._reader.configure()
        # An unfragmented small message is framed in send_text / send_binary themselves:
        # server, no extension, no tracer.
        self._plain_send = (self.side is Side.SERVER and not extensions
                            and self._writer.tracer is None and self._reader.fast_path)
        if self.side is Side.CLIENT:
            self._broadcast_key = None  # every client frame has its own masking key
        else:
            keys = tuple(ext.broadcast_key for ext in extensions)
            self._broadcast_key = None if None in keys else keys

    # --- state -----------------------------------------------------------------------------------

    def _transition(self, trigger: Trigger) -> None:
        """The one place where the state changes (theory of operation, rule 4)."""
        state = TRANSITIONS.get((self.state, trigger))
        if state is None:
            raise InvalidState(f"{trigger.name} is not possible in {self.state.name}")
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
    def close_transport(self) -> bool:
        """Whether the TCP connection should be closed now (rule 6): always once CLOSED; a
        server also closes it when the closing handshake is complete or it failed."""
        state = self.state
        if state is State.CLOSED:
            return True
        return self.side is Side.SERVER and (
            self._failed or (state is State.CLOSING and self.close_rcvd is not None))

    @property
    def sending_fragmented(self) -> bool:
        """Whether a fragmented message is being sent (started with ``fin=False``)."""
        return bool(self._send_opcode)

    @property
    def receiving(self) -> bool:
        """Whether more messages may still arrive (the handshake is over, no close frame was
        received, the connection was not failed and the TCP stream has not ended)."""
        return self._reader.reading and self.state in (State.OPEN, State.CLOSING)

    # --- the boundary ----------------------------------------------------------------------------

    def events_received(self) -> list[Event]:
        """Return the events produced since the last call."""
        events = self._events
        if not events:
            return []
        self._assembler.events = self._events = []
        return events

    def data_to_send(self) -> list[bytes]:
        """Return the bytes to write, in order, produced since the last call."""
        # FrameWriter.take(), inline: called once per read (benchmarks/instructions.py, echo).
        writer = self._writer
        out, writer.out = writer.out, []
        return out

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the network. Never raises for peer errors."""
        if self.state is _CONNECTING:
            if self._reader.reading:
                self._receive_handshake(data)
            return
        # After a close frame or a failure the reader reads nothing: "An endpoint MUST NOT
        # continue to attempt to process data (including a responding Close frame) from the
        # remote endpoint after being instructed to _Fail the WebSocket Connection_" (§7.1.7).
        try:
            self._reader.feed(data)
        except ProtocolError as exc:
            self._peer_error(exc)

    def receive_buffer(self) -> memoryview | None:
        """A writable view to read the next bytes into, instead of handing them to
        :meth:`receive_data`: the free part of a large payload being received, so that it is
        never copied (``None`` when there is none). Then call :meth:`receive_into`. Optional:
        an adapter that only calls :meth:`receive_data` gets the same result."""
        if self.state is _CONNECTING or not self._reader.reading:
            return None
        return self._reader.payload_buffer()

    def receive_into(self, nbytes: int) -> None:
        """``nbytes`` were read into the start of the view :meth:`receive_buffer` returned."""
        try:
            self._reader.payload_written(nbytes)
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
        self._reader.stop()
        self.close_pending = None
        if self.state is not State.CLOSED:
            self._transition(Trigger.TCP_CLOSED)

    def _receive_handshake(self, data: bytes) -> None:
        raise NotImplementedError

    def pause_writing(self) -> None:
        """The adapter's write buffer went over its high-water mark: owe pongs (rule 7)."""
        self.writing_paused = True

    def resume_writing(self) -> None:
        """The write buffer drained: the pong owed, if any, is queued now."""
        self.writing_paused = False
        owed, self._pong_owed = self._pong_owed, None
        if owed is not None and self.state is not State.CLOSED:
            self._writer.frame(_OP_PONG, owed)

    # --- failing and closing ---------------------------------------------------------------------

    def fail(self, code: int, reason: str = "") -> None:
        """_Fail the WebSocket Connection_ (§7.1.7) with ``code``.

        "If _The WebSocket Connection is Established_ prior to the point where the endpoint is
        required to _Fail the WebSocket Connection_, the endpoint SHOULD send a Close frame with
        an appropriate status code (Section 7.4) before proceeding to _Close the WebSocket
        Connection_."
        """
        if self.debug:
            self.logger.debug("! failing with %d %s", code, redact_text(reason))
        self.close_pending = None
        if self.state is State.OPEN:
            # Keep the reason within a control frame (123 bytes of UTF-8).
            self._send_close_frame(code, reason.encode()[:123].decode("utf-8", "ignore"))
        self._reader.stop()
        self._failed = True  # a server closes TCP at once; a client waits (§7.1.1)

    def _peer_error(self, exc: ProtocolError) -> None:
        """Fail the connection for a peer error found while reading: now, or once the
        messages before the bad frame are answered (rule 5)."""
        self.failure = exc
        if self._events and self.state is State.OPEN:
            self._reader.stop()
            self.close_pending = (exc.close_code, str(exc))
            self._pending_failure = True
        else:
            self.fail(exc.close_code, str(exc))

    def release_close(self) -> None:
        """Queue the close frame held by :attr:`close_pending` (the application has answered
        the messages that came before it). Nothing happens if none is held."""
        pending, self.close_pending = self.close_pending, None
        if pending is None:
            return
        code, reason = pending
        if self._pending_failure:
            assert code is not None
            self.fail(code, reason)
        elif self.state is State.OPEN:
            self._send_close_frame(code, reason)

    def _send_close_frame(self, code: int | None, reason: str) -> None:
        payload = serialize_close_payload(code, reason)  # validates before anything is recorded
        owed, self._pong_owed = self._pong_owed, None
        if owed is not None:
            self._writer.frame(_OP_PONG, owed)  # the pong owed goes before the close
        self.close_sent = (code if code is not None else CloseCode.NO_STATUS_RCVD, reason)
        self._writer.frame(_OP_CLOSE, payload)
        # A fragmented message being sent can never be finished now (§5.5.1: no data frames
        # after a close frame); the close itself, a control frame, may interleave with it (§5.4).
        self._send_opcode = 0
        self._transition(Trigger.CLOSE_SENT)

    # --- control frames (§5.5), called by the reader ---------------------------------------------

    def control_frame(self, opcode: int, payload: bytes) -> None:
        """A control frame arrived (the reader checked its header)."""
        if opcode == _OP_PING:
            # §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
            # response, unless it already received a Close frame. [...] A Pong frame sent in
            # response to a Ping frame must have identical Application data."
            if self.writing_paused:
                # §5.5.3: "If an endpoint receives a Ping frame and has not yet sent Pong
                # frame(s) in response to previous Ping frame(s), the endpoint MAY elect to
                # send a Pong frame for only the most recently processed Ping frame."
                self._pong_owed = payload
            else:
                self._writer.frame(_OP_PONG, payload)
            self._events.append(Ping(payload))
        elif opcode == _OP_PONG:
            self._events.append(Pong(payload))
        else:
            self._close_frame(payload)

    def _close_frame(self, payload: bytes) -> None:
        code, reason = parse_close_payload(payload)  # raises 1002 / 1007 for a bad body
        self.close_rcvd = (code, reason)
        # Nothing after a close frame is data (§5.5.1: the endpoint "MUST NOT send any more
        # data frames" after it), so reading stops here.
        self._reader.stop()
        if self.state is State.OPEN:
            self.close_rcvd_first = True
            # §5.5.1: "If an endpoint receives a Close frame and did not previously send a Close
            # frame, the endpoint MUST send a Close frame in response. [...] it typically echos
            # the status code it received."
            echo = None if code == CloseCode.NO_STATUS_RCVD else code
            if self._events:
                self.close_pending = (echo, reason)  # answers first (rule 5)
            else:
                self._send_close_frame(echo, reason)
        self._events.append(CloseReceived(code, reason))

    # --- sending ---------------------------------------------------------------------------------

    def _refuse_new_message(self) -> None:
        self._check_open()
        raise InvalidState("a fragmented message is being sent: use send_continuation()")

    def _check_open(self) -> None:
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send: connection is {self.state.name}")

    def send_text(self, data: str | bytes, *, fin: bool = True,
                  compress: bool | None = None) -> int:
        """Send a text message, or its first fragment when ``fin`` is false; return the bytes
        queued.

        ``data`` may be ``bytes`` already encoded as UTF-8 (not checked: the caller vouches).
        """
        if self.state is not _OPEN or self._send_opcode:
            self._refuse_new_message()
        payload = data.encode() if isinstance(data, str) else data
        n = len(payload)
        if fin and self._plain_send and n < _SPLIT:
            # The fast path: a small unmasked frame framed here, one call less per reply
            # (benchmarks/instructions.py, echo: 64 B and 1 KiB).
            if n < 126:
                self._writer.out.append(_pack_2(0x81, n) + payload)
                return n + 2
            self._writer.out.append(_pack_4(0x81, 126, n) + payload)
            return n + 4
        queued = self._writer.data(_OP_TEXT, payload, fin, compress)
        if not fin:
            self._send_opcode = _OP_TEXT
        return queued

    def send_binary(self, data: bytes | bytearray | memoryview, *, fin: bool = True,
                    compress: bool | None = None) -> int:
        """Send a binary message, or its first fragment when ``fin`` is false; return the
        bytes queued."""
        if self.state is not _OPEN or self._send_opcode:
            self._refuse_new_message()
        payload = data if type(data) is bytes else bytes(data)
        n = len(payload)
        if fin and self._plain_send and n < _SPLIT:  # the fast path (see send_text)
            if n < 126:
                self._writer.out.append(_pack_2(0x82, n) + payload)
                return n + 2
            self._writer.out.append(_pack_4(0x82, 126, n) + payload)
            return n + 4
        queued = self._writer.data(_OP_BINARY, payload, fin, compress)
        if not fin:
            self._send_opcode = _OP_BINARY
        return queued

    def send_continuation(self, data: str | bytes, *, fin: bool,
                          compress: bool | None = None) -> int:
        """Send the next fragment of the message started with ``fin=False`` (§5.4)."""
        self._check_open()
        if not self._send_opcode:
            raise InvalidState("no fragmented message is being sent")
        payload = data.encode() if isinstance(data, str) else bytes(data)
        queued = self._writer.data(_OP_CONT, payload, fin, compress)
        if fin:
            self._send_opcode = 0
        return queued

    def send_ping(self, data: bytes = b"") -> int:
        """Send a ping (§5.5.2). At most 125 bytes."""
        self._check_open()
        if len(data) > 125:
            raise ValueError("ping payload is limited to 125 bytes")
        return self._writer.frame(_OP_PING, bytes(data))

    def send_pong(self, data: bytes = b"") -> int:
        """Send an unsolicited pong (§5.5.3: serves as a unidirectional heartbeat)."""
        self._check_open()
        if len(data) > 125:
            raise ValueError("pong payload is limited to 125 bytes")
        return self._writer.frame(_OP_PONG, bytes(data))

    def send_close(self, code: int | None = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (§7.1.2). ``code=None`` sends a close frame without a body.

        After this, received data frames are still delivered until the peer's close arrives.
        A close held by :attr:`close_pending` is replaced by this one.
        """
        self._check_open()
        self._send_close_frame(code, reason)
        if self.close_pending is not None:
            self.close_pending = None
            if self._pending_failure:
                self._failed = True  # the peer broke the protocol: close TCP as failing does

    def send_prepared(self, frame_bytes: bytes) -> int:
        """Queue a frame serialized by :meth:`prepare_message` on a protocol with the same
        :attr:`broadcast_key` (the compress-once broadcast path)."""
        if self.state is not _OPEN:
            self._check_open()
        if self._send_opcode:
            raise InvalidState("a fragmented message is being sent")
        writer = self._writer
        if writer.tracer is None:
            # FrameWriter.prepared() without a tracer, inline: once per recipient of a
            # broadcast (benchmarks/run.py, fan-out).
            writer.out.append(frame_bytes)
            return len(frame_bytes)
        return writer.prepared(frame_bytes)

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
            return self._writer.prepare(_OP_TEXT, message.encode(), compress)
        return self._writer.prepare(_OP_BINARY, bytes(message), compress)


def __getattr__(name: str) -> object:
    """``ServerProtocol`` and ``ClientProtocol`` moved to :mod:`rawws.sansio.server` and
    :mod:`rawws.sansio.client`; the old import path keeps working."""
    if name == "ServerProtocol":
        from .server import ServerProtocol

        return ServerProtocol
    if name == "ClientProtocol":
        from .client import ClientProtocol

        return ClientProtocol
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
