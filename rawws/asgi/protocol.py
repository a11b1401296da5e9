"""uvicorn's WebSocket protocol contract, fulfilled on the sans-I/O core.

Owns: one upgraded connection handed over by uvicorn's HTTP protocol: running the ASGI
application for it (the ``websocket`` scope and its events), keepalive pings, the close timer,
flow control both ways, graceful shutdown, and uvicorn's log lines.

Does not own: any WebSocket rule. Frames, the handshake checks, the close handshake, UTF-8,
limits and permessage-deflate are :class:`rawws.sansio.protocol.ServerProtocol`'s; this class
moves bytes between it and the transport and events between it and the application.

Theory of operation
-------------------

1. uvicorn constructs the class with ``config``, ``server_state`` and ``app_state``, calls
   :meth:`connection_made`, switches the transport over, then replays the upgrade request through
   :meth:`data_received`. The core validates it; a bad request gets the core's error response
   (400, 426, 431...) and the application never runs. A good one starts the application with
   ``websocket.connect``; reading pauses until it decides (frames sent early wait in the kernel).
2. The decision: ``websocket.accept`` writes the 101 the core built (uvicorn's default headers,
   then the application's), ``websocket.close`` a 403, ``websocket.http.response.*`` the
   application's own response. A failure before the decision is a 500.
3. Receiving: a message goes straight to a waiting ``receive()``; otherwise it is queued and
   reading pauses until the queue is empty again, so a slow application applies TCP
   back-pressure (one read's worth of messages at most is ever queued).
4. A close frame or a protocol error that arrived in the same read as messages waits until the
   application asks for the event after them (it has answered them), at most ``HOLD_TIMEOUT``:
   replies go out before the close, as RFC 6455 §5.5.1 allows.
5. Exactly one ``websocket.disconnect`` is delivered, after every message received: the peer's
   close code and reason; the code we sent when we closed (the application's close, a protocol
   error such as 1009, 1011 on a keepalive timeout, 1012 on shutdown); 1006 when TCP ended
   without a close frame or the handshake was refused. A ``receive()`` after it raises
   :class:`ClientDisconnected`.
6. Sending: ``send()`` waits while the transport's buffer is over its high-water mark, then
   hands the message to the core and writes at once. After the peer closed (or TCP ended),
   ``send()`` raises :class:`ClientDisconnected`, an ``OSError`` (ASGI spec 2.4).
7. When the application returns, an open connection is closed with 1000, or 1011 when it
   raised (or returned a value); uvicorn's own classes drop TCP instead (the peer sees 1006).
8. After we send a close frame we keep reading (and discarding data) until the peer's close
   arrives, then close TCP (the server closes first, §7.1.1); ``close_timeout`` bounds the wait.
   After failing the connection we half-close when the transport can, so the peer reads our
   close frame rather than a reset. ``shutdown()`` closes open connections with 1012 the same
   way; a second call, or one during a close, drops TCP at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from typing import Any, cast

from ..errors import ProtocolError
from ..redact import redact_target, redact_text
from ..sansio.codes import CloseCode
from ..sansio.deflate import ServerPerMessageDeflateFactory
from ..sansio.http11 import Headers, Request, Response
from ..sansio.options import Options
from ..sansio.protocol import CloseReceived, Pong, State
from ..sansio.server import ServerProtocol
from .denial import Denial, internal_error
from .keepalive import Keepalive
from .scope import build_scope, client_label, log_target, response_headers

__all__ = ["HOLD_TIMEOUT", "ClientDisconnected", "WebSocketProtocol"]

#: uvicorn's TRACE level (``uvicorn.logging.TRACE_LOG_LEVEL``), below DEBUG.
TRACE = 5

#: How long a close frame (the peer's, to echo, or ours, failing the connection) may wait behind
#: messages that arrived with it while the application answers them (theory, item 4).
HOLD_TIMEOUT = 1.0

#: Size of the per-thread read buffer lent to the event loop (asyncio's own read size).
_READ_BUFFER_SIZE = 256 * 1024

_OPEN = State.OPEN

# What the application has decided about the handshake.
_DECIDING = 0  # websocket.connect delivered, no answer yet
_ACCEPTED = 1  # 101 sent
_DENYING = 2  # websocket.http.response.start received, body not finished
_DONE = 3  # an HTTP response was sent (403, 500, the application's), or the request was bad

_RECEIVE = "websocket.receive"


class ClientDisconnected(OSError):
    """``send()`` or ``receive()`` on a connection that is closed (ASGI spec 2.4)."""


class _Reads(threading.local):
    """The read buffer lent to the event loop, one per thread: the bytes are copied out before
    the callback returns, so every connection of a thread shares it (an idle connection costs
    no buffer). A plain ``Protocol`` gets a fresh 256 KiB ``bytes`` from ``recv()`` on every
    read instead (benchmarks/run.py, asgi scenario)."""

    def __init__(self) -> None:
        self.buffer = bytearray(_READ_BUFFER_SIZE)
        self.view = memoryview(self.buffer)


_reads = _Reads()

_default_extensions: list[ServerPerMessageDeflateFactory] = []


def _deflate() -> list[ServerPerMessageDeflateFactory]:
    """rawws' permessage-deflate defaults (a 4 KiB window both ways, docs/deflate.md), one
    factory for every connection."""
    if not _default_extensions:
        _default_extensions.append(ServerPerMessageDeflateFactory())
    return _default_extensions


class WebSocketProtocol(asyncio.BufferedProtocol):
    """A WebSocket connection for uvicorn: ``uvicorn app:app --ws rawws.asgi:WebSocketProtocol``.

    The attribute names uvicorn's own classes expose, and that uvicorn's tests read, are kept:
    ``transport``, ``scope``, ``close_timer``, ``close_timeout``, ``ping_timer``,
    ``ping_sent_at``, ``last_ping_rtt``.
    """

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_running_loop()
        self.logger = logging.getLogger("uvicorn.error")
        self.root_path: str = config.root_path
        self.app_state = app_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers

        self.protocol = ServerProtocol(
            extensions=_deflate() if config.ws_per_message_deflate else (),
            options=Options(max_size=config.ws_max_size),
            server_header=None,  # uvicorn's default headers carry it (and may leave it out)
            logger=self.logger,
        )
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "ws"
        self.scope: dict[str, Any] = {}

        self._phase = _DECIDING
        self._response: Response | None = None  # the 101, until websocket.accept sends it
        self._denial: Denial | None = None  # a websocket.http.response being sent
        self.close_sent = False  # we sent a close frame (or refused the handshake)
        self._app_closed = False  # the application sent websocket.close after accepting
        self.close_timer: asyncio.TimerHandle | None = None
        self.close_timeout = 10.0
        self._abort_timer: asyncio.TimerHandle | None = None  # see _drop()
        self._closing = False  # the transport is being closed
        self._lost = False

        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._waiter: asyncio.Future[dict[str, Any]] | None = None
        self._disconnect: dict[str, Any] | None = None  # queued (or delivered)
        self._disconnect_delivered = False
        self._fill_disconnect = False  # its code and reason are known once the close is sent
        self._hold = False  # a close frame waits behind messages (theory, item 4)
        self._hold_timer: asyncio.TimerHandle | None = None
        self.read_paused = False
        self._write_paused = False
        self._writable: asyncio.Future[None] | None = None

        self.keepalive = Keepalive(self.loop, interval=config.ws_ping_interval,
                                   timeout=config.ws_ping_timeout,
                                   send_ping=self._send_ping, on_timeout=self._keepalive_timed_out,
                                   random=self.protocol.random)

    # uvicorn's names for the keepalive state (its tests read them).
    @property
    def ping_timer(self) -> asyncio.TimerHandle | None:
        return self.keepalive.timer

    @property
    def ping_sent_at(self) -> float:
        return self.keepalive.sent_at

    @property
    def last_ping_rtt(self) -> float:
        return self.keepalive.last_rtt

    @property
    def _denial_streaming(self) -> bool:
        return self._denial is not None and self._denial.streaming

    # --- asyncio protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self.connections.add(self)
        self.transport = transport
        self.server = _address(transport.get_extra_info("sockname"), local=True)
        self.client = cast("tuple[str, int] | None",
                           _address(transport.get_extra_info("peername"), local=False))
        self.scheme = "wss" if transport.get_extra_info("sslcontext") else "ws"
        if self.logger.isEnabledFor(TRACE):
            self.logger.log(TRACE, "%sWebSocket connection made", self._prefix())

    def get_buffer(self, sizehint: int) -> memoryview:
        return _reads.view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(_reads.view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        if events:
            self._handle_events(events)
        if protocol.failure is not None and self._disconnect is None:
            self._protocol_error()
        self._flush()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._handle_events(self.protocol.events_received())
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.protocol.connection_lost()
        self.keepalive.stop()
        for timer in (self.close_timer, self._hold_timer, self._abort_timer):
            if timer is not None:
                timer.cancel()
        self.close_timer = self._hold_timer = self._abort_timer = None
        self.connections.discard(self)
        if self.logger.isEnabledFor(TRACE):
            self.logger.log(TRACE, "%sWebSocket connection lost", self._prefix())
        self._disconnected(1006)
        self._wake_writers()
        if exc is None:
            self.transport.close()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writers()

    # --- uvicorn's server ----------------------------------------------------------------------

    def shutdown(self) -> None:
        """The server is stopping: close with 1012 (Service Restart) and wait for the peer's
        close as usual, or answer 500 before the handshake. A connection already closing is
        dropped now."""
        self.keepalive.stop()
        protocol = self.protocol
        if self._phase == _ACCEPTED and protocol.state is _OPEN and not self._closing:
            if self._hold:
                self._release()  # the peer's close (or our failure) is already decided
                return
            self._disconnected(CloseCode.SERVICE_RESTART, reason=None)
            protocol.send_close(CloseCode.SERVICE_RESTART)
            self._after_close_sent()
        elif self._phase in (_DECIDING, _DENYING) and not self._denial_streaming:
            self._internal_error()
        else:
            self._disconnected(1006)
            self._drop()

    # --- the handshake -------------------------------------------------------------------------

    def _handle_events(self, events: list[Any]) -> None:
        deliver = self._deliver
        for event in events:
            kind = type(event)
            if kind is str:
                deliver({"type": _RECEIVE, "text": event})
            elif kind is bytes:
                deliver({"type": _RECEIVE, "bytes": event})
            elif kind is Pong:
                self.keepalive.pong(event.payload)
            elif kind is CloseReceived:
                self._close_received(event)
            elif kind is Request:
                self._connect(event)
            elif kind is Response:
                # The core could not read the request (400, 414, 431...): its answer is queued.
                self._phase = _DONE
                self._log_bad_request(event)
        protocol = self.protocol
        if (self._queue and not self.read_paused and protocol.receiving
                and self._phase == _ACCEPTED and not self.close_sent):
            self._pause_reading()  # theory, item 3

    def _connect(self, request: Request) -> None:
        protocol = self.protocol
        response = protocol.accept(request)
        if response.status != 101:
            self._phase = _DONE
            self.close_sent = True
            response.headers = self._headers(response.headers)
            protocol.send_response(response)
            self._log_bad_request(response, request)
            return
        self._response = response
        self.scope = build_scope(
            request, asgi_version=self.config.asgi_version, scheme=self.scheme,
            server=self.server, client=self.client, root_path=self.root_path,
            state=self.app_state.copy(),
        )
        self._queue.append({"type": "websocket.connect"})
        self._pause_reading()  # nothing to read until the application decides
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _headers(self, first: Headers | None = None,
                 last: list[tuple[str, str]] | None = None) -> Headers:
        """Response headers: ``first`` (the core's), uvicorn's default headers (``server``,
        ``date``, ``--header``), then ``last`` (the application's)."""
        headers = Headers(first)
        headers.extend([(name.decode("latin-1"), value.decode("latin-1"))
                        for name, value in self.default_headers])
        if last:
            headers.extend(last)
        return headers

    def _accept(self, message: dict[str, Any]) -> None:
        response = self._response
        assert response is not None
        subprotocol = message.get("subprotocol")
        extra = response_headers(message.get("headers") or (), what="websocket.accept")
        if any(name.lower() == "sec-websocket-protocol" for name, _ in extra):
            raise RuntimeError("websocket.accept: choose the subprotocol with the "
                               "'subprotocol' key, not a sec-websocket-protocol header")
        if subprotocol is not None and subprotocol not in self.scope["subprotocols"]:
            # RFC 6455 §4.2.2: the server selects one of the client's values, or none; a
            # client fails the connection on any other (§4.1).
            raise RuntimeError(f"websocket.accept: subprotocol {subprotocol!r} was not "
                               f"offered by the client {self.scope['subprotocols']!r}")
        if self._lost or self.transport.is_closing():
            raise ClientDisconnected("the client went away before the handshake completed")
        self.logger.info('%s - "WebSocket %s" [accepted]', client_label(self.scope),
                         log_target(self.scope))
        headers = Headers(response.headers)
        if subprotocol is not None:
            headers["Sec-WebSocket-Protocol"] = subprotocol
            self.protocol.subprotocol = subprotocol
        response.headers = self._headers(headers, extra)
        self._response = None
        self._phase = _ACCEPTED
        protocol = self.protocol
        protocol.send_response(response)
        events = protocol.events_received()  # frames the client sent before our 101
        if events:
            self._handle_events(events)
        self._flush()
        if not self._queue:
            self._resume_reading()
        self.keepalive.start()

    def _refuse(self) -> None:
        """``websocket.close`` before ``websocket.accept``: 403 (ASGI spec, "Close")."""
        self.logger.info('%s - "WebSocket %s" 403', client_label(self.scope),
                         log_target(self.scope))
        self._respond(Response(403, self._headers()))

    def _start_denial(self, message: dict[str, Any]) -> None:
        denial = Denial(message, self._headers())
        self.logger.info('%s - "WebSocket %s" %d', client_label(self.scope),
                         log_target(self.scope), denial.response.status)
        self._phase = _DENYING
        self._denial = denial
        if denial.streaming:
            self._respond(denial.response, close=False)

    def _denial_body(self, message: dict[str, Any]) -> None:
        denial = self._denial
        assert denial is not None
        body, finished = denial.body(message)
        if body and not self._closing:
            self.transport.write(body)
        if finished:
            self._finish_denial()

    def _finish_denial(self) -> None:
        """The application ended its response (or returned, ending it where it stopped)."""
        denial = self._denial
        assert denial is not None
        if denial.streaming:
            self._phase = _DONE
            self._disconnected(1006)
            self._close_transport()
        else:
            self._respond(denial.complete())
        self._denial = None

    def _respond(self, response: Response, *, close: bool = True) -> None:
        """Send an HTTP response instead of the 101."""
        if close:
            self._phase = _DONE
        self.close_sent = True
        self._response = None
        protocol = self.protocol
        protocol.send_response(response)
        out = protocol.data_to_send()
        if out and not self._closing:
            self.transport.write(b"".join(out))
        if close:
            self._disconnected(1006)
            self._close_transport()

    def _internal_error(self) -> None:
        """The application failed before deciding: 500, uvicorn's bytes."""
        if self._phase not in (_DECIDING, _DENYING) or self._denial_streaming:
            return
        self._denial = None
        self._respond(internal_error(self._headers()))

    # --- the application -----------------------------------------------------------------------

    async def run_asgi(self) -> None:
        """Run the application, then close what it left open (theory, item 7)."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            self._app_done(ok=True)
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self._app_done(ok=False)
        else:
            if self._phase == _DECIDING:
                self.logger.error("ASGI callable returned without completing handshake.")
                self._app_done(ok=False)
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.",
                                  result)
                self._app_done(ok=False)
            else:
                self._app_done(ok=True)

    def _app_done(self, *, ok: bool) -> None:
        phase = self._phase
        if phase == _DECIDING:
            self._internal_error()
        elif phase == _DENYING:
            if ok or self._denial_streaming:
                self._finish_denial()
            else:
                self._internal_error()
        elif phase == _ACCEPTED:
            protocol = self.protocol
            if self._hold:
                self._release()
            elif protocol.state is _OPEN and not self._closing:
                code = CloseCode.NORMAL_CLOSURE if ok else CloseCode.INTERNAL_ERROR
                self._disconnected(code, "" if ok else "Internal Server Error")
                protocol.send_close(code, "" if ok else "Internal Server Error")
                self._after_close_sent()

    async def receive(self) -> dict[str, Any]:
        """The ASGI ``receive`` callable."""
        queue = self._queue
        event: dict[str, Any]
        if not queue:
            if self._disconnect_delivered:
                raise ClientDisconnected("receive() after websocket.disconnect")
            if self._waiter is not None:
                raise RuntimeError("receive() is already being awaited")
            waiter: asyncio.Future[dict[str, Any]] = self.loop.create_future()
            self._waiter = waiter
            try:
                event = await waiter
            finally:
                self._waiter = None
        else:
            event = queue.popleft()
            if (not queue and self.read_paused and self._phase == _ACCEPTED
                    and not self._closing):
                self._resume_reading()
        if event is self._disconnect:
            self._disconnect_delivered = True
            if self._hold:
                self._release()  # every message before the close was handed over
        return event

    def _deliver(self, event: dict[str, Any]) -> None:
        """A message (or the disconnect) for the application, in order."""
        if self.close_sent and event["type"] == _RECEIVE:
            return  # after our close, data is read only to reach the peer's close (§5.5.1)
        waiter = self._waiter
        if waiter is not None and not waiter.done() and not self._queue:
            self._waiter = None
            waiter.set_result(event)
        else:
            self._queue.append(event)

    def _disconnected(self, code: int, reason: str | None = None) -> None:
        """Queue the one ``websocket.disconnect`` (theory, item 5). ``reason=None``: no key."""
        if self._disconnect is not None or self.scope == {}:
            return
        event: dict[str, Any] = {"type": "websocket.disconnect", "code": int(code)}
        if reason is not None:
            event["reason"] = reason
        self._disconnect = event
        self._deliver(event)

    async def send(self, message: dict[str, Any]) -> None:
        """The ASGI ``send`` callable."""
        if self._write_paused:
            await self._wait_writable()
        kind = message["type"]
        phase = self._phase
        if phase == _ACCEPTED and kind == "websocket.send" and not self.close_sent:
            # The hot path (benchmarks/run.py, asgi scenario).
            protocol = self.protocol
            if protocol.state is not _OPEN or self._closing:
                raise ClientDisconnected("the WebSocket connection is closed")
            data = message.get("bytes")
            text = message.get("text")
            if data is None:
                if not isinstance(text, str):
                    raise RuntimeError("websocket.send needs 'text' (str) or 'bytes'")
                protocol.send_text(text)
            elif text is None and isinstance(data, bytes | bytearray | memoryview):
                protocol.send_binary(data)
            else:
                raise RuntimeError("websocket.send needs exactly one of 'text' (str) and "
                                   "'bytes' (bytes)")
            out = protocol.data_to_send()
            if out:
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            return
        if self._lost:
            raise ClientDisconnected("the WebSocket connection is closed")
        if phase == _DECIDING:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._refuse()
            elif kind == "websocket.http.response.start":
                self._start_denial(message)
            else:
                raise RuntimeError("Expected ASGI message 'websocket.accept', "
                                   "'websocket.close' or 'websocket.http.response.start' "
                                   f"but got '{kind}'.")
        elif phase == _ACCEPTED:
            if self._app_closed:
                raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending "
                                   "'websocket.close'.")
            if kind == "websocket.close":
                self._close(message)
            elif kind == "websocket.send":
                raise ClientDisconnected("the WebSocket connection is closed")
            else:
                raise RuntimeError("Expected ASGI message 'websocket.send' or "
                                   f"'websocket.close', but got '{kind}'.")
        elif phase == _DENYING:
            if kind == "websocket.http.response.body":
                self._denial_body(message)
            else:
                raise RuntimeError("Expected ASGI message 'websocket.http.response.body' "
                                   f"but got '{kind}'.")
        else:
            if self._closing:
                raise ClientDisconnected("the connection is closed")
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending "
                               "'websocket.close'.")

    def _close(self, message: dict[str, Any]) -> None:
        protocol = self.protocol
        if protocol.state is not _OPEN or self._closing:
            raise ClientDisconnected("the WebSocket connection is closed")
        code = message.get("code", CloseCode.NORMAL_CLOSURE)
        reason = message.get("reason") or ""
        if code is None:
            code = CloseCode.NORMAL_CLOSURE
        protocol.send_close(code, reason)  # ValueError for a code or reason RFC 6455 forbids
        self._app_closed = True
        self._disconnected(code, reason)
        if self._hold:
            self._release()  # the peer's close already arrived: the handshake is complete
        else:
            self._after_close_sent()

    def _after_close_sent(self) -> None:
        """We sent a close frame: write it, keep reading until the peer's close, bounded."""
        self.close_sent = True
        self.keepalive.stop()
        self._flush()
        if not self._closing and self.transport is not None:
            self._resume_reading()
            if self.close_timer is None:
                self.close_timer = self.loop.call_later(self.close_timeout,
                                                        self._close_timed_out)

    # --- events from the core ------------------------------------------------------------------

    def _close_received(self, event: CloseReceived) -> None:
        if self.close_sent:
            # The peer answered our close: the closing handshake is complete (the core asks
            # for TCP to be closed).
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            return
        self.keepalive.stop()
        self._disconnected(event.code, event.reason)

    def _protocol_error(self) -> None:
        """The peer broke the protocol: the core failed the connection (or will, once the
        messages before the bad frame are answered)."""
        if self._disconnect is not None or not isinstance(self.protocol.failure, ProtocolError):
            return
        self.keepalive.stop()
        sent = self.protocol.close_sent
        if sent is not None:
            self._disconnected(sent[0], sent[1])
        else:
            self._fill_disconnect = True
            self._disconnected(CloseCode.PROTOCOL_ERROR)

    # --- writing and closing -------------------------------------------------------------------

    def _flush(self) -> None:
        """Write what the core queued; hold a close behind waiting messages; close TCP when the
        core says so."""
        protocol = self.protocol
        if protocol.close_pending is not None and not self._hold:
            if (self._disconnect is not None and not self._disconnect_delivered
                    and self._phase == _ACCEPTED):
                # A close frame waits behind messages that arrived with it (theory, item 4).
                self._hold = True
                self._hold_timer = self.loop.call_later(HOLD_TIMEOUT, self._release)
            else:
                protocol.release_close()  # nothing waits for the application
        out = protocol.data_to_send()
        if out and not self._closing:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        if protocol.close_transport and not self._closing and self._phase != _DENYING:
            self._close_transport()

    def _release(self) -> None:
        """Send the close frame that waited behind messages (theory, item 4)."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        self._hold = False
        self.protocol.release_close()
        self._flush()
        if self._fill_disconnect and self.protocol.close_sent is not None:
            assert self._disconnect is not None
            self._fill_disconnect = False
            self._disconnect["code"], self._disconnect["reason"] = self.protocol.close_sent

    def _close_transport(self) -> None:
        if self._closing or self.transport is None:
            return
        self._closing = True
        self.keepalive.stop()
        transport = self.transport
        protocol = self.protocol
        if (self._phase == _ACCEPTED and protocol.close_rcvd is None
                and not protocol.eof_received and getattr(transport, "can_write_eof",
                                                          _never)()):
            # We failed the connection while the peer may still be sending: half-close, so our
            # close frame is followed by a FIN rather than lost to a reset, and give the peer
            # close_timeout to close its side.
            transport.write_eof()
            if self.close_timer is None:
                self.close_timer = self.loop.call_later(self.close_timeout,
                                                        self._close_timed_out)
            return
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        transport.close()

    def _close_timed_out(self) -> None:
        self.close_timer = None
        self._abort()

    def _drop(self) -> None:
        """Close TCP now without a closing handshake (what is buffered is still written),
        and abort it if that takes longer than ``close_timeout``."""
        if self.transport is None or self._lost:
            return
        self._closing = True
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        self._abort_timer = self.loop.call_later(self.close_timeout, self._abort)
        self.transport.close()

    def _abort(self) -> None:
        """Drop TCP now (a bare transport may have no ``abort``: close it)."""
        self._closing = True
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        transport = self.transport
        if transport is not None and not self._lost:
            getattr(transport, "abort", transport.close)()

    async def _wait_writable(self) -> None:
        while self._write_paused and not self._lost:
            if self._writable is None:
                self._writable = self.loop.create_future()
            await self._writable

    def _wake_writers(self) -> None:
        waiter, self._writable = self._writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _pause_reading(self) -> None:
        if not self.read_paused and not self._closing:
            self.read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            if not self._lost:
                self.transport.resume_reading()

    # --- keepalive -----------------------------------------------------------------------------

    def _send_ping(self, payload: bytes) -> bool:
        protocol = self.protocol
        if protocol.state is not _OPEN or self.close_sent or self._closing:
            return False
        protocol.send_ping(payload)
        self._flush()
        return True

    def _keepalive_timed_out(self) -> None:
        protocol = self.protocol
        if protocol.state is not _OPEN or self.close_sent or self._closing:
            return
        if self.logger.isEnabledFor(TRACE):
            self.logger.log(TRACE, "%sWebSocket keepalive ping timeout", self._prefix())
        reason = "keepalive ping timeout"
        self._disconnected(CloseCode.INTERNAL_ERROR, reason)
        protocol.fail(CloseCode.INTERNAL_ERROR, reason)
        self.close_sent = True
        self._flush()

    # --- logging -------------------------------------------------------------------------------

    def _prefix(self) -> str:
        return f"{self.client[0]}:{self.client[1]} - " if self.client else ""

    def _log_bad_request(self, response: Response, request: Request | None = None) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        failure = self.protocol.failure
        target = redact_target(request.target) if request is not None else "-"
        client = self._prefix()[:-3]
        self.logger.info('%s - "WebSocket %s" %d (%s)', client, target.replace('"', "%22"),
                         response.status, redact_text(str(failure)))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._prefix()}{self.protocol.state.name}>"


def _never() -> bool:
    return False


def _address(info: Any, *, local: bool) -> tuple[str, int | None] | None:
    """``(host, port)`` from ``sockname`` / ``peername``; a Unix socket's own address is
    ``(path, None)``."""
    if isinstance(info, list | tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    if local and isinstance(info, str) and info:
        return (info, None)
    return None

