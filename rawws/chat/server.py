"""``ChatServer``: one process serving WebSocket chat and notifications, the HTTP API and the
demo page on one port, with the in-memory store by default.

Owns: building the parts from a :class:`ChatConfig` (authenticator, store, router, hub, HTTP
API) and handing them to ``rawws.serve`` (the hub as a ``Listener``, its ``process_request``
hook, the API as ``http_handler``). Everything else lives in the parts.

Usage::

    async with ChatServer(ChatConfig(port=0)) as server:
        print(server.url)            # ws://127.0.0.1:PORT
        await server.serve_forever()
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import rawws
from rawws.redact import RedactingFilter
from rawws.tls import server_context
from rawws.wirelog import Tracing

from .auth import Authenticator, JWTVerifier, StaticTokens
from .broker import BrokerConfig, parse_broker_url
from .hosts import HostPolicy, ProxyPolicy, parse_host
from .httpapi import COMMON_HEADERS, HttpApi, json_response
from .hub import ChatHub, SlowConsumerPolicy, ip_of
from .inspector import Inspector
from .limits import Limits
from .metrics import Metrics
from .router import Router
from .sqlite_store import SqliteStore, parse_store_spec
from .store import MemoryStore, Store

__all__ = ["DEFAULT_STATIC_DIR", "MIN_SECRET_BYTES", "ChatConfig", "ChatServer",
           "deflate_extensions"]

DEFAULT_STATIC_DIR: Final = Path(__file__).resolve().parent / "static"

_logger = logging.getLogger("rawws.chat.server")
_ws_logger = logging.getLogger("rawws.chat.ws")
_ws_logger.addFilter(RedactingFilter())

#: Below this many bytes a JWT secret starts the server with a warning (RFC 7518 §3.2).
MIN_SECRET_BYTES: Final = 32


@dataclass(frozen=True, kw_only=True)
class ChatConfig:
    """Everything ``python -m rawws serve`` can set. Auth is off unless a secret or tokens are
    given. The HTTP API: with ``api_key``, callers need it (or a user token); without, it is
    open while auth is off and closed (401) while auth is on, unless ``open_api``.

    Fail closed: an empty secret, an empty API key, an empty tokens table are errors
    (``ValueError`` from :class:`ChatServer`), never "auth off"."""

    host: str = "127.0.0.1"
    port: int = 8765
    limits: Limits = field(default_factory=Limits)
    jwt_secret: str | None = None
    jwt_algorithms: tuple[str, ...] = ("HS256", "HS384", "HS512")
    jwt_leeway: float = 30.0
    tokens_file: str | None = None
    static_tokens: Mapping[str, str] | None = None
    api_key: str | None = None
    #: With auth on and no ``api_key``, the HTTP API answers 401; True opens it to anyone
    #: (logged as a warning at start). See docs/security.md, "The HTTP API".
    open_api: bool = False
    #: Origins allowed to open WebSockets (``"*"``: any). None: the page's own origin only.
    #: Requests without an Origin header (non-browser clients) are always allowed.
    allowed_origins: tuple[str, ...] | None = None
    #: ``Host`` names answered (others: 421; DNS rebinding). None: derived from ``host`` and
    #: ``allowed_origins`` (:class:`rawws.chat.hosts.HostPolicy`); ``("*",)``: any.
    allowed_hosts: tuple[str, ...] | None = None
    #: Peers (addresses or networks) whose ``X-Forwarded-For`` is believed for rate limits and
    #: per-address caps. Empty: the header is ignored.
    trusted_proxies: tuple[str, ...] = ()
    #: TLS without a proxy (:func:`rawws.tls.server_context`): the certificate chain (PEM),
    #: its key when not in the same file, and CAs that client certificates must chain to
    #: (then required).
    certfile: str | None = None
    keyfile: str | None = None
    ca_certs: str | None = None
    slow_consumer: SlowConsumerPolicy = "close"
    #: Seconds between the 1013 close of a reader whose queue overflowed and dropping its TCP
    #: connection (a stalled reader never reads the close frame; close_timeout is far longer).
    slow_consumer_grace: float = 1.0
    client_publish: bool = True
    static_dir: Path | None = DEFAULT_STATIC_DIR
    #: "deflate" (the default): negotiate permessage-deflate without context takeover either
    #: way (:func:`deflate_extensions`), so that fan-out compresses each message once for
    #: every compressed recipient. None: no compression. See docs/chat.md, "Compression".
    compression: str | None = "deflate"
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 10.0
    #: Seconds from SIGTERM / :meth:`ChatServer.close` until connections still open (readers
    #: that never read their 1001) are aborted and the server is closed.
    shutdown_timeout: float = 5.0
    write_limit: int = 64 * 1024
    #: Where history, offline inboxes and idempotency keys live: "memory" (lost at exit) or
    #: "sqlite:PATH" (durable; docs/chat.md, "Durability").
    store: str = "memory"
    #: Seconds between two calls of the store's background work (age retention, expiry).
    maintenance_interval: float = 1.0
    #: ``redis://HOST:PORT/DB``: serve as one node of a cluster sharing that Redis (its
    #: store, rooms, presence and topics; docs/scaling.md). None: a single process.
    broker: str | None = None
    #: Listen with SO_REUSEPORT (a worker of ``rawws serve --workers N``).
    reuse_port: bool = False


class ChatServer:
    """The chat-and-notify server. ``await server.start()`` or ``async with``."""

    def __init__(
        self,
        config: ChatConfig | None = None,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        tracing: Tracing | None = None,
    ) -> None:
        self.config = config = config or ChatConfig()
        #: ``rawws serve --trace``: every connection's frames to a wire log (rawws.wirelog).
        self.tracing = tracing
        #: The live frame inspector: connections opened with ?inspect=1 see their own frames.
        self.inspector = Inspector()
        limits = config.limits
        self.metrics = Metrics()
        self._wall = wall
        #: The parsed broker URL (None without one) and this node's id in the cluster.
        self.broker = parse_broker_url(config.broker) if config.broker is not None else None
        self.store: Store = store if store is not None else _open_store(config, wall,
                                                                         self.broker)
        self.node: str | None = getattr(self.store, "node", None)
        if isinstance(self.store, SqliteStore):
            self.store.register_metrics(self.metrics)
        if isinstance(self.store, MemoryStore):
            memory = self.store
            self.metrics.dropped_source(lambda: {"inbox_full": memory.inbox_dropped,
                                                 "inbox_expired": memory.inbox_expired})
            self.metrics.gauge("history_bytes", "Memory charged to the history budget "
                               "(encoded messages plus per-entry overhead).",
                               lambda: memory.history_bytes)
            self.metrics.gauge("inbox_bytes", "Memory charged to the offline-inbox budget "
                               "(encoded items plus per-entry overhead).",
                               lambda: memory.inbox_bytes)
        self.authenticator = _authenticator(config, wall)
        self.router = Router(store=self.store, limits=limits, authenticator=self.authenticator,
                             metrics=self.metrics, client_publish=config.client_publish,
                             clock=clock, wall=wall)
        deflate_extensions(config.compression)  # refuse an unknown value before binding
        if not config.shutdown_timeout >= 0:
            raise ValueError(f"shutdown timeout must be >= 0, not {config.shutdown_timeout!r}")
        self.hub = ChatHub(self.router, allowed_origins=config.allowed_origins,
                           slow_consumer=config.slow_consumer,
                           slow_consumer_grace=config.slow_consumer_grace,
                           write_limit=config.write_limit, wall=wall)
        self.cluster: Any = None  # a rawws.chat.bus.ClusterNode with a broker
        if self.broker is not None:
            from .bus import ClusterNode  # only with --broker (it needs the redis extra)
            self.cluster = ClusterNode(self.store, self.router, self.hub,  # type: ignore[arg-type]
                                       self.metrics)
        self.ssl = server_context(certfile=config.certfile, keyfile=config.keyfile,
                                  ca_certs=config.ca_certs)
        self.hosts = HostPolicy(config.allowed_hosts, bind_host=config.host,
                                origins=config.allowed_origins)
        self.proxies = ProxyPolicy(config.trusted_proxies)
        self.api = HttpApi(self.router, deliver=self.hub.execute, after=self.hub.when_released,
                           health=self._health, api_key=config.api_key,
                           open_api=config.open_api, static_dir=config.static_dir,
                           limits=limits, clock=clock)
        self._server: rawws.Server | None = None
        self._maintenance: asyncio.TimerHandle | None = None

    def warnings(self) -> list[str]:
        """What is risky in this configuration (logged at start, printed by ``rawws serve``)."""
        config = self.config
        found = []
        if config.jwt_secret is not None:
            size = len(config.jwt_secret.encode("utf-8"))
            if size < MIN_SECRET_BYTES:
                found.append(f"the JWT secret is {size} bytes: use at least {MIN_SECRET_BYTES} "
                             "random bytes (RFC 7518 §3.2: a key as long as the hash), or "
                             "anyone who guesses it mints tokens")
        if self.authenticator is None and not _is_loopback(config.host):
            found.append(f"auth is off and the server listens on {config.host or 'every'} "
                         "interface(s): anyone who reaches it may claim any user name"
                         + ("" if config.api_key is not None else " and use the HTTP API"))
        if config.open_api and self.authenticator is not None:
            found.append("--open-api: auth is on but the HTTP API is open to anyone who can "
                         "reach this port (notify, broadcast, publish, post, read history)")
        return found

    async def start(self) -> ChatServer:
        config = self.config
        limits = config.limits
        for warning in self.warnings():
            _logger.warning("%s", warning)
        connect = getattr(self.store, "connect", None)
        if connect is not None:
            await connect()  # a network store: loaded before the server listens
        self.store.start()
        self._schedule_maintenance()
        self._server = await rawws.serve(
            self.hub,
            config.host,
            config.port,
            ssl=self.ssl,
            process_request=self.inspector.wrap(self._process_request),
            process_response=(self.tracing.wrap(_secure_response) if self.tracing is not None
                              else _secure_response),
            http_handler=self._http,
            max_size=limits.max_message_size,
            max_body_size=limits.max_body_size,
            extensions=deflate_extensions(config.compression),
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            close_timeout=config.close_timeout,
            shutdown_timeout=config.shutdown_timeout,
            write_limit=config.write_limit,
            logger=_ws_logger,
            **({"reuse_port": True} if config.reuse_port else {}),
        )
        return self

    def _schedule_maintenance(self) -> None:
        loop = asyncio.get_running_loop()
        self._maintenance = loop.call_later(self.config.maintenance_interval, self._maintain)

    def _maintain(self) -> None:
        try:
            self.store.maintain(self._wall())
        except Exception:
            _logger.exception("store maintenance failed")
        self._schedule_maintenance()

    def _health(self) -> str | None:
        """Why the server cannot do its job (None: healthy): a store that refuses writes."""
        failure = getattr(self.store, "failure", None)
        return f"store: {failure}" if failure else None

    def _check_peer(self, ws: rawws.ServerConnection, request: rawws.Request
                    ) -> rawws.Response | None:
        """Before anything else, for upgrades and plain requests alike: the ``Host`` must be
        one this server answers for (400 if missing or invalid, 421 if another: DNS
        rebinding), and the client address to believe is settled (``trusted_proxies``)."""
        values = request.headers.get_all("Host")
        host = parse_host(values[0]) if len(values) == 1 else None
        if host is None:
            return json_response(400, {"error": "bad_request", "message": "expected one valid "
                                       "Host header (RFC 9112 §3.2)"})
        if not self.hosts.allows(host):
            return json_response(421, {"error": "misdirected", "message": "this server does "
                                       "not answer for that Host (see --allowed-host)"})
        if self.proxies:
            ws.user_data["client_ip"] = self.proxies.client_address(
                ip_of(ws), request.headers.get_all("X-Forwarded-For"))
        return None

    def _process_request(self, ws: rawws.ServerConnection, request: rawws.Request
                         ) -> rawws.Response | None:
        refused = self._check_peer(ws, request)
        if refused is not None:
            self.metrics.handshake_rejections["host"] += 1
            return refused
        return _secured(self.hub.process_request(ws, request))

    def _http(self, ws: rawws.ServerConnection,
              request: rawws.Request) -> rawws.Response | Awaitable[rawws.Response]:
        refused = self._check_peer(ws, request)
        if refused is not None:
            self.metrics.http_requests[refused.status] += 1
            return refused
        answer = self.api.handle(request.method, request.target, request.headers,
                                 request.body, client=ip_of(ws))
        if isinstance(answer, rawws.Response):
            return _secured(answer)
        return _secured_later(answer)  # answered once the write it made is durable

    @property
    def server(self) -> rawws.Server:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return self._server

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        """``ws://host:port`` or ``wss://`` with TLS (append ``/ws``, ``/ws/chat/ROOM`` or
        ``/ws/notifications``)."""
        scheme = "wss" if self.ssl is not None else "ws"
        return f"{scheme}://{_url_host(self.config.host)}:{self.port}"

    @property
    def http_url(self) -> str:
        scheme = "https" if self.ssl is not None else "http"
        return f"{scheme}://{_url_host(self.config.host)}:{self.port}"

    async def serve_forever(self) -> None:
        await self.server.serve_forever()

    async def close(self) -> None:
        """Close every connection with 1001, stop listening, and make every write durable
        (the store commits what is pending and closes its file)."""
        if self._maintenance is not None:
            self._maintenance.cancel()
            self._maintenance = None
        try:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
        finally:
            if self.cluster is not None:
                with contextlib.suppress(Exception):
                    await self.cluster.close()  # the other nodes drop this one's members now
            with contextlib.suppress(Exception):
                await self.store.close()

    async def __aenter__(self) -> ChatServer:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


def deflate_extensions(compression: str | None) -> list[rawws.ServerPerMessageDeflateFactory]:
    """The extensions ``rawws serve`` negotiates for ``ChatConfig.compression``.

    ``server_no_context_takeover``: every message is compressed from scratch, so connections
    with the same settings share a ``broadcast_key`` and ``rawws.broadcast`` compresses a room
    message once for all of them (with context takeover it would compress once per recipient
    and keep a compressor per connection). ``client_no_context_takeover``: the inflater is
    freed after each message instead of being kept (about 11 KiB) for every connection that
    ever sent one. docs/chat.md ("Compression") has the measurements.
    """
    if compression is None:
        return []
    if compression != "deflate":
        raise ValueError(f"compression must be 'deflate' or None, not {compression!r}")
    return [rawws.ServerPerMessageDeflateFactory(server_no_context_takeover=True,
                                                 client_no_context_takeover=True)]


_R = TypeVar("_R", rawws.Response, rawws.Response | None)


def _secured(response: _R) -> _R:
    """Every answer of the chat server carries ``X-Content-Type-Options: nosniff`` and
    ``Cache-Control: no-store`` (issue 11 item 14), whichever part built it."""
    if response is not None:
        for name, value in COMMON_HEADERS:
            if response.headers.get_all(name) != [value]:
                response.headers.replace(name, value)
    return response


def _secure_response(ws: rawws.ServerConnection, request: rawws.Request,
                     response: rawws.Response) -> rawws.Response:
    """The ``process_response`` hook: the handshake's answer, secured as every other."""
    return _secured(response)


