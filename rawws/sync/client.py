"""The threaded WebSocket client: websockets.sync's ``connect`` and ``ClientConnection``.

Owns: opening the socket (TCP, a Unix socket, or one given), TLS, and the client side of the
opening handshake within ``open_timeout``, with the same sans-I/O
:class:`~rawws.sansio.protocol.ClientProtocol` as the asyncio client; then a
:class:`~rawws.sync.connection.Connection` takes over.

Usage::

    from rawws.sync.client import connect

    with connect("ws://127.0.0.1:8765/") as ws:
        ws.send("Hello")
        print(ws.recv(timeout=10))
"""

from __future__ import annotations

import logging
import random
import socket
import ssl as ssl_module
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..aio.arguments import basic_authorization, check_close_timeout, high_water
from ..aio.client import HeadersLike, default_extensions, parse_uri, process_exception
from ..aio.client import connect as _async_connect
from ..errors import InvalidMessage, InvalidURI
from ..sansio.client import ClientProtocol
from ..sansio.extensions import ClientExtensionFactory
from ..sansio.http11 import Headers, Response
from ..sansio.options import Options
from ..sansio.protocol import State
from .connection import Connection

__all__ = ["ClientConnection", "connect", "reconnect", "unix_connect", "unix_reconnect"]

_logger = logging.getLogger("rawws.client")


class ClientConnection(Connection):
    """A connection opened by :func:`connect`."""

    protocol: ClientProtocol


def connect(
    uri: str,
    *,
    sock: socket.socket | None = None,
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    origin: str | None = None,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    subprotocols: Sequence[str] | None = None,
    compression: str | None = "deflate",
    additional_headers: HeadersLike | None = None,
    user_agent_header: str | None = "rawws",
    proxy: str | bool | None = None,
    open_timeout: float | None = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    close_timeout: float = 10.0,
    max_size: int | tuple[int | None, int | None] | None = 2**20,
    max_queue: int | tuple[int | None, int | None] | None = 16,
    logger: logging.Logger | None = None,
    create_connection: type[ClientConnection] | None = None,
    **kwargs: Any,
) -> ClientConnection:
    """Connect to ``uri`` and perform the opening handshake; return the open connection.

    The arguments are websockets.sync's (``sock``, ``ssl``, ``server_hostname``, ``origin``,
    ``extensions``, ``subprotocols``, ``compression``, ``additional_headers``,
    ``user_agent_header``, the timeouts, ``max_size`` (or ``(message, frame)``),
    ``max_queue`` (or ``(high, low)``: rawws uses the high mark), ``logger``,
    ``create_connection``); other keyword arguments go to :func:`socket.create_connection`.
    Credentials in the URI are sent as HTTP Basic authentication. Raises
    :class:`~rawws.errors.InvalidStatus` when the server refuses (``.response``),
    ``TimeoutError`` after ``open_timeout``, ``OSError`` when the server cannot be reached.
    ``proxy`` exists for websockets' signature: rawws connects directly.
    """
    if isinstance(proxy, str):
        raise ValueError("rawws does not connect through proxies (proxy= must be None)")
    unix = kwargs.pop("unix", False)
    path = kwargs.pop("path", None)
    secure, host, port, resource = parse_uri(uri)
    if ssl is not None and not secure:
        raise InvalidURI(uri, "an SSL context needs a wss:// URI")
    if create_connection is not None and not issubclass(create_connection, ClientConnection):
        raise TypeError("create_connection must be a subclass of ClientConnection")
    headers = Headers(additional_headers)
    authorization = basic_authorization(uri)
    if authorization is not None and "Authorization" not in headers:
        headers["Authorization"] = authorization
    max_frame_size = None
    if isinstance(max_size, tuple):
        max_size, max_frame_size = max_size
    logger = logger or _logger
    protocol = ClientProtocol(
        host=host, port=port, resource=resource, secure=secure, origin=origin,
        subprotocols=subprotocols,
        extensions=list(extensions) if extensions is not None
        else default_extensions(compression),
        extra_headers=headers if len(headers) else None, user_agent=user_agent_header,
        options=Options(max_size=max_size, max_frame_size=max_frame_size), logger=logger)
    deadline = None if open_timeout is None else time.monotonic() + open_timeout

    def left() -> float | None:
        if deadline is None:
            return None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out during the opening handshake ({open_timeout} s)")
        return remaining

    opened = sock is None
    try:
        if sock is None:
            if unix:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(left())
                sock.connect(path)
            else:
                kwargs.setdefault("timeout", left())
                sock = socket.create_connection((host, port), **kwargs)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        sock.settimeout(left())
        if secure:
            context = ssl or ssl_module.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=server_hostname or host)
        leftover = _handshake(sock, protocol, left)
        sock.settimeout(None)
    except BaseException:
        if sock is not None and opened:
            sock.close()
        raise
    connection = (create_connection or ClientConnection)(
        sock, protocol, ping_interval=ping_interval, ping_timeout=ping_timeout,
        close_timeout=check_close_timeout(close_timeout), max_queue=high_water(max_queue),
        logger=logger)
    with connection._lock:
        connection._handle(leftover)  # frames that came with the 101
        connection._write_out()
    connection.start()
    return connection


