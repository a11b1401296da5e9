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
import logging
import random as random_module
import ssl as ssl_module
import urllib.parse
from collections.abc import (
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, cast

from ..errors import (
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    SecurityError,
)
from ..redact import redact_target
from ..sansio.client import ClientProtocol
from ..sansio.deflate import ClientPerMessageDeflateFactory
from ..sansio.extensions import ClientExtensionFactory
from ..sansio.http11 import Headers, Request, Response
from ..sansio.options import DEFAULT_OPTIONS as _DEFAULTS
from ..sansio.options import Options
from ..sansio.reader import Tracer
from .arguments import basic_authorization, check_close_timeout, high_water
from .connection import Connection, Listener

__all__ = ["ClientConnection", "connect", "parse_uri", "process_exception", "unix_connect"]

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


def default_extensions(compression: str | None) -> list[ClientExtensionFactory]:
    if compression is None:
        return []
    if compression != "deflate":
        raise ValueError(f"unsupported compression: {compression!r} (use 'deflate' or None)")
    return [ClientPerMessageDeflateFactory()]


class ClientConnection(Connection):
    """A connection opened by :func:`connect`."""

    __slots__ = ()

    protocol: ClientProtocol

    def __init__(self, protocol: ClientProtocol, *, listener: Listener | None = None,
                 options: Options = _DEFAULTS, logger: logging.Logger | None = None) -> None:
        super().__init__(protocol, listener=listener, options=options, logger=logger)
        self.wait_open()  # made now: the handshake may fail before connect() waits on it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def _handle_handshake_event(self, event: Request | Response) -> None:
        self._on_open()


def process_exception(exc: Exception) -> Exception | None:
    """Whether ``async for ws in connect(...)`` retries after ``exc`` (``None``) or raises it.

    As websockets: network errors (``OSError``, ``TimeoutError``), a connection closed before
    the response (:class:`~rawws.errors.InvalidMessage` caused by ``EOFError``) and HTTP 500,
    502, 503, 504 are retried; rawws also retries 408 and 429 (the server asks to come back
    later). Anything else (a 403, a bad handshake response) is raised: retrying would get the
    same answer.
    """
    if isinstance(exc, (OSError, TimeoutError)):
        return None
    if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, EOFError):
        return None
    if isinstance(exc, InvalidStatus) and exc.status_code in _RETRY_STATUSES:
        return None
    return exc


_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({300, 301, 302, 303, 307, 308})
#: As websockets: a chain of redirects longer than this fails.
MAX_REDIRECTS = 10


