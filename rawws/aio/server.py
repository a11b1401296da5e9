"""The asyncio WebSocket server: :func:`serve`, :class:`Server`, :class:`ServerConnection`.

Owns: listening; the server side of the opening handshake with its hooks (``process_request``,
``process_response``, origin policy, subprotocols, extensions); plain HTTP requests on the same
port (``http_handler``); ``open_timeout`` (also bounds a slow handshake); running the
connection handler (a coroutine, or a :class:`~rawws.aio.connection.Listener`); connection
limits; graceful shutdown (close 1001 to every open connection, wait up to ``close_timeout``
for each, and, with ``shutdown_timeout``, abort whatever is still open at that deadline).

Usage::

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with rawws.serve(echo, "127.0.0.1", 8765) as server:
        await server.serve_forever()
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import logging
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Generator, Sequence
from types import TracebackType
from typing import Any, cast

from ..errors import ConnectionClosed
from ..redact import redact_target, redact_text
from ..sansio.codes import CloseCode
from ..sansio.deflate import ServerPerMessageDeflateFactory
from ..sansio.extensions import ServerExtensionFactory
from ..sansio.http11 import Headers, Request, Response
from ..sansio.options import DEFAULT_OPTIONS as _DEFAULTS
from ..sansio.options import Options
from ..sansio.protocol import State
from ..sansio.reader import Tracer
from ..sansio.server import ServerProtocol
from .arguments import (
    Origins,
    check_close_timeout,
    format_address,
    high_water,
    hook_response,
    origin_policy,
    positional_arity,
)
from .connection import Connection, Listener

__all__ = ["Server", "ServerConnection", "serve", "unix_serve"]

_logger = logging.getLogger("rawws.server")

Handler = Callable[["ServerConnection"], Awaitable[None]]
ProcessRequest = Callable[
    ["ServerConnection", Request], "Response | Awaitable[Response | None] | None"
]
ProcessResponse = Callable[
    ["ServerConnection", Request, Response], "Response | Awaitable[Response | None] | None"
]
HTTPHandler = Callable[["ServerConnection", Request], "Response | Awaitable[Response]"]
SelectSubprotocol = (Callable[["ServerConnection", Sequence[str]], "str | None"]
                     | Callable[[Sequence[str]], "str | None"])


def default_extensions(compression: str | None) -> list[ServerExtensionFactory]:
    if compression is None:
        return []
    if compression != "deflate":
        raise ValueError(f"unsupported compression: {compression!r} (use 'deflate' or None)")
    return [ServerPerMessageDeflateFactory()]


class ServerConnection(Connection):
    """A connection accepted by a :class:`Server`."""

    __slots__ = ("_handler_task", "_handshake_task", "_open_timer", "server")

    protocol: ServerProtocol
    #: Set by :func:`~rawws.aio.auth.basic_auth` when the credentials are valid.
    username: str

    def __init__(self, server: Server, protocol: ServerProtocol, *,
                 listener: Listener | None = None, options: Options = _DEFAULTS,
                 logger: logging.Logger | None = None) -> None:
        super().__init__(protocol, listener=listener, options=options, logger=logger)
        self.server = server
        self._open_timer: asyncio.TimerHandle | None = None
        self._handshake_task: asyncio.Task[None] | None = None
        self._handler_task: asyncio.Task[None] | None = None

    def respond(self, status: int, text: str) -> Response:
        """Build a plain-text response (``text`` encoded as UTF-8, as is): what
        ``process_request`` / ``process_response`` return to answer instead of upgrading.
        ``status`` may be an ``http.HTTPStatus``. Change its headers before returning it if
        needed."""
        return Response(int(status), Headers([("Content-Type", "text/plain; charset=utf-8")]),
                        text.encode())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.server._register(self)
        if self.options.open_timeout is not None:
            self._open_timer = self.loop.call_later(self.options.open_timeout,
                                                    self._open_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None
        if self._handshake_task is not None:
            self._handshake_task.cancel()
        super().connection_lost(exc)
        self.server._unregister(self)

    def _count_response(self, response: Response, failure: Exception | None = None) -> None:
        """Count a refused handshake; log one line per accepted connection (address, path,
        subprotocol) and per refused one (address, path, status, reason) at INFO.

        ``failure`` is why the protocol refused, when it did; otherwise a hook or the server
        chose the status, and the first line of the response's text says why. Plain HTTP
        requests answered by ``http_handler`` are not logged here (no access log).
        """
        status = response.status
        if status != 101:
            self.server.rejections[status] += 1
        if not self.logger.isEnabledFor(logging.INFO):
            return
        request = self.protocol.request
        if request is not None and not request.is_upgrade and failure is None:
            return
        path = redact_target(request.target) if request is not None else "-"
        peer = format_address(self.remote_address)
        if status == 101:
            subprotocol = self.protocol.subprotocol
            self.logger.info("%s: accepted GET %s%s", peer, path,
                             f" (subprotocol {subprotocol})" if subprotocol else "")
            return
        if failure is not None:
            reason = str(failure)
        else:
            text = response.body[:200].decode("utf-8", "replace").strip().splitlines()
            reason = text[0] if text else response.reason
        self.logger.info("%s: refused %s with HTTP %d: %s", peer, path, status,
                         redact_text(reason))

    def _refuse_while_closing(self) -> None:
        """The server is closing: a handshake waiting for its response gets 503, a
        connection that has not sent its request yet is dropped."""
        protocol = self.protocol
        if protocol.request is not None and protocol.response is None:
            if self._handshake_task is not None:
                self._handshake_task.cancel()  # its hook's answer would come too late
            self._respond(protocol.reject(503, "server shutting down", [("Retry-After", "5")]))
        elif self.transport is not None:
            self.transport.abort()

    def _open_timed_out(self) -> None:
        self._open_timer = None
        if self.protocol.state is State.CONNECTING and self.transport is not None:
            self.logger.info("%s: opening handshake timed out", self.remote_address)
            if self.protocol.response is None:
                self._respond(self.protocol.reject(408, "opening handshake timed out"))
            else:
                self.transport.abort()

    # --- the handshake ---------------------------------------------------------------------------

    def _handle_handshake_event(self, event: Request | Response) -> None:
        if isinstance(event, Response):
            # The protocol rejected a request it could not read (400, 414, 431...).
            self._count_response(event, self.protocol.failure)
            return
        request = event
        server = self.server
        if not request.is_upgrade:
            if server.http_handler is None:
                # RFC 9110 §15.5.22: 426 with an Upgrade header naming the protocol to use.
                self._respond(self.protocol.reject(
                    426, "this is a WebSocket server: upgrade to websocket",
                    [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
                ))
                return
            self._run_hook(self._plain_request(request))
            return
        if server.max_connections is not None:
            # Count the upgrades admitted so far, open or still in a handshake hook: counting
            # only open connections let concurrent handshakes with async hooks all slip in.
            if len(server._admitted) >= server.max_connections:
                self._respond(self.protocol.reject(503, "too many connections",
                                                   [("Retry-After", "5")]))
                return
            server._admitted.add(self)
        self._run_hook(self._upgrade(request))

    def _run_hook(self, steps: Generator[Any, Any, None]) -> None:
        """Run the handshake steps inline; only if a hook returns an awaitable, continue in a
        task (reading paused meanwhile, so nothing is buffered without bound)."""
        try:
            awaitable = steps.send(None)
        except StopIteration:
            return
        except Exception:
            self._hook_failed()
            return
        if self.transport is not None:
            self.transport.pause_reading()
        self._handshake_task = self.loop.create_task(self._finish_hook(steps, awaitable))

    async def _finish_hook(self, steps: Generator[Any, Any, None], awaitable: Any) -> None:
        try:
            while True:
                result = await awaitable
                try:
                    awaitable = steps.send(result)
                except StopIteration:
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            self._hook_failed()
            return
        finally:
            self._handshake_task = None
        if (self.transport is not None and self.protocol.state is not State.CLOSED
                and not self._reading_paused):
            # Unless frames that arrived with the request already filled the queue
            # (max_queue paused reading): then recv() resumes it.
            self.transport.resume_reading()

    def _hook_failed(self) -> None:
        self.logger.exception("%s: error in a handshake hook", self.remote_address)
        if self.protocol.response is None:
            self._respond(self.protocol.reject(500, "internal server error"))

    @staticmethod
    def _maybe_await(value: Any) -> Generator[Any, Any, Any]:
        if inspect.isawaitable(value):
            value = yield value
        return value

    def _plain_request(self, request: Request) -> Generator[Any, Any, None]:
        handler = self.server.http_handler
        assert handler is not None
        response = yield from self._maybe_await(handler(self, request))
        self._respond(response)

    def _upgrade(self, request: Request) -> Generator[Any, Any, None]:
        server = self.server
        if server.process_request is not None:
            rejection = yield from self._maybe_await(server.process_request(self, request))
            if rejection is not None:
                self._respond(hook_response("process_request", rejection, self.logger))
                return
        protocol = self.protocol
        if server._select_takes_connection:
            # websockets' select_subprotocol(connection, subprotocols): bound to this
            # connection for the duration of accept() only (no per-connection object kept).
            select = cast(Callable[[ServerConnection, Sequence[str]], "str | None"],
                          server.select_subprotocol)
            protocol.select_subprotocol = functools.partial(select, self)
            try:
                response = protocol.accept(request)
            finally:
                protocol.select_subprotocol = None
        else:
            response = protocol.accept(request)
        if server.process_response is not None:
            replaced = yield from self._maybe_await(
                server.process_response(self, request, response)
            )
            if replaced is not None:
                response = hook_response("process_response", replaced, self.logger)
        if response.status == 101 and server._closing:
            # As websockets: a handshake that completes while the server shuts down is refused.
            response = protocol.reject(503, "server shutting down", [("Retry-After", "5")])
        self._respond(response)

    def _respond(self, response: Response) -> None:
        protocol = self.protocol
        if protocol.state is not State.CONNECTING or self.transport is None:
            return
        failure = protocol.failure  # set when accept() refused the request
        protocol.send_response(response)
        self._count_response(response, failure)
        if response.status == 101:
            if self._open_timer is not None:
                self._open_timer.cancel()
                self._open_timer = None
            # One batch, as in data_received: whatever on_connect or the early frames' callbacks
            # send (or broadcast) is written after the 101, in order.
            outer = self._open_batch()
            try:
                self._on_open()
                if self.listener is None:
                    self._handler_task = self.loop.create_task(self._run_handler())
                    self.server._handler_tasks.add(self._handler_task)
                    self._handler_task.add_done_callback(self.server._handler_tasks.discard)
                # Frames the client sent right after its request are processed now.
                events = protocol.events_received()
                if events:
                    self._dispatch(events)
            finally:
                if outer:
                    self._close_batch()
        self._flush()

    async def _run_handler(self) -> None:
        handler = self.server.handler
        assert handler is not None
        try:
            await handler(self)
        except ConnectionClosed:
            pass
        except Exception:
            self.logger.exception("%s: connection handler failed", self.remote_address)
            self.close_nowait(CloseCode.INTERNAL_ERROR, "internal error")
        else:
            self.close_nowait(CloseCode.NORMAL_CLOSURE)


class Server:
    """A running WebSocket server. Use :func:`serve` to make one."""

    def __init__(
        self,
        handler: Handler | Listener | type[Listener] | None,
        *,
        ssl: ssl_module.SSLContext | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SelectSubprotocol | None = None,
        origins: Origins | None = None,
        extra_headers: Headers | Sequence[tuple[str, str]] | None = None,
        compression: str | None = _DEFAULTS.compression,
        extensions: Sequence[ServerExtensionFactory] | None = None,
        max_size: int | tuple[int | None, int | None] | None = _DEFAULTS.max_size,
        max_frame_size: int | None = _DEFAULTS.max_frame_size,
        max_queue: int | tuple[int | None, int | None] | None = _DEFAULTS.max_queue,
        write_limit: int | tuple[int, int | None] = _DEFAULTS.write_limit,
        ping_interval: float | None = _DEFAULTS.ping_interval,
        ping_timeout: float | None = _DEFAULTS.ping_timeout,
        open_timeout: float | None = _DEFAULTS.open_timeout,
        close_timeout: float = _DEFAULTS.close_timeout,
        shutdown_timeout: float | None = None,
        create_connection: type[ServerConnection] | None = None,
        process_request: ProcessRequest | None = None,
        process_response: ProcessResponse | None = None,
        http_handler: HTTPHandler | None = None,
        max_body_size: int = _DEFAULTS.max_body_size,
        max_connections: int | None = None,
        server_header: str | None = "rawws",
        logger: logging.Logger | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        if isinstance(handler, type) and issubclass(handler, Listener):
            handler = handler()
        self.listener: Listener | None = handler if isinstance(handler, Listener) else None
        self.handler: Handler | None = None if self.listener is not None else cast(
            Handler | None, handler)
        self.ssl = ssl
        self.subprotocols = subprotocols
        self.select_subprotocol = select_subprotocol
        #: websockets' select_subprotocol(connection, subprotocols), or rawws' older
        #: select_subprotocol(subprotocols).
        self._select_takes_connection = (select_subprotocol is not None
                                         and positional_arity(select_subprotocol) >= 2)
        self.origins = origin_policy(origins)
        self.extra_headers = extra_headers
        self.extensions = (list(extensions) if extensions is not None
                           else default_extensions(compression))
        if isinstance(max_size, tuple):
            # websockets' (max_message_size, max_fragment_size).
            max_size, max_frame_size = max_size
        #: The options of every connection, built once (a ValueError for a bad one).
        self.options = Options(
            max_size=max_size, max_frame_size=max_frame_size, max_body_size=max_body_size,
            max_queue=high_water(max_queue), write_limit=cast(int, high_water(write_limit)),
            open_timeout=open_timeout, ping_interval=ping_interval, ping_timeout=ping_timeout,
            close_timeout=check_close_timeout(close_timeout), compression=compression)
        if create_connection is not None and not issubclass(create_connection,
                                                            ServerConnection):
            raise TypeError("create_connection must be a subclass of ServerConnection")
        self.create_connection = create_connection or ServerConnection
        if shutdown_timeout is not None and not shutdown_timeout >= 0:
            raise ValueError(f"shutdown_timeout must be >= 0 or None, not {shutdown_timeout!r}")
        #: Seconds from :meth:`close` until every connection still open is aborted (a peer that
        #: never reads never receives its 1001). None: each connection's ``close_timeout``.
        self.shutdown_timeout = shutdown_timeout
        self.process_request = process_request
        self.process_response = process_response
        self.http_handler = http_handler
        self.max_connections = max_connections
        self.server_header = server_header
        self.logger = logger or _logger
        #: Called with a :class:`~rawws.sansio.reader.FrameRecord` for every frame of every
        #: connection (tools; ``None``: no tracing, no cost).
        self.tracer = tracer

        #: Every TCP connection, open or in the handshake.
        self.connections: set[ServerConnection] = set()
        #: Handshake rejections counted by HTTP status.
        self.rejections: collections.Counter[int] = collections.Counter()
        self._handler_tasks: set[asyncio.Task[None]] = set()
        #: Upgrade requests that passed max_connections, until their TCP connection closes.
        self._admitted: set[ServerConnection] = set()
        self._server: asyncio.Server | None = None
        self._serving: asyncio.Future[None] | None = None  # serve_forever() waits on it
        self._closing = False
        self._closing_connections = False
        self._shutdown_deadline: float | None = None  # loop time, set by close()
        self._shutdown_timer: asyncio.TimerHandle | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def _make_connection(self) -> ServerConnection:
        protocol = ServerProtocol(
            origins=self.origins,
            subprotocols=self.subprotocols,
            select_subprotocol=(None if self._select_takes_connection else cast(
                Callable[[Sequence[str]], "str | None"] | None, self.select_subprotocol)),
            extensions=self.extensions,
            extra_headers=self.extra_headers,
            server_header=self.server_header,
            options=self.options,
            logger=self.logger,
            tracer=self.tracer,
        )
        return self.create_connection(self, protocol, listener=self.listener,
                                      options=self.options, logger=self.logger)

    async def start(self, host: str | Sequence[str] | None = None, port: int | None = None,
                    **kwargs: Any) -> Server:
        loop = asyncio.get_running_loop()
        open_timeout = self.options.open_timeout
        if self.ssl is not None and open_timeout is not None:
            # open_timeout bounds the TLS handshake too (connection_made comes after it).
            kwargs.setdefault("ssl_handshake_timeout", open_timeout)
        if kwargs.pop("unix", False):
            self._server = await loop.create_unix_server(self._make_connection, ssl=self.ssl,
                                                         **kwargs)
        elif "sock" in kwargs and kwargs["sock"] is not None:
            self._server = await loop.create_server(self._make_connection, ssl=self.ssl,
                                                    **kwargs)
        else:
            self._server = await loop.create_server(self._make_connection, host, port,
                                                    ssl=self.ssl, **kwargs)
        if self.logger.isEnabledFor(logging.INFO):
            for sock in self._server.sockets:
                self.logger.info("server listening on %s%s", "wss://" if self.ssl else "ws://",
                                 format_address(sock.getsockname()))
        return self

    def _register(self, connection: ServerConnection) -> None:
        self.connections.add(connection)
        if self._closing and connection.transport is not None:
            connection.transport.abort()

    def _unregister(self, connection: ServerConnection) -> None:
        self.connections.discard(connection)
        self._admitted.discard(connection)

    @property
    def open_count(self) -> int:
        """How many connections completed the handshake and are not closed."""
        return sum(1 for c in self.connections if c.protocol.state is not State.CONNECTING)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._server.sockets) if self._server is not None else ()

    @property
    def port(self) -> int:
        """The port of the first listening socket (handy with ``port=0``)."""
        return cast(int, self.sockets[0].getsockname()[1])

    def close(self, close_connections: bool = True, code: int = CloseCode.GOING_AWAY,
              reason: str = "server shutting down") -> None:
        """Stop accepting connections; with ``close_connections``, close every open one with
        ``code`` (1001 by default; 1012 "service restart" is another choice), answer 503 to
        the handshakes waiting for their response and abort the connections that have not
        sent a complete request. Idempotent; :meth:`wait_closed` waits for the end.

        With ``shutdown_timeout``, every connection still not closed that many seconds later
        (a peer that never reads keeps its close frame stuck behind unread data) is aborted,
        and handlers still running then are cancelled: the whole shutdown takes at most
        ``shutdown_timeout`` (plus the handlers' reaction to their cancellation).
        """
        if not self._closing:
            self.logger.info("server closing")
        self._closing = True
        if self._server is not None:
            self._server.close()
        if self._serving is not None and not self._serving.done():
            self._serving.set_result(None)  # serve_forever() returns
        if close_connections:
            self._closing_connections = True
            for connection in list(self.connections):
                if connection.protocol.state is State.OPEN:
                    connection.close_nowait(code, reason)
                elif (connection.protocol.state is State.CONNECTING
                      and connection.transport is not None):
                    connection._refuse_while_closing()
            if self.shutdown_timeout is not None and self._shutdown_deadline is None:
                loop = asyncio.get_running_loop()
                self._shutdown_deadline = loop.time() + self.shutdown_timeout
                self._shutdown_timer = loop.call_at(self._shutdown_deadline,
                                                    self._shutdown_deadline_passed)

    def _shutdown_deadline_passed(self) -> None:
        self._shutdown_timer = None
        left = list(self.connections)  # a connection leaves the set when its TCP closes
        if left:
            self.logger.warning("shutdown: %d connection(s) still open after %s s: aborting",
                                len(left), self.shutdown_timeout)
        for connection in left:
            connection.abort()

    async def wait_closed(self) -> None:
        """Wait until the server and every connection are closed (each connection's close is
        bounded by ``close_timeout``) and every handler has returned.

        After :meth:`close` closed the connections, a handler gets ``close_timeout`` more to
        return (e.g. to save state), or until the ``shutdown_timeout`` deadline if that comes
        first; one that ignores its closed connection (awaiting something else) is then
        cancelled, so a shutdown always ends.
        """
        closed = [c._closed_waiter() for c in self.connections]
        if closed:
            await asyncio.wait(closed)
        if self._handler_tasks:
            tasks = list(self._handler_tasks)
            if not self._closing_connections:
                await asyncio.wait(tasks)
            else:
                timeout = self.options.close_timeout
                if self._shutdown_deadline is not None:
                    left = self._shutdown_deadline - asyncio.get_running_loop().time()
                    timeout = max(0.0, min(timeout, left))
                _, pending = await asyncio.wait(tasks, timeout=timeout)
                for task in pending:
                    self.logger.warning("connection handler still running %.3g s after its "
                                        "connection closed: cancelling it", timeout)
                    task.cancel()
                if pending:
                    await asyncio.wait(pending)
        if self._shutdown_timer is not None and not self.connections:
            self._shutdown_timer.cancel()
            self._shutdown_timer = None
        if self._server is not None:
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called (then wait for the shutdown to finish), or until
        the task running this is cancelled: then close gracefully, wait, and let the
        cancellation through (as websockets and ``asyncio.Server`` do)."""
        assert self._server is not None
        if not self._server.is_serving():
            await self._server.start_serving()
        if self._serving is None:
            self._serving = asyncio.get_running_loop().create_future()
            if self._closing:
                self._serving.set_result(None)
        try:
            await asyncio.shield(self._serving)
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise
        await self.wait_closed()

    def is_serving(self) -> bool:
        """Whether the server accepts connections (see ``asyncio.Server.is_serving``)."""
        return self._server is not None and self._server.is_serving()

    async def start_serving(self) -> None:
        """Start accepting connections, after ``serve(..., start_serving=False)``."""
        assert self._server is not None
        await self._server.start_serving()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        assert self._server is not None
        return self._server.get_loop()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
        await self.wait_closed()


class serve:
    """Start a WebSocket server on ``host``:``port``.

    ``handler`` is an ``async def handler(ws)`` coroutine function (one task per connection;
    the connection closes with 1000 when it returns, 1011 if it raises), or a
    :class:`~rawws.aio.connection.Listener` (instance or subclass) for the callback API.
    ``handler=None`` serves only plain HTTP through ``http_handler``.

    Returns a :class:`Server` when awaited; as an async context manager, closes it gracefully
    on exit. Every option of :class:`Server` is accepted; extra keyword arguments (``sock``,
    ``reuse_port``, ``backlog``...) go to ``loop.create_server``.
    """

    def __init__(self, handler: Handler | Listener | type[Listener] | None,
                 host: str | Sequence[str] | None = None, port: int | None = None,
                 **kwargs: Any) -> None:
        server_options = {k: kwargs.pop(k) for k in list(kwargs)
                          if k in inspect.signature(Server.__init__).parameters}
        self.server = Server(handler, **server_options)
        self.host = host
        self.port = port
        self.create_server_kwargs = kwargs

    def __await__(self) -> Generator[Any, None, Server]:
        return self.server.start(self.host, self.port,
                                 **self.create_server_kwargs).__await__()

    async def __aenter__(self) -> Server:
        return await self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.server.__aexit__(exc_type, exc, tb)


def unix_serve(handler: Handler | Listener | type[Listener] | None, path: str | None = None,
               **kwargs: Any) -> serve:
    """Like :func:`serve`, on the Unix socket ``path`` instead of a TCP host and port
    (for a server behind a reverse proxy)."""
    return serve(handler, unix=True, path=path, **kwargs)