def _handshake(sock: socket.socket, protocol: ClientProtocol,
               left: Callable[[], float | None]) -> list[Any]:
    """Send the upgrade request and read the response; return the events after it."""
    protocol.send_request(protocol.connect())
    sock.sendall(b"".join(protocol.data_to_send()))
    while True:
        sock.settimeout(left())
        try:
            data = sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("timed out during the opening handshake") from None
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
        events = protocol.events_received()
        if events and isinstance(events[0], Response):
            return events[1:]
        if protocol.state is State.CLOSED:
            failure = protocol.failure
            if failure is not None:
                raise failure
            error = InvalidMessage("the connection closed before the opening handshake "
                                   "completed")
            raise error from EOFError()


def unix_connect(path: str | None = None, uri: str | None = None,
                 **kwargs: Any) -> ClientConnection:
    """Like :func:`connect`, to a server on the Unix socket ``path`` (``uri`` defaults to
    ``ws://localhost/``, ``wss://localhost/`` with ``ssl``)."""
    if uri is None:
        uri = "ws://localhost/" if kwargs.get("ssl") is None else "wss://localhost/"
    return connect(uri, unix=True, path=path, **kwargs)


def reconnect(
    uri: str,
    *,
    process_exception: Callable[[Exception], Exception | None] = process_exception,
    reconnect_delays: Callable[[], Iterator[float]] | None = None,
    **kwargs: Any,
) -> Iterator[ClientConnection]:
    """Connect, yield the connection, close it when the loop body is done with it, and
    connect again (websockets.sync's ``reconnect``)::

        for ws in reconnect("ws://127.0.0.1:8765/"):
            try:
                for message in ws:
                    ...
            except ConnectionClosed:
                continue

    Failed attempts are retried after the same backoff as the asyncio client's while
    ``process_exception`` calls them transient (the same rule), and raised otherwise.
    """
    delays: Iterator[float] | None = None
    while True:
        try:
            connection = connect(uri, **kwargs)
        except Exception as exc:
            try:
                verdict = process_exception(exc)
            except Exception as raised:
                verdict = raised
            if verdict is exc:
                raise
            if verdict is not None:
                raise verdict from exc
            if delays is None:
                delays = reconnect_delays() if reconnect_delays is not None else _backoff()
            delay = next(delays)
            _logger.info("connect to %s failed: %s; retrying in %.1f s", uri, exc, delay)
            time.sleep(delay)
            continue
        delays = None
        with connection:
            yield connection


def _backoff() -> Iterator[float]:
    """The asyncio client's backoff: exponential, capped, each delay drawn in [d/2, d]."""
    delay = _async_connect.backoff_initial
    while True:
        yield delay * random.uniform(0.5, 1.0)
        delay = min(delay * _async_connect.backoff_factor, _async_connect.backoff_max)


def unix_reconnect(path: str | None = None, uri: str | None = None,
                   **kwargs: Any) -> Iterator[ClientConnection]:
    """Like :func:`reconnect`, on the Unix socket ``path``."""
    if uri is None:
        uri = "ws://localhost/" if kwargs.get("ssl") is None else "wss://localhost/"
    return reconnect(uri, unix=True, path=path, **kwargs)
