"""The asyncio WebSocket client: :func:`connect` and :class:`ClientConnection`.

Owns: ``ws://`` / ``wss://`` URIs; TCP and TLS connection; the client side of the opening
handshake bounded by ``open_timeout``; reconnection with exponential backoff and jitter
(``async for ws in connect(...)``).

Usage::

    async with rawws.connect("ws://127.0.0.1:8765/") as ws:
        await ws.send("Hello")
        print(await ws.recv())
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random as random_module
import ssl as ssl_module
import urllib.parse
from collections.abc import AsyncIterator, Generator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from ..errors import ConnectionClosed, InvalidHandshake, InvalidURI
from ..sansio.deflate import ClientPerMessageDeflateFactory
from ..sansio.extensions import ClientExtensionFactory
from ..sansio.http11 import Headers, Request, Response
from ..sansio.protocol import ClientProtocol
from .connection import Connection, Listener

__all__ = ["ClientConnection", "connect", "parse_uri", "unix_connect"]

HeadersLike = Headers | Mapping[str, str] | Iterable[tuple[str, str]]

_logger = logging.getLogger("rawws.client")


def parse_uri(uri: str) -> tuple[bool, str, int, str]:
    """Split a WebSocket URI (RFC 6455 §3) into ``(secure, host, port, resource)``."""
    try:
        parsed = urllib.parse.urlsplit(uri)
        port = parsed.port
    except ValueError as exc:
        raise InvalidURI(uri, str(exc)) from None
    if parsed.scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "scheme isn't ws or wss")
    if parsed.fragment:
        # §3: "Fragment identifiers are meaningless in the context of WebSocket URIs".
        raise InvalidURI(uri, "it has a fragment")
    if not parsed.hostname:
        raise InvalidURI(uri, "it has no host")
    secure = parsed.scheme == "wss"
    resource = parsed.path or "/"
    if parsed.query:
        resource += "?" + parsed.query
    return secure, parsed.hostname, port or (443 if secure else 80), resource


def _default_extensions(compression: str | None) -> list[ClientExtensionFactory]:
    if compression is None:
        return []
    if compression != "deflate":
        raise ValueError(f"unsupported compression: {compression!r} (use 'deflate' or None)")
    return [ClientPerMessageDeflateFactory()]


class ClientConnection(Connection):
    """A connection opened by :func:`connect`."""

    __slots__ = ()

    protocol: ClientProtocol

    def __init__(self, protocol: ClientProtocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self._opener = self.loop.create_future()  # connect() waits on it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def _handle_handshake_event(self, event: Request | Response) -> None:
        self._on_open()


class connect:
    """Open a WebSocket connection to ``uri``.

    ``await connect(uri)`` returns a :class:`ClientConnection`; ``async with connect(uri) as
    ws`` also closes it on exit; ``async for ws in connect(uri)`` reconnects with exponential
    backoff and jitter whenever the connection fails or closes abnormally.

    Options: ``ssl`` (an :class:`ssl.SSLContext`; ``wss://`` uses a default context),
    ``server_hostname``, ``origin``, ``subprotocols``, ``additional_headers`` (a mapping or
    ``(name, value)`` pairs; ``extra_headers`` is the same), ``compression`` (``"deflate"`` or
    ``None``), ``max_size``, ``max_frame_size``, ``max_queue``, ``write_limit``,
    ``ping_interval``, ``ping_timeout``, ``open_timeout``, ``close_timeout``,
    ``user_agent_header`` (``user_agent`` is the same), ``listener`` (callback API), ``host`` /
    ``port`` / ``sock`` (connect elsewhere than the URI says), ``logger``. Credentials in the
    URI (``ws://user:pass@host/``) are sent as HTTP Basic authentication. ``proxy`` exists for
    websockets' signature: rawws connects directly and refuses a proxy URL.
    """

    #: Reconnection backoff (seconds): initial delay, factor, maximum.
    backoff_initial = 0.5
    backoff_factor = 1.6
    backoff_max = 30.0

    def __init__(
        self,
        uri: str,
        *,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        additional_headers: HeadersLike | None = None,
        extra_headers: HeadersLike | None = None,
        compression: str | None = "deflate",
        extensions: Sequence[ClientExtensionFactory] | None = None,
        max_size: int | None = 2**20,
        max_frame_size: int | None = None,
        max_queue: int | None = 16,
        write_limit: int = 2**16,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        open_timeout: float | None = 10.0,
        close_timeout: float = 10.0,
        user_agent_header: str | None = "rawws",
        user_agent: str | None = None,
        proxy: str | bool | None = None,
        listener: Listener | None = None,
        host: str | None = None,
        port: int | None = None,
        sock: Any = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.uri = uri
        self.secure, self.uri_host, self.uri_port, self.resource = parse_uri(uri)
        if isinstance(proxy, str):
            raise ValueError("rawws does not connect through proxies (proxy= must be None)")
        if additional_headers is not None and extra_headers is not None:
            raise TypeError("give additional_headers or extra_headers (the same), not both")
        headers = Headers(additional_headers if additional_headers is not None
                          else extra_headers)
        userinfo = urllib.parse.urlsplit(uri)
        if userinfo.username is not None and "Authorization" not in headers:
            # As websockets: credentials in the URI become HTTP Basic authentication.
            credentials = f"{urllib.parse.unquote(userinfo.username)}:" \
                f"{urllib.parse.unquote(userinfo.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        if ssl is None and self.secure:
            ssl = ssl_module.create_default_context()
        if ssl is not None and not self.secure:
            raise InvalidURI(uri, "an SSL context needs a wss:// URI")
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.origin = origin
        self.subprotocols = subprotocols
        self.extra_headers = headers if len(headers) else None
        self.extensions = (list(extensions) if extensions is not None
                           else _default_extensions(compression))
        self.max_size = max_size
        self.max_frame_size = max_frame_size
        self.max_queue = max_queue
        self.write_limit = write_limit
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout
        self.user_agent = user_agent if user_agent is not None else user_agent_header
        self.listener = listener
        self.host = host
        self.port = port
        self.sock = sock
        self.unix = False  # unix_connect() sets these
        self.unix_path: str | None = None
        self.logger = logger or _logger
        self.connection: ClientConnection | None = None

    async def _connect(self) -> ClientConnection:
        protocol = ClientProtocol(
            host=self.uri_host,
            port=self.uri_port,
            resource=self.resource,
            secure=self.secure,
            origin=self.origin,
            subprotocols=self.subprotocols,
            extensions=self.extensions,
            extra_headers=self.extra_headers,
            user_agent=self.user_agent,
            max_size=self.max_size,
            max_frame_size=self.max_frame_size,
            logger=self.logger,
        )
        connection = ClientConnection(
            protocol,
            listener=self.listener,
            max_queue=self.max_queue,
            write_limit=self.write_limit,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
            logger=self.logger,
        )
        loop = asyncio.get_running_loop()
        kwargs: dict[str, Any] = {}
        if self.ssl is not None:
            kwargs["ssl"] = self.ssl
            kwargs["server_hostname"] = self.server_hostname or self.uri_host
        try:
            async with asyncio.timeout(self.open_timeout):
                if self.unix:
                    await loop.create_unix_connection(lambda: connection, self.unix_path,
                                                      sock=self.sock, **kwargs)
                elif self.sock is not None:
                    await loop.create_connection(lambda: connection, sock=self.sock, **kwargs)
                else:
                    await loop.create_connection(
                        lambda: connection, self.host or self.uri_host,
                        self.port or self.uri_port, **kwargs)
                assert connection._opener is not None
                await asyncio.shield(connection._opener)
        except BaseException:
            if connection.transport is not None:
                connection.transport.abort()
            raise
        self.connection = connection
        return connection

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._connect().__await__()

    async def __aenter__(self) -> ClientConnection:
        return await self._connect()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.connection is not None:
            await self.connection.__aexit__(exc_type, exc, tb)

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        """Connect, yield the connection, and connect again after it ends (backoff + jitter).

        Handshake rejections with a 4xx status other than 408/429 are not retried: they raise.
        """
        delay = self.backoff_initial
        while True:
            try:
                connection = await self._connect()
            except InvalidHandshake as exc:
                status = getattr(exc, "status_code", None)
                if status is not None and 400 <= status < 500 and status not in (408, 429):
                    raise
                self.logger.info("connect to %s failed: %s; retrying", self.uri, exc)
            except (TimeoutError, OSError, ConnectionClosed) as exc:
                # ConnectionClosed: the server closed TCP before answering the handshake.
                self.logger.info("connect to %s failed: %s; retrying", self.uri, exc)
            else:
                delay = self.backoff_initial
                try:
                    yield connection
                finally:
                    if connection.transport is not None:
                        await connection.close()
                continue
            await asyncio.sleep(delay * random_module.uniform(0.5, 1.0))
            delay = min(delay * self.backoff_factor, self.backoff_max)


def unix_connect(path: str | None = None, uri: str | None = None, **kwargs: Any) -> connect:
    """Like :func:`connect`, to a server on the Unix socket ``path``. ``uri`` (default
    ``ws://localhost/``, ``wss://localhost/`` with ``ssl``) gives the Host header, the
    resource and whether to use TLS."""
    if uri is None:
        uri = "ws://localhost/" if kwargs.get("ssl") is None else "wss://localhost/"
    client = connect(uri, **kwargs)
    client.unix, client.unix_path = True, path
    return client