async def _secured_later(pending: Awaitable[rawws.Response]) -> rawws.Response:
    return _secured(await pending)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _open_store(config: ChatConfig, wall: Callable[[], float],
                broker: BrokerConfig | None = None) -> Store:
    """The store ``config.store`` names (``ValueError``, one line, for a bad spec or path);
    with a broker, the Redis store."""
    if broker is not None:
        if config.store != "memory":
            raise ValueError("--store and --broker: with a broker the store is Redis (drop "
                             "--store)")
        try:
            from .redis_store import RedisStore  # redis-py: only with --broker
        except ImportError as exc:
            raise ValueError(f"--broker needs redis-py ({exc}): pip install 'rawws[redis]'"
                             ) from None
        return RedisStore(broker, config.limits, wall=wall)
    kind, path, options = parse_store_spec(config.store)
    if kind == "memory":
        return MemoryStore(config.limits)
    assert path is not None
    return SqliteStore(path, config.limits, wall=wall,
                       synchronous=options.get("synchronous", "full"))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _authenticator(config: ChatConfig, wall: Callable[[], float]) -> Authenticator | None:
    # "is not None", never truthiness: an empty secret or file name is a mistake to report,
    # not a reason to run with auth off.
    jwt = None
    if config.jwt_secret is not None:
        jwt = JWTVerifier(config.jwt_secret, algorithms=config.jwt_algorithms,
                          leeway=config.jwt_leeway, clock=wall)
    static = None
    if config.tokens_file is not None:
        if not config.tokens_file.strip():
            raise ValueError("the tokens file name is empty")
        try:
            static = StaticTokens.from_file(config.tokens_file)
        except ValueError as exc:
            raise ValueError(f"tokens file {config.tokens_file}: {exc}") from None
    elif config.static_tokens is not None:
        static = StaticTokens(config.static_tokens)
    if jwt is None and static is None:
        return None
    return Authenticator(jwt=jwt, static=static)
