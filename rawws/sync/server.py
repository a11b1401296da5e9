"""The threaded WebSocket server: websockets.sync's ``serve``, ``Server``, ``ServerConnection``.

Owns: the listening socket and its accept loop (``serve_forever()``), a thread per
connection running the server side of the opening handshake within ``open_timeout`` with the
same sans-I/O :class:`~rawws.sansio.protocol.ServerProtocol` and the same hooks as the
asyncio server (``process_request``, ``process_response``, ``select_subprotocol``, origins),
then the handler; ``shutdown()`` (1001 to every open connection, 503 to handshakes in
progress); :func:`basic_auth` for this API.

Usage::

    from rawws.sync.server import serve

    def echo(ws):
        for message in ws:
            ws.send(message)

    with serve(echo, "127.0.0.1", 8765) as server:
        server.serve_forever()
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import selectors
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, cast

from ..aio.arguments import (
    Origins,
    check_close_timeout,
    format_address,
    high_water,
    hook_response,
    origin_policy,
    positional_arity,
)
from ..aio.auth import basic_challenge, credentials_checker, parse_authorization_basic
from ..aio.server import default_extensions
from ..errors import ConnectionClosed
from ..redact import redact_target, redact_text
from ..sansio.codes import CloseCode
from ..sansio.extensions import ServerExtensionFactory
from ..sansio.http11 import Headers, Request, Response
from ..sansio.options import Options
from ..sansio.protocol import State
from ..sansio.server import ServerProtocol
from .connection import Connection, broadcast

__all__ = ["Server", "ServerConnection", "basic_auth", "broadcast", "serve", "unix_serve"]

_logger = logging.getLogger("rawws.server")

Handler = Callable[["ServerConnection"], None]
ProcessRequest = Callable[["ServerConnection", Request], "Response | None"]
ProcessResponse = Callable[["ServerConnection", Request, Response], "Response | None"]


class ServerConnection(Connection):
    """A connection accepted by a :class:`Server`; application attributes may be set on it
    (``connection.username`` is set by :func:`basic_auth`)."""

    protocol: ServerProtocol
    username: str

    def __init__(self, sock: socket.socket, protocol: ServerProtocol, server: Server,
                 **kwargs: Any) -> None:
        super().__init__(sock, protocol, **kwargs)
        self.server = server

    def respond(self, status: int, text: str) -> Response:
        """A plain-text response for ``process_request`` / ``process_response`` to return."""
        return Response(int(status), Headers([("Content-Type", "text/plain; charset=utf-8")]),
                        text.encode())


class Server:
    """A running threaded server. Use :func:`serve` to make one."""

    def __init__(self, sock: socket.socket, handler: Handler, *,
                 connection_options: dict[str, Any], logger: logging.Logger) -> None:
        self.socket = sock
        self.handler = handler
        self.logger = logger
        self._options = connection_options
        self._lock = threading.Lock()
        self._all: set[ServerConnection] = set()
        self._threads: set[threading.Thread] = set()
        self._closing = False
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._accepting_ended = threading.Event()

    @property
    def connections(self) -> set[ServerConnection]:
        """The connections that completed the handshake and are not closing (websockets')."""
        with self._lock:
            return {c for c in self._all if c.protocol.state is State.OPEN}

    def fileno(self) -> int:
        return self.socket.fileno()

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown` (from another thread), a thread each."""
        selector = selectors.DefaultSelector()
        try:
            try:
                selector.register(self.socket, selectors.EVENT_READ)
                selector.register(self._wake_reader, selectors.EVENT_READ)
                self.logger.info("server listening on %s",
                                 format_address(self.socket.getsockname()))
            except (OSError, ValueError):
                return  # shut down before it started
            while not self._closing:
                selector.select()
                if self._closing:
                    break
                try:
                    sock, _ = self.socket.accept()
                except BlockingIOError:
                    continue
                except OSError:
                    break
                thread = threading.Thread(target=self._run_connection, args=(sock,),
                                          name="rawws-connection")
                with self._lock:
                    self._threads.add(thread)
                thread.start()
        finally:
            selector.close()
            self._accepting_ended.set()

    def shutdown(self, close_connections: bool = True, code: int = CloseCode.GOING_AWAY,
                 reason: str = "server shutting down") -> None:
        """Stop accepting; with ``close_connections``, close every open connection with
        ``code`` (handshakes in progress get 503); wait for the handlers to return (each
        ``close_timeout`` after its connection closed at most: a thread cannot be cancelled,
        one still running then is left to finish and logged). Idempotent."""
        if not self._closing:
            self.logger.info("server closing")
        self._closing = True
        try:
            self._wake_writer.send(b"x")
        except OSError:
            pass
        self.socket.close()
        if close_connections:
            with self._lock:
                open_ = [c for c in self._all if c.protocol.state is State.OPEN]
            for connection in open_:
                connection._start_close(code, reason)
        with self._lock:
            threads = list(self._threads)
        timeout = self._options["close_timeout"] * 2
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                self.logger.warning("a connection handler is still running %s s after the "
                                    "shutdown began", timeout)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()

    # --- one connection, in its own thread -------------------------------------------------------

    def _run_connection(self, sock: socket.socket) -> None:
        connection: ServerConnection | None = None
        try:
            connection = self._handshake(sock)
            if connection is None:
                return
            with self._lock:
                self._all.add(connection)
            try:
                self.handler(connection)
            except ConnectionClosed:
                pass
            except Exception:
                self.logger.exception("%s: connection handler failed",
                                      format_address(connection.remote_address))
                connection.close(CloseCode.INTERNAL_ERROR, "internal error")
            else:
                connection.close()
        except Exception:
            self.logger.exception("error while handling a connection")
            sock.close()
        finally:
            with self._lock:
                if connection is not None:
                    self._all.discard(connection)
                self._threads.discard(threading.current_thread())

    def _handshake(self, sock: socket.socket) -> ServerConnection | None:
        """Read the request and answer it within ``open_timeout``; the connection if it
        opened."""
        options = self._options
        open_timeout: float | None = options["open_timeout"]
        deadline = None if open_timeout is None else time.monotonic() + open_timeout

        def left() -> float | None:
            if deadline is None:
                return None
            return max(0.001, deadline - time.monotonic())

        try:
            sock.settimeout(left())
            if options["ssl"] is not None:
                sock = options["ssl"].wrap_socket(sock, server_side=True)
        except (OSError, ValueError):
            sock.close()
            return None
        protocol = ServerProtocol(**options["protocol"])
        factory: type[ServerConnection] = options["create_connection"]
        connection = factory(sock, protocol, self, **options["connection"])
        request: Request | None = None
        try:
            while request is None:
                sock.settimeout(left())
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    self.logger.info("%s: opening handshake timed out",
                                     format_address(connection.remote_address))
                    self._send(connection, protocol.reject(408, "opening handshake timed out"))
                    return None
                if not data:
                    sock.close()
                    return None
                protocol.receive_data(data)
                for event in protocol.events_received():
                    if isinstance(event, Response):  # the request could not be read
                        self._log(connection, event, protocol.failure)
                        self._finish(connection)
                        return None
                    assert isinstance(event, Request)
                    request = event
            response = self._response(connection, request)
            failure = protocol.failure
            self._send(connection, response, failure)
            if response.status != 101:
                return None
            with connection._lock:
                connection._handle(protocol.events_received())  # frames sent with the request
                connection._write_out()
            sock.settimeout(None)
            connection.start()
            return connection
        except (OSError, ValueError):
            sock.close()
            return None

    def _response(self, connection: ServerConnection, request: Request) -> Response:
        options = self._options
        protocol = connection.protocol
        if not request.is_upgrade:
            return protocol.reject(426, "this is a WebSocket server: upgrade to websocket",
                                   [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")])
        try:
            if self._closing:
                return protocol.reject(503, "server shutting down", [("Retry-After", "5")])
            process_request = options["process_request"]
            if process_request is not None:
                answer = process_request(connection, request)
                if answer is not None:
                    return hook_response("process_request", answer, self.logger)
            select = options["select_with_connection"]
            if select is not None:
                protocol.select_subprotocol = functools.partial(select, connection)
            try:
                response = protocol.accept(request)
            finally:
                if select is not None:
                    protocol.select_subprotocol = None
            process_response = options["process_response"]
            if process_response is not None:
                replaced = process_response(connection, request, response)
                if replaced is not None:
                    response = hook_response("process_response", replaced, self.logger)
        except Exception:
            self.logger.exception("%s: error in a handshake hook",
                                  format_address(connection.remote_address))
            return protocol.reject(500, "internal server error")
        if response.status == 101 and self._closing:
            return protocol.reject(503, "server shutting down", [("Retry-After", "5")])
        return response

    def _send(self, connection: ServerConnection, response: Response,
              failure: Exception | None = None) -> None:
        protocol = connection.protocol
        protocol.send_response(response)
        self._log(connection, response, failure)
        connection.socket.sendall(b"".join(protocol.data_to_send()))
        if response.status != 101:
            self._finish(connection)

    def _finish(self, connection: ServerConnection) -> None:
        """A refused handshake: write what is left, half-close, drop the socket."""
        try:
            connection.socket.sendall(b"".join(connection.protocol.data_to_send()))
            connection.socket.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        connection.socket.close()

    def _log(self, connection: ServerConnection, response: Response,
             failure: Exception | None) -> None:
        """One INFO line per accepted and per refused connection, as the asyncio server."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        request = connection.protocol.request
        path = redact_target(request.target) if request is not None else "-"
        peer = format_address(connection.remote_address)
        if response.status == 101:
            subprotocol = connection.protocol.subprotocol
            self.logger.info("%s: accepted GET %s%s", peer, path,
                             f" (subprotocol {subprotocol})" if subprotocol else "")
            return
        if failure is not None:
            reason = str(failure)
        else:
            lines = response.body[:200].decode("utf-8", "replace").strip().splitlines()
            reason = lines[0] if lines else response.reason
        self.logger.info("%s: refused %s with HTTP %d: %s", peer, path, response.status,
                         redact_text(reason))


def serve(
    handler: Handler,
    host: str | None = None,
    port: int | None = None,
    *,
    sock: socket.socket | None = None,
    ssl: ssl_module.SSLContext | None = None,
    origins: Origins | None = None,
    extensions: Sequence[ServerExtensionFactory] | None = None,
    subprotocols: Sequence[str] | None = None,
    select_subprotocol: Callable[..., str | None] | None = None,
    compression: str | None = "deflate",
    process_request: ProcessRequest | None = None,
    process_response: ProcessResponse | None = None,
    server_header: str | None = "rawws",
    open_timeout: float | None = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    close_timeout: float = 10.0,
    max_size: int | tuple[int | None, int | None] | None = 2**20,
    max_queue: int | tuple[int | None, int | None] | None = 16,
    logger: logging.Logger | None = None,
    create_connection: type[ServerConnection] | None = None,
    **kwargs: Any,
) -> Server:
    """Listen on ``host``:``port`` (or ``sock``) and run ``handler(connection)`` in a thread
    for every connection that completes the handshake; the connection closes with 1000 when
    the handler returns, 1011 when it raises.

    The arguments are websockets.sync's (see :func:`rawws.serve` for their meaning; the same
    limits and defaults); other keyword arguments go to :func:`socket.create_server`
    (``reuse_port``, ``family``...). Use the returned :class:`Server` as a context manager
    around ``serve_forever()``; ``shutdown()`` from another thread stops it.
    """
    unix = kwargs.pop("unix", False)
    path = kwargs.pop("path", None)
    if create_connection is not None and not issubclass(create_connection, ServerConnection):
        raise TypeError("create_connection must be a subclass of ServerConnection")
    max_frame_size = None
    if isinstance(max_size, tuple):
        max_size, max_frame_size = max_size
    logger = logger or _logger
    takes_connection = (select_subprotocol is not None
                        and positional_arity(select_subprotocol) >= 2)
    options: dict[str, Any] = {
        "protocol": dict(
            origins=origin_policy(origins), subprotocols=subprotocols,
            select_subprotocol=None if takes_connection else select_subprotocol,
            extensions=list(extensions) if extensions is not None
            else default_extensions(compression),
            server_header=server_header,
            options=Options(max_size=max_size, max_frame_size=max_frame_size), logger=logger),
        "connection": dict(ping_interval=ping_interval, ping_timeout=ping_timeout,
                           close_timeout=check_close_timeout(close_timeout),
                           max_queue=high_water(max_queue), logger=logger),
        "close_timeout": close_timeout,
        "open_timeout": open_timeout,
        "ssl": ssl,
        "process_request": process_request,
        "process_response": process_response,
        "select_with_connection": select_subprotocol if takes_connection else None,
        "create_connection": create_connection or ServerConnection,
    }
    if sock is None:
        if unix:
            assert path is not None, "unix_serve() needs a path"
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(os.fspath(path))
            sock.listen(kwargs.pop("backlog", 128))
        else:
            sock = socket.create_server((host or "", port or 0), **kwargs)
    sock.setblocking(False)  # the accept loop waits in select(), never in accept()
    return Server(sock, handler, connection_options=options, logger=logger)


def unix_serve(handler: Handler, path: str | None = None, **kwargs: Any) -> Server:
    """Like :func:`serve`, on the Unix socket ``path``."""
    return serve(handler, unix=True, path=path, **kwargs)


def basic_auth(
    realm: str = "",
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    check_credentials: Callable[[str, str], bool] | None = None,
) -> Callable[[ServerConnection, Request], Response | None]:
    """A ``process_request`` hook enforcing HTTP Basic authentication (as
    :func:`rawws.basic_auth`, with a plain function for ``check_credentials``)."""
    if check_credentials is not None and inspect.iscoroutinefunction(check_credentials):
        raise TypeError("the threaded server needs a plain function for check_credentials")
    check = cast(Callable[[str, str], bool],
                 credentials_checker(credentials, check_credentials))
    challenge = basic_challenge(realm)

    def unauthorized(connection: ServerConnection, text: str) -> Response:
        response = connection.respond(401, text)
        response.headers["WWW-Authenticate"] = challenge
        return response

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        value = request.headers.get("Authorization")
        if value is None:
            return unauthorized(connection, "Missing credentials\n")
        try:
            username, password = parse_authorization_basic(value)
        except ValueError:
            return unauthorized(connection, "Unsupported credentials\n")
        if not check(username, password):
            return unauthorized(connection, "Invalid credentials\n")
        connection.username = username
        return None

    return process_request
