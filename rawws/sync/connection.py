"""One WebSocket connection on a blocking socket and threads: websockets.sync's ``Connection``.

Owns: a reader thread per connection (socket → the sans-I/O protocol → a bounded queue of
messages), ``recv(timeout=)`` / iteration, ``send()``, ``ping()`` returning a
``threading.Event``, keepalive (a thread), the close timeout, receive back-pressure
(``max_queue``: the reader stops reading while the queue is full, so TCP pushes back).

Does not own: protocol rules. Every byte goes through the same
:class:`rawws.sansio.protocol.Protocol` as the asyncio layer (frames, limits, UTF-8, close
codes); this module only moves bytes between it and a socket. The handshake happens before
a :class:`Connection` exists (:mod:`rawws.sync.client`, :mod:`rawws.sync.server`).

Locking, in one rule: ``_lock`` guards the protocol and is held only for calls into it;
``_write_lock`` orders the writes and is taken before ``_lock`` is released, so bytes leave in
the order the protocol produced them, and the reader thread is never blocked by a sender
waiting in ``sendall()`` on a peer that does not read, except to write its own pong or close.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Literal, overload

from ..aio.connection import closed_exception
from ..data import DataLike, Message, check_fragment, check_fragments, not_a_message
from ..errors import ConcurrencyError, ConnectionClosed, ConnectionClosedOK, InvalidState
from ..sansio.codes import CloseCode
from ..sansio.http11 import Request, Response
from ..sansio.protocol import CloseReceived, Pong, Protocol, State

__all__ = ["Connection", "broadcast"]

_logger = logging.getLogger("rawws")

_READ_SIZE = 65536


class Connection:
    """A WebSocket connection over a connected, handshaken socket (server or client side).

    Use :func:`rawws.sync.client.connect` or :func:`rawws.sync.server.serve` to get one::

        with connect("ws://127.0.0.1:8765/") as ws:
            ws.send("Hello")
            print(ws.recv(timeout=10))
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol: Protocol,
        *,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
        max_queue: int | None = 16,
        logger: logging.Logger | None = None,
    ) -> None:
        self.socket = sock
        self.protocol = protocol
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.max_queue = max_queue
        self.logger = logger or _logger
        #: Unique identifier of the connection.
        self.id = uuid.uuid4()
        #: Round-trip time of the last ping answered, in seconds (0.0 until one is).
        self.latency = 0.0
        self.remote_address: Any = sock.getpeername()
        self.local_address: Any = sock.getsockname()

        self._lock = threading.Lock()  # the protocol
        self._write_lock = threading.Lock()  # the socket's write side, in protocol order
        self._messages: collections.deque[Message] = collections.deque()
        self._queue_changed = threading.Condition()  # messages added or taken, or closed
        self._recv_busy = False
        self._send_busy = False
        self._pings: dict[bytes, tuple[threading.Event, float, bool]] = {}
        self._closed = threading.Event()  # the TCP connection is closed
        self._close_timer: threading.Timer | None = None
        self._write_shut = False
        self._aborted = False

        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"rawws-reader-{self.id.hex[:8]}")
        self._keepalive: threading.Thread | None = None

    def start(self) -> None:
        """Start reading (and keepalive); the handshake is over. Called by client / server."""
        self._reader.start()
        if self.ping_interval is not None:
            self._keepalive = threading.Thread(target=self._keepalive_loop, daemon=True,
                                               name=f"rawws-keepalive-{self.id.hex[:8]}")
            self._keepalive.start()

    # --- attributes ------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.protocol.state

    @property
    def request(self) -> Request | None:
        """The upgrade request (on the server: received; on the client: sent)."""
        request: Request | None = getattr(self.protocol, "request", None)
        return request

    @property
    def response(self) -> Response | None:
        response: Response | None = getattr(self.protocol, "response", None)
        return response

    @property
    def subprotocol(self) -> str | None:
        subprotocol: str | None = getattr(self.protocol, "subprotocol", None)
        return subprotocol

    @property
    def close_code(self) -> int | None:
        """The peer's close code (1006 without one); ``None`` while not closed."""
        return self.protocol.close_code if self.protocol.state is State.CLOSED else None

    @property
    def close_reason(self) -> str | None:
        return self.protocol.close_reason if self.protocol.state is State.CLOSED else None

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.protocol.side.value} {self.remote_address} "
                f"{self.state.name}>")

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Close: 1000, or 1011 when the block raised (as websockets)."""
        self.close(CloseCode.NORMAL_CLOSURE if exc_type is None else CloseCode.INTERNAL_ERROR)

    # --- receiving -------------------------------------------------------------------------------

    @overload
    def recv(self, timeout: float | None, decode: Literal[True]) -> str: ...

    @overload
    def recv(self, timeout: float | None, decode: Literal[False]) -> bytes: ...

    @overload
    def recv(self, timeout: float | None = None, decode: bool | None = None) -> Message: ...

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> Message:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Waits at most ``timeout`` seconds (``None``: for ever) and raises ``TimeoutError``
        after that, losing nothing: the next call returns the next message. ``decode`` is as
        in the asyncio API. Raises :class:`~rawws.errors.ConnectionClosedOK` /
        :class:`~rawws.errors.ConnectionClosedError` once the connection is closed and every
        message received before the close was returned; :class:`~rawws.errors.ConcurrencyError`
        if another thread is in ``recv()``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        message: Message | None = None
        with self._queue_changed:
            if self._recv_busy:
                raise ConcurrencyError("another thread is already waiting in recv()")
            self._recv_busy = True
            try:
                while not self._messages and self.protocol.receiving:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise TimeoutError(f"no message within {timeout} s")
                    self._queue_changed.wait(left)
                if self._messages:
                    message = self._messages.popleft()
                    self._queue_changed.notify_all()  # the reader may read again
            finally:
                self._recv_busy = False
        if message is not None:
            return _decoded(message, decode, self)  # outside the condition: it may close
        # Every message is delivered; wait for the TCP close to report the outcome.
        self._closed.wait()
        raise closed_exception(self.protocol)

    def recv_streaming(self, decode: bool | None = None) -> Iterator[Message]:
        """The next message as an iterator of fragments: rawws' core assembles messages, so
        the iterator yields the whole message once (as the asyncio API does)."""
        yield self.recv(None, decode)

    def __iter__(self) -> Iterator[Message]:
        """Yield messages until the connection closes; a normal close ends the loop quietly."""
        try:
            while True:
                yield self.recv()
        except ConnectionClosedOK:
            return

    # --- sending ---------------------------------------------------------------------------------

    def send(self, message: DataLike | Iterable[DataLike], text: bool | None = None) -> None:
        """Send a message: ``str`` as text, bytes-like as binary (``text=`` overrides), or an
        iterable of either, all of one kind, as one fragmented message (RFC 6455 §5.4).

        Anything else is a ``TypeError`` before a byte is sent. Blocks while the kernel's
        send buffer is full (the peer is slow to read). If a fragment fails after the first
        went out, the connection is closed with 1011. Raises
        :class:`~rawws.errors.ConnectionClosed` after the close and
        :class:`~rawws.errors.ConcurrencyError` while another thread sends a fragmented
        message.
        """
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            self._send_frame(message, True, True, text)
            return
        if isinstance(message, Mapping) or not isinstance(message, Iterable):
            raise not_a_message(message)
        if isinstance(message, (list, tuple)):
            check_fragments(message)
        with self._lock:
            if self._send_busy:
                raise ConcurrencyError("another thread is sending a fragmented message")
            self._send_busy = True
        try:
            fragments = iter(message)
            try:
                current = next(fragments)
            except StopIteration:
                return
            check_fragment(current)
            first = True
            kind = isinstance(current, str)
            for following in fragments:
                check_fragment(following)
                if isinstance(following, str) is not kind:
                    raise TypeError("the fragments of a message must be all str or all "
                                    "bytes-like")
                self._send_frame(current, first, False, text)
                first = False
                current = following
            self._send_frame(current, first, True, text)
        except BaseException:
            with self._lock:
                if self.protocol.sending_fragmented and self.protocol.state is State.OPEN:
                    self.protocol.fail(CloseCode.INTERNAL_ERROR,
                                       "error while sending a fragmented message")
                    self._write_out()
            raise
        finally:
            with self._lock:
                self._send_busy = False

    def _send_frame(self, data: DataLike, first: bool, fin: bool, text: bool | None) -> None:
        payload: str | bytes = data if isinstance(data, str) else bytes(data)
        with self._lock:
            self._check_sendable()
            protocol = self.protocol
            if not first:
                protocol.send_continuation(payload, fin=fin)
            elif text if text is not None else isinstance(payload, str):
                protocol.send_text(payload, fin=fin)
            else:
                protocol.send_binary(payload.encode() if isinstance(payload, str) else payload,
                                     fin=fin)
            self._write_out()

    def _check_sendable(self) -> None:
        state = self.protocol.state
        if state is not State.OPEN:
            if state is State.CONNECTING:
                raise InvalidState("cannot send before the opening handshake completes")
            raise closed_exception(self.protocol)

    def ping(self, data: DataLike | None = None, *, ack_on_close: bool = False
             ) -> threading.Event:
        """Send a ping; return an event set when its pong arrives (``latency`` is then
        updated). With ``ack_on_close`` the event is also set when the connection closes
        first (check ``state`` to tell them apart). Raises
        :class:`~rawws.errors.ConcurrencyError` if a ping with the same ``data`` waits."""
        if data is not None and not isinstance(data, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"ping data must be str or bytes-like, not {type(data).__name__}")
        with self._lock:
            event = self._queue_ping(data, ack_on_close)
            self._write_out()
        return event

    def _queue_ping(self, data: DataLike | None, ack_on_close: bool) -> threading.Event:
        """Queue a ping in the protocol (``_lock`` held); its pong sets the event."""
        self._check_sendable()
        if data is None:
            payload = self.protocol.random(4)
            while payload in self._pings:
                payload = self.protocol.random(4)
        else:
            payload = data.encode() if isinstance(data, str) else bytes(data)
            if payload in self._pings:
                raise ConcurrencyError("a ping with the same payload is already waiting")
        event = threading.Event()
        self._pings[payload] = (event, time.monotonic(), ack_on_close)
        self.protocol.send_ping(payload)
        return event

    def pong(self, data: DataLike = b"") -> None:
        """Send an unsolicited pong (a unidirectional heartbeat, RFC 6455 §5.5.3)."""
        if not isinstance(data, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"pong data must be str or bytes-like, not {type(data).__name__}")
        with self._lock:
            self._check_sendable()
            self.protocol.send_pong(data.encode() if isinstance(data, str) else bytes(data))
            self._write_out()

    # --- closing ---------------------------------------------------------------------------------

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Perform the closing handshake and wait for the TCP connection to close (at most
        ``close_timeout``, then the socket is shut down). Idempotent."""
        self._start_close(code, reason)
        self.wait_closed()

    def _start_close(self, code: int, reason: str) -> None:
        """Send the close frame (or fail 1011 in the middle of a fragmented message)."""
        with self._lock:
            if self.protocol.state is State.OPEN:
                if self._send_busy:
                    self.protocol.fail(CloseCode.INTERNAL_ERROR,
                                       "close during a fragmented message")
                else:
                    self.protocol.send_close(code, reason)
                self._write_out()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the TCP connection is closed; return whether it is (``False`` when
        ``timeout`` seconds passed first)."""
        return self._closed.wait(timeout)

    # --- the reader thread -----------------------------------------------------------------------

    def _write_out(self, wait: float | None = None) -> bool:
        """Write what the protocol produced (``_lock`` held); arm the close timer, and end the
        write side when the protocol asks to close the transport. With ``wait``, give up
        (return False) if another writer has been blocked in ``sendall()`` that long."""
        out = self.protocol.data_to_send()
        if self.protocol.state is State.CLOSING and self._close_timer is None:
            self._arm_close_timer()
        shut = self.protocol.close_transport and not self._write_shut
        if not out and not shut:
            return True
        if shut:
            self._write_shut = True
            self._arm_close_timer()
        # The write lock is taken before the protocol lock is let go, so bytes leave in the
        # order they were produced; the protocol lock is free while sendall() waits, and taken
        # back only after the write lock is released (never both the other way round).
        if not self._write_lock.acquire(timeout=-1 if wait is None else wait):
            return False
        self._lock.release()
        try:
            if out:
                self.socket.sendall(b"".join(out))
            if shut:
                # The server closes first (§7.1.1): our FIN follows the close frame; the
                # reader waits for the peer's FIN (bounded by close_timeout).
                self.socket.shutdown(socket.SHUT_WR)
        except (OSError, ValueError):
            self._abort()
        finally:
            self._write_lock.release()
            self._lock.acquire()
        return True

    def _arm_close_timer(self) -> None:
        if self._close_timer is None:
            self._close_timer = threading.Timer(self.close_timeout, self._close_timed_out)
            self._close_timer.daemon = True
            self._close_timer.start()

    def _close_timed_out(self) -> None:
        if not self._closed.is_set():
            self.logger.debug("%s: close timeout: dropping the connection", self)
            self._abort()

    def _abort(self) -> None:
        """Drop the TCP connection now: the reader thread sees the end and finishes (even
        if it was waiting for recv() to make room in the queue)."""
        self._aborted = True
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        with self._queue_changed:
            self._queue_changed.notify_all()

    def _read_loop(self) -> None:
        high = self.max_queue
        try:
            while True:
                if high is not None:
                    with self._queue_changed:
                        # Receive back-pressure: stop reading when the queue reaches
                        # max_queue, read again once recv() brought it down to a quarter.
                        if len(self._messages) >= high:
                            while len(self._messages) > high // 4 and not self._aborted:
                                self._queue_changed.wait()
                try:
                    data = self.socket.recv(_READ_SIZE)
                except (OSError, ValueError):  # aborted (shut down) under our feet
                    data = b""
                with self._lock:
                    if data:
                        self.protocol.receive_data(data)
                    else:
                        self.protocol.receive_eof()
                    events = self.protocol.events_received()
                    self._handle(events)
                    # A close held behind these messages (protocol.close_pending) goes now,
                    # as data_to_send() used to send it (the asyncio layer waits for recv()).
                    self.protocol.release_close()
                    self._write_out()
                if not data:
                    return
        except Exception:  # a bug here must not leave the connection half alive
            self.logger.exception("%s: reader thread failed", self)
        finally:
            self._connection_lost()

    def _handle(self, events: list[Any]) -> None:
        """Events from the protocol (``_lock`` held)."""
        for event in events:
            kind = type(event)
            if kind is str or kind is bytes:
                with self._queue_changed:
                    self._messages.append(event)
                    self._queue_changed.notify_all()
            elif kind is Pong:
                self._pong_received(event.payload)
            elif kind is CloseReceived:
                with self._queue_changed:
                    self._queue_changed.notify_all()  # recv() may stop waiting

    def _pong_received(self, payload: bytes) -> None:
        if payload not in self._pings:
            return
        now = time.monotonic()
        # A pong acknowledges its ping and every earlier one (RFC 6455 §5.5.3).
        for key in list(self._pings):
            event, sent_at, _ = self._pings.pop(key)
            event.set()
            if key == payload:
                self.latency = now - sent_at
                break

    def _connection_lost(self) -> None:
        with self._lock:
            self.protocol.connection_lost()
            pings, self._pings = self._pings, {}
        for event, _, ack_on_close in pings.values():
            if ack_on_close:
                event.set()
        if self._close_timer is not None:
            self._close_timer.cancel()
        try:
            self.socket.close()
        except OSError:
            pass
        self._closed.set()
        with self._queue_changed:
            self._queue_changed.notify_all()

    # --- keepalive -------------------------------------------------------------------------------

    def _keepalive_loop(self) -> None:
        """Ping every ``ping_interval``; without a pong within ``ping_timeout``, close 1011.
        The next ping is due ``ping_interval`` after the previous one was sent."""
        interval = self.ping_interval
        assert interval is not None
        due = time.monotonic() + interval
        while not self._closed.wait(max(0.0, due - time.monotonic())):
            with self._lock:
                try:
                    pong = self._queue_ping(None, False)
                except ConnectionClosed:
                    return
                # A peer that stopped reading keeps a sender blocked in sendall(): the ping
                # could never go out, so waiting for its pong would wait for ever.
                if not self._write_out(wait=self.ping_timeout):
                    self.logger.info("%s: writes blocked for %s s (the peer does not read): "
                                     "dropping the connection", self, self.ping_timeout)
                    self._abort()
                    return
            due = time.monotonic() + interval
            if self.ping_timeout is not None and not pong.wait(self.ping_timeout):
                with self._lock:
                    if self.protocol.state is State.OPEN:
                        self.logger.info("%s: no pong within %s s: closing", self,
                                         self.ping_timeout)
                        self.protocol.send_close(CloseCode.INTERNAL_ERROR,
                                                 "keepalive ping timeout")
                        self._write_out()
                return


def _decoded(message: Message, decode: bool | None, connection: Connection) -> Message:
    if decode is None:
        return message
    if decode and isinstance(message, bytes):
        try:
            return message.decode()
        except UnicodeDecodeError as exc:
            with connection._lock:
                if connection.protocol.state is State.OPEN:
                    connection.protocol.send_close(CloseCode.INVALID_FRAME_PAYLOAD_DATA,
                                                   f"{exc.reason} at position {exc.start}")
                    connection._write_out()
            connection._closed.wait()
            raise closed_exception(connection.protocol) from exc
    if not decode and isinstance(message, str):
        return message.encode()
    return message


def broadcast(connections: Iterable[Connection], message: DataLike,
              raise_exceptions: bool = False) -> None:
    """Send ``message`` to every open connection of ``connections`` (websockets.sync's).

    The frame is serialized once per group of connections that would produce the same bytes
    (as :func:`rawws.broadcast`). A connection that is closing, or busy with a fragmented
    message, is skipped; a slow one makes this wait while its kernel buffer is full. Errors
    are logged, or raised together as an ``ExceptionGroup`` with ``raise_exceptions``.
    """
    if not isinstance(message, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"broadcast takes str or bytes-like, not {type(message).__name__}")
    data: str | bytes = message if isinstance(message, str) else bytes(message)
    prepared: dict[Any, bytes] = {}
    errors: list[Exception] = []
    for connection in connections:
        with connection._lock:
            protocol = connection.protocol
            if protocol.state is not State.OPEN or connection._send_busy:
                continue
            try:
                key = protocol.broadcast_key
                if key is None or protocol.sending_fragmented:
                    if isinstance(data, str):
                        protocol.send_text(data)
                    else:
                        protocol.send_binary(data)
                else:
                    frame = prepared.get(key)
                    if frame is None:
                        frame = prepared[key] = protocol.prepare_message(data)
                    protocol.send_prepared(frame)
                connection._write_out()
            except Exception as exc:
                if raise_exceptions:
                    errors.append(exc)
                else:
                    connection.logger.warning("%s: skipped broadcast: %s", connection, exc)
    if errors:
        raise ExceptionGroup("skipped broadcast", errors)
