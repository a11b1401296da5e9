"""One WebSocket connection on asyncio: an ``asyncio.BufferedProtocol`` around the sans-I/O core.

Owns: the transport; delivery of messages to ``recv()`` / ``async for`` or to a
:class:`Listener`; sending (``send``, ``send_nowait``, fragmented and prepared frames); ping
with latency; keepalive (``ping_interval`` / ``ping_timeout``); the close timeout; flow control
both ways (``max_queue`` pauses reading; ``write_limit`` makes ``send`` wait for the drain).

Does not own: protocol rules (:mod:`rawws.sansio.protocol`), the handshake decisions
(:mod:`rawws.aio.server`, :mod:`rawws.aio.client`).

Three choices make this layer fast without C (benchmarks/run.py, echo and fan-out scenarios;
benchmarks/memory.py for the memory):

1. **Reads land in one buffer per thread.** As a ``BufferedProtocol``, the connection lends the
   event loop a buffer to ``recv_into``; a plain ``Protocol`` would get a fresh ``bytes`` from
   ``recv(256 KiB)`` for every read, which glibc serves with mmap/mremap at about 12 µs a read
   on these machines, more than the whole Python cost of a small echo. The buffer is shared by
   every connection of the thread (the bytes are copied out before the callback returns), so an
   idle connection costs no buffer at all. The one exception: while a large payload arrives,
   the reads go straight into its own buffer (``protocol.receive_buffer()``), where it stays
   until it is unmasked: a 1 MiB message is not copied in Python on its way in.
2. **Writes made while handling a read are batched.** Everything sent on any connection during
   one ``data_received`` (replies, pongs, a broadcast to thousands of connections) is queued in
   each connection's outbox and written once per connection when the read is handled: one
   ``send()`` per connection per read instead of one per message. A connection whose batch
   reaches ``write_limit`` is written at once, so back-pressure stays truthful.
3. **Nothing is allocated before it is needed.** Slots; the receive queue, ping table, futures
   and ``user_data`` are created on first use.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import uuid
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from types import TracebackType
from typing import Any, Literal, cast, overload

from ..data import DataLike, Message, check_fragment, check_fragments, not_a_message
from ..errors import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidMessage,
    InvalidState,
)
from ..sansio.codes import CloseCode
from ..sansio.extensions import Extension
from ..sansio.frames import Close
from ..sansio.http11 import Request, Response
from ..sansio.options import DEFAULT_OPTIONS, Options
from ..sansio.protocol import CloseReceived, Ping, Pong, Protocol, State
from ..sansio.reader import Tracer

__all__ = ["Connection", "Listener", "Message"]


_logger = logging.getLogger("rawws")

#: A closing handshake with these codes both ways is a normal closure (ConnectionClosedOK).
#: 1005 is what a close frame without a body reports (§7.1.5): a browser's ``ws.close()``.
_OK_CLOSE_CODES = frozenset({CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY,
                             CloseCode.NO_STATUS_RCVD})

#: Size of the per-thread read buffer: asyncio's own read size for plain protocols.
_READ_BUFFER_SIZE = 256 * 1024
#: After a read this large, ask the protocol for the buffer of a large payload arriving (the
#: 64-byte echo never pays for the question).
_LARGE_READ = 65536

_OPEN = State.OPEN
_CLOSING = State.CLOSING


def closed_exception(protocol: Protocol) -> ConnectionClosed:
    """How the connection closed, as the exception send() and recv() raise after it (shared
    with the threaded API): OK when close frames with a normal code went both ways."""
    rcvd, sent = protocol.close_rcvd, protocol.close_sent
    if rcvd is None or sent is None:
        return ConnectionClosedError(Close(*rcvd) if rcvd else None,
                                     Close(*sent) if sent else None)
    ok = rcvd[0] in _OK_CLOSE_CODES and sent[0] in _OK_CLOSE_CODES
    cls = ConnectionClosedOK if ok else ConnectionClosedError
    return cls(Close(*rcvd), Close(*sent), protocol.close_rcvd_first)


async def _as_async(items: Iterable[DataLike]) -> AsyncIterator[DataLike]:
    for item in items:
        yield item


class _ThreadState:
    """What the connections of one thread (one event loop) share: the read buffer and the
    write batch. Nothing here outlives a single callback."""

    __slots__ = ("batching", "buffer", "pending", "view")

    def __init__(self) -> None:
        self.buffer = bytearray(_READ_BUFFER_SIZE)
        self.view = memoryview(self.buffer)
        self.batching = False
        self.pending: list[Connection] = []


_local = threading.local()


#: Outbox items from this size on are written as they are, not joined with their neighbours:
#: the sans-I/O writer queues a large payload apart from its header so that it is never copied
#: on its way to the kernel (benchmarks/instructions.py, 64 KiB and 1 MiB echo).
_JOIN_LIMIT = 16384


def _write_all(transport: asyncio.Transport, out: list[bytes]) -> None:
    """Write ``out`` in order, small items joined into one write (one send() for a batch of
    small frames), large ones written apart (no copy of a large payload)."""
    small: list[bytes] = []
    for data in out:
        if len(data) < _JOIN_LIMIT:
            small.append(data)
            continue
        if small:
            transport.write(small[0] if len(small) == 1 else b"".join(small))
            small = []
        transport.write(data)
    if small:
        transport.write(small[0] if len(small) == 1 else b"".join(small))


def _thread_state() -> _ThreadState:
    try:
        return cast(_ThreadState, _local.state)
    except AttributeError:
        _local.state = state = _ThreadState()
        return state


class Listener:
    """The callback API: override the methods you need. One instance serves every connection.

    Callbacks run inside the event loop's read callback: no task per connection, no queue, no
    await. Send with :meth:`Connection.send_nowait`; watch :attr:`Connection.writing_paused`
    (or wait for :meth:`on_writable`) to respect back-pressure. An exception in a callback is an
    application bug: it is logged and the connection is closed with 1011.
    """

    def on_connect(self, ws: Connection) -> None:
        """The handshake completed; ``ws`` is open."""

    def on_message(self, ws: Connection, message: Message) -> None:
        """A whole message arrived: ``str`` for text, ``bytes`` for binary."""

    def on_ping(self, ws: Connection, payload: bytes) -> None:
        """A ping arrived (the pong is already sent)."""

    def on_pong(self, ws: Connection, payload: bytes) -> None:
        """A pong arrived."""

    def on_writable(self, ws: Connection) -> None:
        """The write buffer drained below the low-water mark after going over ``write_limit``."""

    def on_close(self, ws: Connection, code: int, reason: str) -> None:
        """The connection closed. ``code`` is the peer's close code, or 1006 (no close frame)."""