class connect:
    """Open a WebSocket connection to ``uri``.

    ``await connect(uri)`` returns a :class:`ClientConnection`; ``async with connect(uri) as
    ws`` also closes it on exit (1011 if the block raised); ``async for ws in connect(uri)``
    connects again whenever the body of the loop is done with a connection or an attempt fails
    with an error that :func:`process_exception` (or your ``process_exception``) calls
    transient, after an exponential backoff with jitter (``reconnect_delays``, a function
    returning an iterator of delays, replaces it). Redirects (3xx with ``Location``) are
    followed, at most 10, never from ``wss://`` to ``ws://``; credentials are not sent to
    another origin.

    Options, as websockets names them: ``origin``, ``extensions``, ``subprotocols``,
    ``compression`` (``"deflate"`` or ``None``), ``additional_headers`` (a mapping or
    ``(name, value)`` pairs; rawws' ``extra_headers`` is the same), ``user_agent_header``
    (``user_agent``), ``open_timeout``, ``ping_interval``, ``ping_timeout``, ``close_timeout``,
    ``max_size`` (or ``(max_message_size, max_frame_size)``), ``max_queue`` and
    ``write_limit`` (or their ``(high, low)`` pairs: rawws uses the high mark),
    ``process_exception``, ``reconnect_delays``, ``logger``, ``create_connection``; other
    keyword arguments go to ``loop.create_connection`` (``ssl`` (an
    :class:`ssl.SSLContext`, or ``True``; ``wss://`` uses a default context),
    ``server_hostname``, ``sock``, ``host`` / ``port`` to connect elsewhere than the URI
    says, ``local_addr``...). rawws' own: ``max_frame_size``, ``listener`` (the callback
    API). Credentials in the URI (``ws://user:pass@host/``) are sent as HTTP Basic
    authentication. ``proxy`` exists for websockets' signature: rawws connects directly and
    refuses a proxy URL.
    """

    #: Reconnection backoff (seconds): initial delay, factor, maximum; each delay is drawn
    #: in [delay / 2, delay] (jitter). websockets waits 0-5 s, then 3.1 s growing to 90 s.
    backoff_initial = 0.5
    backoff_factor = 1.6
    backoff_max = 30.0

    def __init__(
        self,
        uri: str,
        *,
        origin: str | None = None,
        extensions: Sequence[ClientExtensionFactory] | None = None,
        subprotocols: Sequence[str] | None = None,
        compression: str | None = _DEFAULTS.compression,
        additional_headers: HeadersLike | None = None,
        extra_headers: HeadersLike | None = None,
        user_agent_header: str | None = "rawws",
        user_agent: str | None = None,
        proxy: str | bool | None = None,
        process_exception: Callable[[Exception], Exception | None] = process_exception,
        open_timeout: float | None = _DEFAULTS.open_timeout,
        ping_interval: float | None = _DEFAULTS.ping_interval,
        ping_timeout: float | None = _DEFAULTS.ping_timeout,
        close_timeout: float = _DEFAULTS.close_timeout,
        reconnect_delays: Callable[[], Iterator[float]] | None = None,
        max_size: int | tuple[int | None, int | None] | None = _DEFAULTS.max_size,
        max_frame_size: int | None = _DEFAULTS.max_frame_size,
        max_queue: int | tuple[int | None, int | None] | None = _DEFAULTS.max_queue,
        write_limit: int | tuple[int, int | None] = _DEFAULTS.write_limit,
        logger: logging.Logger | None = None,
        tracer: Tracer | None = None,
        create_connection: type[ClientConnection] | None = None,
        listener: Listener | None = None,
        ssl: ssl_module.SSLContext | bool | None = None,
        server_hostname: str | None = None,
        host: str | None = None,
        port: int | None = None,
        sock: Any = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(proxy, str):
            raise ValueError("rawws does not connect through proxies (proxy= must be None)")
        if additional_headers is not None and extra_headers is not None:
            raise TypeError("give additional_headers or extra_headers (the same), not both")
        if create_connection is not None and not issubclass(create_connection,
                                                            ClientConnection):
            raise TypeError("create_connection must be a subclass of ClientConnection")
        self._headers = Headers(additional_headers if additional_headers is not None
                                else extra_headers)
        self._set_uri(uri)
        if ssl is not None and ssl is not False and not self.secure:
            raise InvalidURI(uri, "an SSL context needs a wss:// URI")
        self.ssl_option = ssl
        self.server_hostname = server_hostname
        self.origin = origin
        self.subprotocols = subprotocols
        self.extensions = (list(extensions) if extensions is not None
                           else default_extensions(compression))
        if isinstance(max_size, tuple):
            max_size, max_frame_size = max_size  # websockets' (message, frame)
        #: The options of the connection (and of every reconnection), built once.
        self.options = Options(
            max_size=max_size, max_frame_size=max_frame_size, max_queue=high_water(max_queue),
            write_limit=cast(int, high_water(write_limit)), open_timeout=open_timeout,
            ping_interval=ping_interval, ping_timeout=ping_timeout,
            close_timeout=check_close_timeout(close_timeout), compression=compression)
        self.user_agent = user_agent if user_agent is not None else user_agent_header
        self.process_exception = process_exception
        self.reconnect_delays = reconnect_delays
        self.create_connection = create_connection or ClientConnection
        self.listener = listener
        self.host = host
        self.port = port
        self.sock = sock
        self.create_connection_kwargs = kwargs
        self.unix = False  # unix_connect() sets these
        self.unix_path: str | None = None
        self.logger = logger or _logger
        self.tracer = tracer
        self.connection: ClientConnection | None = None

    def _set_uri(self, uri: str) -> None:
        """Aim at ``uri`` (at first, and after a redirect)."""
        self.uri = uri
        self.secure, self.uri_host, self.uri_port, self.resource = parse_uri(uri)
        self.extra_headers: Headers | None = self._headers.copy()
        authorization = basic_authorization(uri)
        if authorization is not None and "Authorization" not in self._headers:
            # As websockets: credentials in the URI become HTTP Basic authentication.
            self.extra_headers["Authorization"] = authorization
        if not len(self.extra_headers):
            self.extra_headers = None

    @property
    def ssl(self) -> ssl_module.SSLContext | None:
        """The TLS context for this URI (``wss://``: a default one unless given)."""
        option = self.ssl_option
        if not self.secure:
            return None
        if isinstance(option, ssl_module.SSLContext):
            return option
        if option is None or option is True:
            return ssl_module.create_default_context()
        raise ValueError("ssl=False is incompatible with a wss:// URI")

    async def _open(self) -> ClientConnection:
        """One attempt: TCP (or Unix socket), TLS, the opening handshake."""
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
            options=self.options,
            logger=self.logger,
            tracer=self.tracer,
        )
        connection = self.create_connection(protocol, listener=self.listener,
                                            options=self.options, logger=self.logger)
        loop = asyncio.get_running_loop()
        kwargs: dict[str, Any] = dict(self.create_connection_kwargs)
        context = self.ssl
        if context is not None:
            kwargs["ssl"] = context
            kwargs["server_hostname"] = self.server_hostname or self.uri_host
        try:
            if self.unix:
                await loop.create_unix_connection(lambda: connection, self.unix_path,
                                                  sock=self.sock, **kwargs)
            elif self.sock is not None:
                await loop.create_connection(lambda: connection, sock=self.sock, **kwargs)
            else:
                await loop.create_connection(
                    lambda: connection, self.host or self.uri_host,
                    self.port or self.uri_port, **kwargs)
            await asyncio.shield(connection.wait_open())
        except BaseException:
            if connection.transport is not None:
                connection.transport.abort()
            raise
        return connection

    def _redirect(self, exc: InvalidStatus) -> str:
        """The URI a 3xx answer sends us to, or raise why it may not be followed."""
        location: str | None = exc.response.headers.get("Location")
        if location is None:
            raise exc
        target = urllib.parse.urljoin(self.uri, location)
        try:
            secure, host, port, _ = parse_uri(target)
        except InvalidURI:
            raise InvalidHandshake(f"redirect to {target!r}, not a WebSocket URI") from exc
        if self.secure and not secure:
            raise SecurityError(f"cannot follow redirect to non-secure URI {target}") from exc
        if self.sock is not None:
            raise ValueError(f"cannot follow redirect to {target} with a preexisting "
                             "socket") from exc
        if (secure, host, port) != (self.secure, self.uri_host, self.uri_port):
            if self.unix or self.host is not None or self.port is not None:
                raise ValueError(f"cannot follow cross-origin redirect to {target} with an "
                                 "explicit socket path, host or port") from exc
            # Credentials never go to another origin.
            for name in ("Authorization", "Cookie", "Proxy-Authorization"):
                del self._headers[name]
        return target

    async def _connect(self) -> ClientConnection:
        try:
            async with asyncio.timeout(self.options.open_timeout):
                for _ in range(MAX_REDIRECTS + 1):
                    try:
                        connection = await self._open()
                    except InvalidStatus as exc:
                        if exc.status_code not in _REDIRECT_STATUSES:
                            raise
                        target = self._redirect(exc)
                        self.logger.info("redirected from %s to %s", redact_target(self.uri),
                                         redact_target(target))
                        self._set_uri(target)
                        continue
                    self.connection = connection
                    return connection
                raise SecurityError(f"more than {MAX_REDIRECTS} redirects")
        except TimeoutError as exc:
            if exc.args:
                raise
            raise TimeoutError("timed out during the opening handshake "
                               f"({self.options.open_timeout} s)") from exc

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._connect().__await__()

    async def __aenter__(self) -> ClientConnection:
        return await self._connect()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.connection is not None:
            await self.connection.__aexit__(exc_type, exc, tb)

    def _backoff(self) -> Iterator[float]:
        if self.reconnect_delays is not None:
            yield from self.reconnect_delays()
            return
        delay = self.backoff_initial
        while True:
            yield delay * random_module.uniform(0.5, 1.0)
            delay = min(delay * self.backoff_factor, self.backoff_max)

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        """Connect, yield the connection, close it when the loop body is done with it, and
        connect again; failed attempts are retried after a backoff while
        ``process_exception`` calls them transient, and raised otherwise."""
        delays: Iterator[float] | None = None
        while True:
            try:
                connection = await self._connect()
            except Exception as exc:
                try:
                    verdict = self.process_exception(exc)
                except Exception as raised:  # raising instead of returning: same meaning
                    verdict = raised
                if verdict is exc:
                    raise
                if verdict is not None:
                    raise verdict from exc
                if delays is None:
                    delays = self._backoff()
                delay = next(delays)
                self.logger.info("connect to %s failed: %s; retrying in %.1f s",
                                 redact_target(self.uri), exc, delay)
                await asyncio.sleep(delay)
                continue
            delays = None  # a connection opened: the next failure starts the backoff again
            try:
                yield connection
            finally:
                if connection.transport is not None:
                    await connection.close()


def unix_connect(path: str | None = None, uri: str | None = None, **kwargs: Any) -> connect:
    """Like :func:`connect`, to a server on the Unix socket ``path``. ``uri`` (default
    ``ws://localhost/``, ``wss://localhost/`` with ``ssl``) gives the Host header, the
    resource and whether to use TLS."""
    if uri is None:
        uri = "ws://localhost/" if kwargs.get("ssl") is None else "wss://localhost/"
    client = connect(uri, **kwargs)
    client.unix, client.unix_path = True, path
    return client