class Connection(asyncio.BufferedProtocol):
    """A WebSocket connection, server or client side.

    The familiar asynchronous API (``await ws.send()``, ``await ws.recv()``, ``async for``,
    ``await ws.ping()``, ``await ws.close()``) and a synchronous one for callbacks and fan-out
    (``send_nowait()``, ``close_nowait()``, ``abort()``).
    """

    __slots__ = (
        # Application attributes (``connection.username = ...``, as websockets' guides do).
        # CPython 3.11 allocates the attribute values array with the object: 32 bytes per
        # idle connection (benchmarks/memory.py: 4217 -> 4249 bytes per connection, +0.8 %).
        "__dict__",
        "_batched",
        "_close_timer",
        "_closed",
        "_drain_waiters",
        "_fragmented_send",
        "_fragments_text",
        "_id",
        "_keepalive_payload",
        "_keepalive_timer",
        "_lent",
        "_lost",
        "_messages",
        "_opener",
        "_pings",
        "_queued",
        "_reading_paused",
        "_recv_waiter",
        "_release_timer",
        "_shared",
        "_user_data",
        "_was_opened",
        "_writing_paused",
        "latency",
        "listener",
        "local_address",
        "logger",
        "loop",
        "max_queue",
        "options",
        "protocol",
        "remote_address",
        "transport",
        "transport_closing",
        "write_limit",
    )

    protocol: Protocol

    def __init__(
        self,
        protocol: Protocol,
        *,
        listener: Listener | None = None,
        options: Options = DEFAULT_OPTIONS,
        logger: logging.Logger | None = None,
    ) -> None:
        self.protocol = protocol
        self.listener = listener
        #: The options this connection was made with (shared with its protocol and, on a
        #: server, with every other connection).
        self.options = options
        # Read on every delivery and every send: kept at hand (the values of ``options``).
        self.max_queue = options.max_queue
        self.write_limit = options.write_limit
        self.logger = logger or _logger
        self.loop = asyncio.get_running_loop()
        #: Round-trip time of the last ping answered, in seconds (0.0 until one is).
        self.latency = 0.0

        self.transport: asyncio.Transport | None = None
        self.remote_address: Any = None
        self.local_address: Any = None
        self._shared = _thread_state()
        self._lent: memoryview | None = None  # the payload buffer lent to the loop's reads
        self._id: uuid.UUID | None = None
        self._user_data: dict[str, Any] | None = None

        self._messages: collections.deque[Message] | None = None
        self._recv_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] | None = None
        self._fragmented_send: asyncio.Future[None] | None = None  # done when it ends
        self._fragments_text = False  # type of the fragmented message being sent
        self._queued = False  # in the thread's write batch
        self._batched = 0  # bytes queued in the current batch and not yet written
        #: True once this side closed or aborted the TCP connection: nothing more is written.
        self.transport_closing = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._release_timer: asyncio.TimerHandle | None = None  # see _close_owed
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._keepalive_payload: bytes | None = None
        self._opener: asyncio.Future[None] | None = None  # made by whoever waits for the open
        self._was_opened = False
        self._closed: asyncio.Future[None] | None = None  # made by whoever waits for the close
        self._lost = False

    # --- properties ------------------------------------------------------------------------------

    @property
    def id(self) -> uuid.UUID:
        """A unique identifier for this connection (made on first use)."""
        if self._id is None:
            self._id = uuid.uuid4()
        return self._id

    @property
    def user_data(self) -> dict[str, Any]:
        """Free for the application: per-connection state (e.g. the chat user)."""
        if self._user_data is None:
            self._user_data = {}
        return self._user_data

    @property
    def state(self) -> State:
        return self.protocol.state

    @property
    def request(self) -> Request | None:
        """The upgrade request (on the server: received; on the client: sent)."""
        return cast(Request | None, getattr(self.protocol, "request", None))

    @property
    def response(self) -> Response | None:
        return cast(Response | None, getattr(self.protocol, "response", None))

    @property
    def subprotocol(self) -> str | None:
        return cast(str | None, getattr(self.protocol, "subprotocol", None))

    @property
    def extensions(self) -> list[Extension]:
        return self.protocol.extensions

    @property
    def close_code(self) -> int | None:
        """The peer's close code (1006 when the connection ended without one); ``None`` while
        the connection is not closed."""
        if self.protocol.state is not State.CLOSED:
            return None
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        if self.protocol.state is not State.CLOSED:
            return None
        return self.protocol.close_reason

    @property
    def write_buffer_size(self) -> int:
        """Bytes written but not yet sent to the kernel (including a pending batch)."""
        transport = self.transport
        size = transport.get_write_buffer_size() if transport is not None else 0
        return size + self._batched

    @property
    def writing_paused(self) -> bool:
        """Whether the write buffer went over ``write_limit`` and has not drained yet."""
        return self._writing_paused

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (state ``CLOSED``: the TCP connection is gone).
        Wait for it with :meth:`wait_closed`."""
        return self.protocol.state is State.CLOSED

    def wait_open(self) -> asyncio.Future[None]:
        """A future done when the opening handshake completes; it raises what failed it
        (:class:`~rawws.errors.InvalidHandshake`, or InvalidMessage if the TCP connection was
        lost first). :func:`~rawws.aio.client.connect` waits on it."""
        if self._opener is None:
            self._opener = self.loop.create_future()
            if self._was_opened:
                self._opener.set_result(None)
        return self._opener

    def _closed_waiter(self) -> asyncio.Future[None]:
        """A future that completes when the TCP connection is closed."""
        if self._closed is None:
            self._closed = self.loop.create_future()
            if self._lost:
                self._closed.set_result(None)
        return self._closed

    def __repr__(self) -> str:
        side = self.protocol.side.value
        return f"<{type(self).__name__} {side} {self.remote_address} {self.state.name}>"

    # --- asyncio.BufferedProtocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.remote_address = transport.get_extra_info("peername")
        self.local_address = transport.get_extra_info("sockname")
        transport.set_write_buffer_limits(high=self.write_limit, low=self.write_limit // 4)

    def get_buffer(self, sizehint: int) -> memoryview:
        lent = self._lent
        return self._shared.view if lent is None else lent

    def buffer_updated(self, nbytes: int) -> None:
        if self._lent is None:
            # Copy out at once: the buffer is the thread's, lent for this one read.
            self.data_received(bytes(self._shared.view[:nbytes]))
            if nbytes >= _LARGE_READ:
                # Maybe a large payload is arriving: the next reads go straight into its
                # buffer (no copy; see the module docstring, choice 1).
                self._lent = self.protocol.receive_buffer()
            return
        self._lent = None
        self.protocol.receive_into(nbytes)
        self.data_received(b"")  # its events, the write batch and the flush, as for any read
        self._lent = self.protocol.receive_buffer()

    def data_received(self, data: bytes) -> None:
        """Handle bytes read from the network, batching every write this causes.

        This connection's own writes are flushed once, at the end; other connections written
        to meanwhile (a broadcast) are flushed when the batch closes. The batch is opened and
        closed inline rather than with _open_batch() / _close_batch(): two calls less per read,
        3 % of the echo path (benchmarks/run.py, echo; callgrind: 29.9k -> 29.1k instructions).
        """
        shared = self._shared
        outer = not shared.batching
        shared.batching = True
        queued, self._queued = self._queued, True  # our own writes: flushed below
        try:
            protocol = self.protocol
            protocol.receive_data(data)
            events = protocol.events_received()
            if events:
                self._dispatch(events)
        finally:
            self._queued = queued
            if outer:
                shared.batching = False
                if shared.pending:
                    self._close_batch()
        if self.protocol.close_pending is not None:
            self._close_owed()
        self._flush()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._dispatch(self.protocol.events_received())
        self._flush()
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost()
        self._cancel_timers()
        self._lent = None
        self.transport = None
        self._lost = True
        opener = self._opener
        if opener is not None and not opener.done():
            # The handshake failed (the protocol says why) or the connection was lost.
            failure = self.protocol.failure
            if not isinstance(failure, InvalidHandshake):
                failure = InvalidMessage("the connection closed before the opening handshake "
                                         "completed")
                failure.__cause__ = EOFError()  # as websockets: a network error, retryable
            opener.set_exception(failure)
            opener.exception()  # mark retrieved: the opener reports it
        if self._recv_waiter is not None and not self._recv_waiter.done():
            self._recv_waiter.set_result(None)
        if self._pings:
            closed = self._connection_closed_exc()
            for future, _ in self._pings.values():
                if not future.done():
                    future.set_exception(closed)
                    future.exception()
            self._pings.clear()
        self._wake_drain_waiters()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if self._was_opened:
            self._on_closed()

    def pause_writing(self) -> None:
        self._writing_paused = True
        self.protocol.pause_writing()  # pongs are owed, not queued, until the buffer drains

    def resume_writing(self) -> None:
        self._writing_paused = False
        self.protocol.resume_writing()
        self._flush()  # the pong owed, if any
        self._wake_drain_waiters()
        if self.listener is not None and self.protocol.state is State.OPEN:
            self._call(self.listener.on_writable, self)

    # --- the write batch (see the module docstring) ----------------------------------------------

    def _open_batch(self) -> bool:
        """Start batching writes in this thread; return whether this call started it."""
        shared = self._shared
        if shared.batching:
            return False
        shared.batching = True
        return True

    def _close_batch(self) -> None:
        """Write out every connection written to during the batch."""
        shared = self._shared
        shared.batching = False
        pending = shared.pending
        if pending:
            shared.pending = []
            for connection in pending:
                connection._queued = False
                connection._flush()

    def _after_send(self, size: int) -> None:
        """Bytes were queued in the protocol's outbox: write them now, or with the batch."""
        shared = self._shared
        if not shared.batching:
            self._flush()
            return
        if not self._queued:
            self._queued = True
            shared.pending.append(self)
        self._batched += size
        if self._batched >= self.write_limit:
            # Sending a lot in one batch: write now, so that writing_paused tells the truth
            # and the outbox never holds more than write_limit.
            self._flush()

    # --- hooks for server.py / client.py ---------------------------------------------------------

    def _handle_handshake_event(self, event: Request | Response) -> None:
        raise NotImplementedError

    def _on_open(self) -> None:
        """The handshake completed: start keepalive, wake the opener, call the listener."""
        self._was_opened = True
        if self._opener is not None and not self._opener.done():
            self._opener.set_result(None)
        self._schedule_keepalive()
        if self.listener is not None:
            self._call(self.listener.on_connect, self)

    def _on_closed(self) -> None:
        """The connection (opened once) is closed: tell the listener."""
        if self.listener is not None:
            self._call(self.listener.on_close, self, self.protocol.close_code,
                       self.protocol.close_reason)

    # --- events ----------------------------------------------------------------------------------

    def _dispatch(self, events: list[Any]) -> None:
        listener = self.listener
        for event in events:
            kind = type(event)
            if kind is str or kind is bytes:
                if listener is None:
                    self._deliver(event)
                    continue
                # The hot path of the callback API: the call is inlined rather than _call()ed.
                try:
                    listener.on_message(self, event)
                except Exception as exc:
                    self._callback_failed(exc, "on_message")
            elif kind is Ping:
                if listener is not None:
                    self._call(listener.on_ping, self, event.payload)
            elif kind is Pong:
                self._pong_received(event.payload)
                if listener is not None:
                    self._call(listener.on_pong, self, event.payload)
            elif kind is CloseReceived:
                if self.logger.isEnabledFor(logging.DEBUG):
                    self.logger.debug("%s: close received %d %r", self, event.code, event.reason)
                if self._recv_waiter is not None and not self._recv_waiter.done():
                    self._recv_waiter.set_result(None)
            else:
                self._handle_handshake_event(event)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception as exc:
            self._callback_failed(exc, getattr(callback, "__name__", repr(callback)))

    def _callback_failed(self, exc: Exception, name: str) -> None:
        if isinstance(exc, ConnectionClosed):
            # Sending in reply to a message that arrived just before the peer's close: the
            # connection is closing, which is not a bug in the callback.
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug("%s: %s in listener callback", self, exc)
            return
        self.logger.error("%s: listener callback %s failed", self, name, exc_info=exc)
        if self.protocol.state is State.OPEN:
            self.close_nowait(CloseCode.INTERNAL_ERROR, "internal error")

    def _deliver(self, message: Message) -> None:
        messages = self._messages
        if messages is None:
            messages = self._messages = collections.deque()
        messages.append(message)
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.max_queue is not None and len(messages) >= self.max_queue:
            self.pause_reading()  # receive back-pressure: until recv() catches up

    # --- flushing and closing the transport ------------------------------------------------------

    def _flush(self) -> None:
        """Write what the protocol queued; close the transport when the protocol says so."""
        protocol = self.protocol
        self._batched = 0
        out = protocol.data_to_send()
        transport = self.transport
        if out and transport is not None and not self.transport_closing:
            if len(out) == 1:
                transport.write(out[0])
            else:
                _write_all(transport, out)
        if protocol.state is _OPEN:
            return  # the protocol asks to close the transport only after OPEN
        if protocol.close_transport and not self.transport_closing:
            self._close_transport()
        elif protocol.state is _CLOSING and self._close_timer is None:
            # We sent a close (or failed, as a client) and wait for the other side: bounded.
            self._close_timer = self.loop.call_later(self.options.close_timeout,
                                                     self._close_timed_out)

    def _close_owed(self) -> None:
        """The protocol holds the close frame it owes the peer behind messages that came before
        it (``protocol.close_pending``). A listener answered them inside its callbacks: the
        close goes now. A recv() handler answers in its own task: the close goes once recv()
        has handed over the last of them (see recv()), or after ``close_timeout`` for a
        handler that does not read them."""
        if self.listener is not None or not self._messages:
            self.protocol.release_close()
        elif self._release_timer is None:
            self._release_timer = self.loop.call_later(self.options.close_timeout,
                                                       self._release_close)

    def _release_close(self) -> None:
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        self.protocol.release_close()
        self._flush()

    def _close_transport(self) -> None:
        transport = self.transport
        self.transport_closing = True
        if transport is None:
            return
        protocol = self.protocol
        if (protocol.close_rcvd is None and not protocol.eof_received
                and protocol.state is not State.CLOSED and transport.can_write_eof()):
            # Failing while the peer may still be sending: half-close so our close frame is
            # followed by a FIN, not lost to a reset (a "lingering close"), and drop the
            # connection if the peer does not close its side within close_timeout.
            transport.write_eof()
            if self._close_timer is None:
                self._close_timer = self.loop.call_later(self.options.close_timeout,
                                                         self._close_timed_out)
            return
        transport.close()

    def _close_timed_out(self) -> None:
        self._close_timer = None
        if self.transport is not None:
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug("%s: close timeout: aborting the connection", self)
            self.transport.abort()

    def _cancel_timers(self) -> None:
        for timer in (self._close_timer, self._keepalive_timer, self._release_timer):
            if timer is not None:
                timer.cancel()
        self._close_timer = self._keepalive_timer = self._release_timer = None

    def _connection_closed_exc(self) -> ConnectionClosed:
        return closed_exception(self.protocol)

    # --- receiving -------------------------------------------------------------------------------

    @overload
    async def recv(self, decode: Literal[True]) -> str: ...

    @overload
    async def recv(self, decode: Literal[False]) -> bytes: ...

    @overload
    async def recv(self, decode: bool | None = None) -> Message: ...

    async def recv(self, decode: bool | None = None) -> Message:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        ``decode=False`` returns a text message as its UTF-8 ``bytes``; ``decode=True`` returns
        a binary message decoded as UTF-8 (a message that is not valid UTF-8 fails the
        connection with 1007 and raises :class:`~rawws.errors.ConnectionClosedError`). rawws
        checks and decodes text as it arrives, so ``decode=False`` saves nothing here (it does
        in websockets).

        Raises :class:`~rawws.errors.ConnectionClosedOK` or
        :class:`~rawws.errors.ConnectionClosedError` once the connection is closed and every
        message received before the close has been returned;
        :class:`~rawws.errors.ConcurrencyError` if another coroutine is in ``recv()``.
        Cancelling ``recv()`` loses nothing: the next call returns the next message.
        """
        if decode is not None:
            return await self._recv_decoded(decode)
        if self._recv_waiter is not None:
            raise ConcurrencyError("another coroutine is already waiting in recv()")
        while not self._messages:
            if not self.protocol.receiving:
                if self.protocol.state is not State.CLOSED:
                    # Every message is delivered; wait for the TCP close to report the outcome.
                    await asyncio.shield(self._closed_waiter())
                raise self._connection_closed_exc()
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._recv_waiter = waiter
            try:
                await waiter
            finally:
                self._recv_waiter = None
        message = self._messages.popleft()
        if not self._messages and self.protocol.close_pending is not None:
            # The handler has every message that came before the close the protocol holds: it
            # answers this one in this step of its task; the close follows (see _close_owed).
            self.loop.call_soon(self._release_close)
        if self._reading_paused and (self.max_queue is None
                                     or len(self._messages) <= self.max_queue // 4):
            self.resume_reading()
        return message

    async def _recv_decoded(self, decode: bool) -> Message:
        message = await self.recv()
        if decode and isinstance(message, bytes):
            try:
                return message.decode()
            except UnicodeDecodeError as exc:
                self.close_nowait(CloseCode.INVALID_FRAME_PAYLOAD_DATA,
                                  f"{exc.reason} at position {exc.start}")
                await self.wait_closed()
                raise self._connection_closed_exc() from exc
        if not decode and isinstance(message, str):
            return message.encode()
        return message

    async def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Message]:
        """Receive the next message as an async iterator of its fragments (websockets' API).

        rawws' core assembles messages (checking UTF-8 and the size limit as the bytes
        arrive), so the iterator yields the whole message as one fragment once it is
        complete. ``decode`` is as in :meth:`recv`.
        """
        yield await self.recv(decode)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        """Yield messages until the connection closes; a normal close ends the loop quietly."""
        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    # --- sending ---------------------------------------------------------------------------------

    def _check_sendable(self) -> None:
        state = self.protocol.state
        if state is not State.OPEN:
            if state is State.CONNECTING:
                raise InvalidState("cannot send before the opening handshake completes")
            raise self._connection_closed_exc()

    def send_nowait(self, message: Message, *, compress: bool | None = None) -> None:
        """Send a message now, without waiting: ``str`` as text, bytes-like as binary.

        Never blocks; the transport buffers what the kernel does not take. Check
        :attr:`writing_paused` (or wait for :meth:`Listener.on_writable`) to apply
        back-pressure. Raises :class:`~rawws.errors.ConnectionClosed` after the close.
        """
        protocol = self.protocol
        if protocol.state is not _OPEN:
            self._check_sendable()
        # The reply path of every callback first: exact types, no keyword arguments.
        if compress is None and type(message) is bytes:
            self._after_send(protocol.send_binary(message))
        elif compress is None and type(message) is str:
            self._after_send(protocol.send_text(message))
        elif isinstance(message, (bytes, bytearray, memoryview)):
            self._after_send(protocol.send_binary(message, compress=compress))
        elif isinstance(message, str):  # a str subclass (StrEnum...) or compress given
            self._after_send(protocol.send_text(str(message), compress=compress))
        else:
            raise TypeError(f"message must be str or bytes-like, not {type(message).__name__}")

    def send_prepared(self, frame_bytes: bytes) -> None:
        """Write a frame prepared once for many connections (see :func:`rawws.broadcast`)."""
        protocol = self.protocol
        if protocol.state is not _OPEN:
            self._check_sendable()
        self._after_send(protocol.send_prepared(frame_bytes))

    async def send(
        self,
        message: DataLike | Iterable[DataLike] | AsyncIterable[DataLike],
        *,
        text: bool | None = None,
        compress: bool | None = None,
    ) -> None:
        """Send a message, then wait while the write buffer is over ``write_limit``.

        ``str`` is sent as a text message, a bytes-like object (``bytes``, ``bytearray``,
        ``memoryview``) as a binary one; ``text=True`` sends bytes-like data (already UTF-8,
        not checked) as text and ``text=False`` a ``str`` as binary. ``compress=False`` skips
        permessage-deflate for this message.

        ``message`` may also be an iterable or async iterable of ``str`` or of bytes-like
        objects: each item is one fragment of a single message (RFC 6455 §5.4), all of one
        type. Anything else raises ``TypeError`` before a byte is sent: a dict (a common
        mistake; send ``json.dumps(d)``, or ``d.keys()`` if the keys really are fragments),
        a number, a list holding anything but ``str`` or bytes. Other messages sent meanwhile
        wait until the last fragment is out. If the iterable raises (or the send is
        cancelled, or an item has the wrong type) after the first fragment went out, the
        message can never be finished: the connection is closed with 1011.
        """
        while self._fragmented_send is not None:
            await asyncio.shield(self._fragmented_send)
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            if text is None:
                self.send_nowait(message, compress=compress)  # type: ignore[arg-type]
            else:
                self._check_sendable()
                self._send_fragment(message, True, True, text, compress)
        elif isinstance(message, Mapping):
            raise not_a_message(message)
        elif isinstance(message, (AsyncIterable, Iterable)):
            if isinstance(message, (list, tuple)):
                check_fragments(message)  # known in full: refuse before the first byte
            done = self._fragmented_send = self.loop.create_future()
            try:
                fragments = (aiter(message) if isinstance(message, AsyncIterable)
                             else _as_async(cast(Iterable[DataLike], message)))
                await self._send_fragments(fragments, text, compress)
            except BaseException:
                if self.protocol.sending_fragmented and self.protocol.state is State.OPEN:
                    self.close_nowait(CloseCode.INTERNAL_ERROR,
                                      "error while sending a fragmented message")
                raise
            finally:
                self._fragmented_send = None
                done.set_result(None)
        else:
            raise not_a_message(message)
        if self._writing_paused:
            await self.drain()

    async def _send_fragments(
        self, fragments: AsyncIterator[DataLike], text: bool | None, compress: bool | None
    ) -> None:
        """Send each item as a fragment; the last one, known only when the iterator ends,
        carries FIN."""
        try:
            current = await anext(fragments)
        except StopAsyncIteration:
            return
        check_fragment(current)  # before anything is sent
        first = True
        async for following in fragments:
            self._send_fragment(current, first, False, text, compress)
            first = False
            current = following
            if self._writing_paused:
                await self.drain()
        self._send_fragment(current, first, True, text, compress)

    def _send_fragment(self, fragment: DataLike, first: bool, fin: bool, text: bool | None,
                       compress: bool | None) -> None:
        self._check_sendable()
        protocol = self.protocol
        check_fragment(fragment)
        is_str = isinstance(fragment, str)
        if first:
            self._fragments_text = is_str
        elif is_str is not self._fragments_text:
            raise TypeError("the fragments of a message must be all str or all bytes-like")
        data: str | bytes = fragment if isinstance(fragment, str) else bytes(fragment)
        if not first:
            queued = protocol.send_continuation(data, fin=fin, compress=compress)
        elif text if text is not None else is_str:
            queued = protocol.send_text(data, fin=fin, compress=compress)
        else:
            queued = protocol.send_binary(data.encode() if isinstance(data, str) else data,
                                          fin=fin, compress=compress)
        self._after_send(queued)

    async def drain(self) -> None:
        """Wait until the write buffer is below the low-water mark (a quarter of
        ``write_limit``). Raises :class:`~rawws.errors.ConnectionClosed` if it closes first."""
        while self._writing_paused:
            if self.transport is None:
                raise self._connection_closed_exc()
            waiter: asyncio.Future[None] = self.loop.create_future()
            if self._drain_waiters is None:
                self._drain_waiters = []
            self._drain_waiters.append(waiter)
            await waiter
        if self.transport is None and self.protocol.state is State.CLOSED:
            raise self._connection_closed_exc()

    def _wake_drain_waiters(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    # --- ping / pong -----------------------------------------------------------------------------

    def _ping_table(self) -> dict[bytes, tuple[asyncio.Future[float], float]]:
        if self._pings is None:
            self._pings = {}
        return self._pings

    async def ping(self, data: DataLike | None = None) -> Awaitable[float]:
        """Send a ping; return a future that resolves when its pong arrives, with the
        round-trip time in seconds (websockets' API)::

            pong_waiter = await ws.ping()
            latency = await pong_waiter      # only if you want to wait for the pong

        ``data`` (``str`` is encoded as UTF-8) defaults to 4 random bytes. A pong acknowledges
        its ping and every earlier one still waiting (RFC 6455 §5.5.3 lets a peer answer only
        the latest ping). The future raises :class:`~rawws.errors.ConnectionClosed` if the
        connection closes first. Raises :class:`~rawws.errors.ConcurrencyError` if a ping with
        the same ``data`` is still waiting for its pong.
        """
        if data is not None and not isinstance(data, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"ping data must be str or bytes-like, not {type(data).__name__}")
        self._check_sendable()
        pings = self._ping_table()
        if data is None:
            payload = self.protocol.random(4)
            while payload in pings:
                payload = self.protocol.random(4)
        else:
            payload = data.encode() if isinstance(data, str) else bytes(data)
            if payload in pings:
                raise ConcurrencyError("a ping with the same payload is already waiting")
        future: asyncio.Future[float] = self.loop.create_future()
        pings[payload] = (future, self.loop.time())
        self._after_send(self.protocol.send_ping(payload))
        return future

    async def pong(self, data: DataLike = b"") -> None:
        """Send an unsolicited pong (a unidirectional heartbeat, RFC 6455 §5.5.3)."""
        if not isinstance(data, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"pong data must be str or bytes-like, not {type(data).__name__}")
        self._check_sendable()
        payload = data.encode() if isinstance(data, str) else bytes(data)
        self._after_send(self.protocol.send_pong(payload))

    def _pong_received(self, payload: bytes) -> None:
        pings = self._pings
        if not pings or payload not in pings:
            return
        now = self.loop.time()
        # Acknowledge this ping and every one sent before it (dicts keep insertion order).
        for key in list(pings):
            future, sent_at = pings.pop(key)
            if not future.done():
                future.set_result(now - sent_at)
            if key == self._keepalive_payload:
                self._keepalive_answered(sent_at)
            if key == payload:
                self.latency = now - sent_at
                break

    # --- keepalive -------------------------------------------------------------------------------

    def _schedule_keepalive(self) -> None:
        if self.options.ping_interval is not None and self.protocol.state is State.OPEN:
            self._keepalive_timer = self.loop.call_later(self.options.ping_interval,
                                                         self._keepalive)

    def _keepalive(self) -> None:
        """Send a ping; if no pong comes within ``ping_timeout``, close with 1011."""
        self._keepalive_timer = None
        if self.protocol.state is not State.OPEN:
            return
        pings = self._ping_table()
        payload = self.protocol.random(4)
        while payload in pings:
            payload = self.protocol.random(4)
        self._keepalive_payload = payload
        future: asyncio.Future[float] = self.loop.create_future()
        pings[payload] = (future, self.loop.time())
        self._after_send(self.protocol.send_ping(payload))
        if self.options.ping_timeout is not None:
            self._keepalive_timer = self.loop.call_later(self.options.ping_timeout,
                                                         self._keepalive_timed_out, payload)
        else:
            self._schedule_keepalive()

    def _keepalive_answered(self, sent_at: float) -> None:
        """The keepalive ping got its pong: the next one is due ``ping_interval`` after it
        was sent (not after ``ping_timeout`` expires)."""
        self._keepalive_payload = None
        if self.options.ping_timeout is None or self.options.ping_interval is None:
            return  # without a timeout, the next ping is already scheduled
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
        self._keepalive_timer = None
        if self.protocol.state is State.OPEN:
            self._keepalive_timer = self.loop.call_at(sent_at + self.options.ping_interval,
                                                      self._keepalive)

    def _keepalive_timed_out(self, payload: bytes) -> None:
        self._keepalive_timer = None
        if self._keepalive_payload == payload and self.protocol.state is State.OPEN:
            self.logger.info("%s: no pong within %s s: closing", self, self.options.ping_timeout)
            self.close_nowait(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")

    # --- closing ---------------------------------------------------------------------------------

    def close_nowait(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake without waiting for it (no-op if already closing).

        Before the handshake completes, this aborts the TCP connection.
        """
        protocol = self.protocol
        if protocol.state is State.OPEN:
            protocol.send_close(code, reason)
            self._flush()
        elif protocol.state is State.CONNECTING and self.transport is not None:
            self.transport.abort()

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Perform the closing handshake and wait for the TCP connection to close
        (at most ``close_timeout``, then the connection is aborted)."""
        self.close_nowait(code, reason)
        await self.wait_closed()

    def abort(self) -> None:
        """Drop the TCP connection now, without a closing handshake (the peer sees 1006).

        For a peer that stopped reading: a close frame would wait behind everything it has not
        read, so shedding it with :meth:`close_nowait` takes up to ``close_timeout``.
        """
        self.transport_closing = True
        if self.transport is not None:
            self.transport.abort()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        """Close: 1000, or 1011 when the block raised (as websockets)."""
        await self.close(CloseCode.NORMAL_CLOSURE if exc_type is None
                         else CloseCode.INTERNAL_ERROR)

    async def wait_closed(self) -> None:
        """Wait until the closing handshake is over and the TCP connection is closed."""
        await asyncio.shield(self._closed_waiter())

    def set_tracer(self, tracer: Tracer | None) -> None:
        """Give this connection a tracer (``None``: none): called with a
        :class:`~rawws.sansio.reader.FrameRecord` for every frame received and sent from now
        on (the tools' ``--trace``, the chat inspector). Without one, tracing costs nothing."""
        self.protocol.set_tracer(tracer)

    def pause_reading(self) -> None:
        """Stop reading from the socket (back-pressure: the callback API's, and recv()'s above
        ``max_queue``)."""
        if self.transport is not None and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()
