"""``python -m rawws serve`` and ``python -m rawws chat``: the server and a terminal chat.

``rawws/__main__.py`` hands ``serve`` and ``chat`` (with the rest of the arguments) to
:func:`main_serve` and :func:`main_chat`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from ssl import SSLContext
from typing import Any

from rawws.commands import DefaultsHelpFormatter, OneLineParser
from rawws.redact import RedactingFilter
from rawws.tls import TLSConfigError, add_client_flags, add_server_flags, client_context
from rawws.wirelog import Tracing, add_trace_flags

from .auth import ALGORITHMS
from .broker import BrokerConfigError, parse_broker_url
from .client import ChatClient, ChatError
from .limits import Limits, add_limit_arguments, limit_arguments
from .server import ChatConfig, ChatServer
from .workers import Supervisor, watch_supervisor, worker_count

__all__ = ["format_event", "main_chat", "main_serve"]


# --- serve -------------------------------------------------------------------------------------


def _serve_parser() -> argparse.ArgumentParser:
    config = ChatConfig()
    defaults = config.limits
    p = OneLineParser(
        prog="python -m rawws serve", formatter_class=DefaultsHelpFormatter,
        description="The rawws chat-and-notify server: WebSocket chat, topics and personal "
                    "notifications, an HTTP API and the demo page, on one port.")
    p.add_argument("--host", default=config.host,
                   help=f"address to bind (default {config.host})")
    p.add_argument("--port", type=int, default=config.port,
                   help=f"port (default {config.port}; 0: any free)")
    auth = p.add_argument_group("auth (off unless a JWT secret or a tokens file is given)")
    auth.add_argument("--jwt-secret", default=os.environ.get("RAWWS_JWT_SECRET"),
                      help="HMAC secret for JWTs (default: $RAWWS_JWT_SECRET)")
    auth.add_argument("--jwt-alg", action="append", choices=list(ALGORITHMS),
                      help="accepted JWT algorithm (repeatable; default all three)")
    auth.add_argument("--tokens", metavar="FILE",
                      help="static tokens file: one 'TOKEN USER' per line (or a JSON object)")
    auth.add_argument("--api-key", default=os.environ.get("RAWWS_API_KEY"),
                      help="require 'Authorization: Bearer KEY' on /api/* "
                           "(default: $RAWWS_API_KEY). With auth on and no key, /api/* is "
                           "closed (401)")
    auth.add_argument("--open-api", action="store_true",
                      help="with auth on and no --api-key, open /api/* to anyone anyway "
                           "(logged as a warning)")
    web = p.add_argument_group("browsers")
    web.add_argument("--allow-origin", action="append", metavar="ORIGIN",
                     help="origin allowed to open WebSockets (repeatable; '*' for any; "
                          "default: the page's own origin)")
    web.add_argument("--allowed-host", action="append", metavar="NAME",
                     help="Host name this server answers for; any other Host gets 421 "
                          "(DNS rebinding). Repeatable; '*.example.com' for subdomains, '*' "
                          "for any. Default: the bind address, localhost names on loopback, "
                          "any IP address on 0.0.0.0, the hosts of --allow-origin")
    web.add_argument("--trusted-proxy", action="append", metavar="ADDR",
                     help="address or network (10.0.0.0/8) of a reverse proxy whose "
                          "X-Forwarded-For is believed for rate limits and per-address caps "
                          "(repeatable; default: none, the header is ignored)")
    web.add_argument("--static-dir", type=Path, default=config.static_dir,
                     help="directory served at / and /static/ (default: the demo page)")
    tls = p.add_argument_group("TLS (wss:// and https:// without a reverse proxy)")
    add_server_flags(tls)
    lim = p.add_argument_group("limits")
    lim.add_argument("--max-connections", type=int, default=defaults.max_connections)
    lim.add_argument("--max-connections-per-ip", type=int,
                     default=defaults.max_connections_per_ip)
    lim.add_argument("--max-message-size", type=int, default=defaults.max_message_size,
                     help="bytes; larger messages close the connection with 1009")
    lim.add_argument("--rate", type=float, default=defaults.rate,
                     help="messages per second per connection")
    lim.add_argument("--burst", type=float, default=defaults.burst)
    lim.add_argument("--history-size", type=int, default=defaults.history_size)
    lim.add_argument("--inbox-size", type=int, default=defaults.inbox_size)
    lim.add_argument("--inbox-ttl", type=float, default=defaults.inbox_ttl, help="seconds")
    lim.add_argument("--max-rooms", type=int, default=defaults.max_rooms)
    lim.add_argument("--max-queue", type=int, default=defaults.max_queue,
                     help="outbound messages queued for a slow reader")
    lim.add_argument("--slow-consumer", choices=["close", "drop-oldest"],
                     default=config.slow_consumer,
                     help="full outbound queue: close with 1013, or drop the oldest "
                          "notifications")
    grace = config.slow_consumer_grace
    lim.add_argument("--slow-consumer-grace", type=float, default=grace, metavar="SECONDS",
                     help="after that 1013 close, drop the TCP connection of a reader that "
                          f"has not read it within SECONDS (default {grace:g})")
    lim.add_argument("--http-rate", type=float, default=defaults.http_rate,
                     help="HTTP API requests per second per client address (0: no limit)")
    lim.add_argument("--http-burst", type=float, default=defaults.http_burst,
                     help="HTTP API requests per client address accepted at once")
    add_limit_arguments(lim)  # the flags declared in rawws/chat/limits.py
    p.add_argument("--no-client-publish", action="store_true",
                   help="WebSocket clients may not publish (the HTTP API still may)")
    p.add_argument("--compression", action=argparse.BooleanOptionalAction, default=True,
                   help="negotiate permessage-deflate without context takeover, compressed "
                        "once per fan-out (default: on; --no-compression turns it off)")
    p.add_argument("--shutdown-timeout", type=float, default=config.shutdown_timeout,
                   metavar="SECONDS",
                   help="on SIGTERM / Ctrl+C, close every connection with 1001 and abort those "
                        f"still open after SECONDS (default {config.shutdown_timeout:g})")
    p.add_argument("--store", default=config.store, metavar="memory|sqlite:PATH",
                   help="where room history, offline inboxes and idempotency keys live: "
                        "'memory' (the default: lost when the process ends) or 'sqlite:PATH' "
                        "(a SQLite file: a restart or a crash loses nothing acknowledged; "
                        "'?synchronous=normal' after PATH trades power-loss safety for speed)")
    scale = p.add_argument_group("several processes or hosts as one server (a cluster)")
    scale.add_argument("--broker", default=os.environ.get("RAWWS_REDIS_URL") or None,
                       metavar="redis://HOST:PORT/DB",
                       help="share rooms, presence, topics and the store with every process on "
                            "the same Redis (rediss:// for TLS; default: $RAWWS_REDIS_URL, "
                            "which keeps a password out of the process list). Needs the "
                            "redis extra: pip install 'rawws[redis]'")
    scale.add_argument("--workers", type=worker_count, default=1, metavar="N|auto",
                       help="N processes on this port (SO_REUSEPORT), restarted when they "
                            "die; 'auto': one per CPU. N > 1 needs --broker (default 1)")
    scale.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"],
                   help="debug includes the frame transcript (< received, > sent); tokens, "
                        "keys and Authorization headers are redacted at every level")
    p.add_argument("--debug", action="store_true",
                   help="log a transcript of every frame (= --log-level debug)")
    add_trace_flags(p)
    return p


def install_redaction() -> None:
    """The last line of defence for secrets: every handler of the root logger redacts every
    record (any logger, any level; :func:`rawws.redact.redact_text`)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def config_from_args(args: argparse.Namespace) -> ChatConfig:
    limits = Limits(
        max_connections=args.max_connections,
        max_connections_per_ip=args.max_connections_per_ip,
        max_message_size=args.max_message_size,
        rate=args.rate,
        burst=args.burst,
        history_size=args.history_size,
        inbox_size=args.inbox_size,
        inbox_ttl=args.inbox_ttl,
        max_rooms=args.max_rooms,
        max_queue=args.max_queue,
        http_rate=args.http_rate or None,
        http_burst=args.http_burst,
        **limit_arguments(args),
    )
    return ChatConfig(
        host=args.host,
        port=args.port,
        limits=limits,
        jwt_secret=args.jwt_secret,  # "" (flag or $RAWWS_JWT_SECRET set but empty): an error
        jwt_algorithms=tuple(args.jwt_alg) if args.jwt_alg else ChatConfig.jwt_algorithms,
        tokens_file=args.tokens,
        api_key=args.api_key,
        open_api=args.open_api,
        allowed_origins=tuple(args.allow_origin) if args.allow_origin else None,
        allowed_hosts=tuple(args.allowed_host) if args.allowed_host is not None else None,
        trusted_proxies=tuple(args.trusted_proxy or ()),
        slow_consumer=args.slow_consumer,
        slow_consumer_grace=args.slow_consumer_grace,
        client_publish=not args.no_client_publish,
        static_dir=args.static_dir,
        compression="deflate" if args.compression else None,
        shutdown_timeout=args.shutdown_timeout,
        certfile=args.certfile,
        keyfile=args.keyfile,
        ca_certs=args.ca_certs,
        store=args.store,
        broker=args.broker,
        reuse_port=args.worker_index is not None,
    )


async def _serve(server: ChatServer, ready: Callable[[ChatServer], None], *,
                 worker: bool = False) -> None:
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, request_stop)
    if worker:
        watch_supervisor(loop, stop)
    async with server:
        ready(server)
        await stop


def main_serve(argv: list[str]) -> int:
    args = _serve_parser().parse_args(argv)
    if args.debug:
        args.log_level = "debug"
    worker = "" if args.worker_index is None else f"worker-{args.worker_index} "
    logging.basicConfig(level=args.log_level.upper(),
                        format=f"%(asctime)s %(levelname)s {worker}%(name)s: %(message)s")
    install_redaction()
    if args.workers > 1:
        if not args.broker:
            print("rawws serve: --workers > 1 needs --broker redis://HOST:PORT/DB: without a "
                  "shared broker the workers would be separate servers behind one port",
                  file=sys.stderr)
            return 2
        try:
            config_from_args(args)  # refuse a bad configuration once, not in every worker
            parse_broker_url(args.broker)
        except ValueError as exc:
            print(f"rawws serve: {exc}", file=sys.stderr)
            return 2
        return Supervisor(argv, args.workers, host=args.host, port=args.port,
                          stop_timeout=args.shutdown_timeout).run()
    try:
        config = config_from_args(args)
        tracing = Tracing.from_flags(args.trace, args.trace_jsonl)
        # Built before binding: the configuration (tokens file, secret) is checked and the
        # store opened (a bad store path is refused here, with one line).
        server = ChatServer(config, tracing=tracing)
    except (OSError, ValueError) as exc:
        print(f"rawws serve: {exc}", file=sys.stderr)
        return 2

    def ready(server: ChatServer) -> None:
        auth = []
        if config.jwt_secret is not None:
            auth.append("JWT")
        if config.tokens_file is not None:
            auth.append("static tokens")
        if config.api_key is not None:
            api = "API key required (or a user token)" if auth else "API key required"
        elif auth:
            api = "open to anyone (--open-api)" if config.open_api else "closed (no --api-key)"
        else:
            api = "open (auth off)"
        print(f"rawws chat server on {server.http_url}  (WebSocket: {server.url}/ws, "
              f"{server.url}/ws/chat/ROOM, {server.url}/ws/notifications)", flush=True)
        print(f"auth: {' + '.join(auth) or 'off (use ?user_id=NAME)'}; HTTP API: {api}; "
              f"compression: {'permessage-deflate' if config.compression else 'off'}; "
              "Ctrl+C stops", flush=True)
        print(f"Host names answered: {server.hosts.describe()}"
              + (f"; X-Forwarded-For believed from {', '.join(config.trusted_proxies)}"
                 if config.trusted_proxies else ""), flush=True)
        store = config.store.partition("?")[0]
        if server.broker is not None:
            print(f"store and broker: Redis at {server.broker.display} (node "
                  f"{server.node}; acknowledged means in Redis)", flush=True)
        else:
            print("store: " + ("memory (history and offline inboxes end with the process)"
                               if store == "memory" else f"{store} (durable)"), flush=True)

    try:
        asyncio.run(_serve(server, ready, worker=args.worker_index is not None))
    except BrokerConfigError as exc:  # Redis cannot be used as configured (seen on connecting)
        print(f"rawws serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"rawws serve: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        if tracing is not None:
            tracing.close()
    return 0


# --- chat --------------------------------------------------------------------------------------

HELP = """commands:
  TEXT               send TEXT to the current room   (//TEXT sends a line starting with /)
  /join ROOM         join ROOM and make it current   /room ROOM   switch the current room
  /leave [ROOM]      leave ROOM (default: current)   /who         users in the current room
  /msg USER TEXT     private message                 /ping        round trip to the server
  /sub TOPIC...      subscribe (* one segment, # the rest)   /unsub TOPIC...
  /pub TOPIC TEXT    publish (TEXT is sent as JSON if it parses, else as a string)
  /quit              leave"""


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _clock(event: dict[str, Any]) -> str:
    stamp = event.get("timestamp")
    return stamp[11:19] if isinstance(stamp, str) and len(stamp) >= 19 else "--:--:--"


class ChatView:
    """What the terminal shows: one line (or none) per event."""

    def __init__(self) -> None:
        self.me: str | None = None
        self.users: dict[str, list[str]] = {}
        self.shown_history: set[str] = set()

    def format(self, event: dict[str, Any]) -> list[str]:
        kind = event.get("type")
        if kind == "welcome":
            self.me = event.get("user_id")
            waiting = event.get("offline_items")
            if type(waiting) is int and waiting > 0:
                return [f"= connected as {self.me}; {waiting} item"
                        f"{'' if waiting == 1 else 's'} waited for you"]
            return [f"= connected as {self.me}"]
        if kind == "disconnected":
            return [f"= connection lost ({event.get('code')}); reconnecting..."]
        if kind == "message":
            seq = event.get("seq")
            return [f"[{_clock(event)}] #{event.get('room')} {event.get('user_id')}: "
                    f"{_show(event.get('content'))}" + (f"  (seq {seq})" if seq else "")]
        if kind == "joined":
            room = str(event.get("room"))
            users = [str(u) for u in event.get("users") or []]
            self.users[room] = users
            lines = []
            if room not in self.shown_history:
                self.shown_history.add(room)
                for item in event.get("history") or []:
                    if isinstance(item, dict):
                        lines.extend(self.format(item))
                lines.append(f"= joined #{room}; here: {', '.join(users)}")
            else:
                lines.append(f"= rejoined #{room}; here: {', '.join(users)}")
            return lines
        if kind in ("user_joined", "user_left"):
            room = str(event.get("room"))
            self.users[room] = [str(u) for u in event.get("users") or []]
            verb = "joined" if kind == "user_joined" else "left"
            return [f"* {event.get('user_id')} {verb} #{room}"]
        if kind == "left":
            self.users.pop(str(event.get("room")), None)
            return [f"= left #{event.get('room')}"]
        # Items that waited in the inbox while the user was away carry "offline": true.
        away = ", offline" if event.get("offline") is True else ""
        if kind == "private":
            return [f"[{_clock(event)}] (private{away}) {event.get('from')}: "
                    f"{_show(event.get('content'))}"]
        if kind == "notification":
            topic = event.get("topic")
            where = f"{topic}" if topic else "notification"
            return [f"[{_clock(event)}] ({where}{away}) {_show(event.get('message'))}"]
        if kind == "subscribed":
            return [f"= subscribed to {', '.join(map(str, event.get('topics') or []))}"]
        if kind == "unsubscribed":
            return [f"= unsubscribed from {', '.join(map(str, event.get('topics') or []))}"]
        if kind == "published":
            count = event.get("recipients")
            return [f"= published to {event.get('topic')} ({count} "
                    f"recipient{'' if count == 1 else 's'})"]
        if kind == "private_ack":
            status = event.get("status")
            return [f"= to {event.get('target')}: {status}"
                    + (" (offline: delivered when they connect)" if status == "queued" else "")]
        if kind == "error":
            return [f"! {event.get('code')}: {event.get('message')}"]
        if kind == "pong":
            return ["= pong"]
        return [f"< {_show(event)}"]


def format_event(event: dict[str, Any]) -> list[str]:
    """The terminal lines for one event, seen by a fresh :class:`ChatView`."""
    return ChatView().format(event)


async def _stdin_lines() -> Any:
    """An async iterator over stdin lines: a pipe reader where possible, else a thread."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (ValueError, OSError):
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            yield line.rstrip("\n")
    else:
        while True:
            raw = await reader.readline()
            if not raw:
                return
            yield raw.decode("utf-8", "replace").rstrip("\r\n")


class _Session:
    def __init__(self, client: ChatClient, view: ChatView, room: str | None) -> None:
        self.client = client
        self.view = view
        self.room = room

    def say(self, line: str) -> None:
        print(line, flush=True)

    async def command(self, line: str) -> bool:
        """Run one input line; False to quit."""
        client = self.client
        if not line.strip():
            return True
        if not line.startswith("/") or line.startswith("//"):
            text = line[1:] if line.startswith("//") else line
            if self.room is None:
                self.say("! join a room first: /join ROOM")
            else:
                await client.send(self.room, text)
            return True
        command, _, rest = line.partition(" ")
        rest = rest.strip()
        if command == "/quit":
            return False
        if command == "/help":
            self.say(HELP)
        elif command == "/join" and rest:
            await client.join(rest)
            self.room = rest
        elif command == "/room" and rest:
            if rest not in client.rooms:
                self.say(f"! not in #{rest}; /join {rest} first")
            else:
                self.room = rest
                self.say(f"= talking in #{rest}")
        elif command == "/leave":
            room = rest or self.room
            if room is None:
                self.say("! which room?")
            else:
                await client.leave(room)
                if room == self.room:
                    self.room = next(iter(client.rooms), None)
        elif command == "/who":
            if self.room is None:
                self.say("! not in a room")
            else:
                self.say(f"= in #{self.room}: {', '.join(self.view.users.get(self.room, []))}")
        elif command == "/msg" and len(rest.split(None, 1)) == 2:
            target, text = rest.split(None, 1)
            await client.private(target, text)
            self.say(f"(private) you -> {target}: {text}")
        elif command == "/sub" and rest:
            await client.subscribe(*rest.split())
        elif command == "/unsub" and rest:
            await client.unsubscribe(*rest.split())
        elif command == "/pub" and len(rest.split(None, 1)) == 2:
            topic, text = rest.split(None, 1)
            try:
                message: Any = json.loads(text)
            except ValueError:
                message = text
            await client.publish(topic, message)
        elif command == "/ping":
            await client.ping()
        else:
            self.say("! unknown command or missing argument; /help lists them")
        return True


async def _chat(url: str, *, user: str | None, room: str | None, token: str | None,
                reconnect: bool, ssl: SSLContext | None = None, retry: bool = False) -> int:
    client = ChatClient(url, token=token, user_id=user, reconnect=reconnect, ssl=ssl)
    view = ChatView()
    print(f"= connecting to {client.url.split('?')[0]}"
          + (" (retrying until it answers; Ctrl+C stops)" if retry else ""), flush=True)
    # The first connection fails at once (within the open timeout) unless --retry; after it,
    # reconnecting follows --no-reconnect.
    client.reconnect = retry
    try:
        await client.connect()
    except ChatError as exc:
        detail = exc.message if exc.message.startswith("could not connect") else (
            f"could not connect: {exc}")
        print(f"! {detail}", file=sys.stderr, flush=True)
        return 1
    client.reconnect = reconnect

    async def printer() -> None:
        async for event in client:
            for line in view.format(event):
                print(line, flush=True)

    printing = asyncio.create_task(printer())
    session = _Session(client, view, None)
    status = 0
    try:
        if room:
            await client.join(room)
            session.room = room
        async for line in _stdin_lines():
            if printing.done():
                break
            try:
                if not await session.command(line):
                    break
            except ChatError as exc:
                if exc.reply is None:  # an error reply is already shown as an event
                    print(f"! {exc.code}: {exc.message}", flush=True)
            except TimeoutError:
                print("! no answer from the server (still reconnecting?)", flush=True)
    except ChatError as exc:
        print(f"! {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError, ChatError):
            await asyncio.wait_for(printing, 5)
    if printing.done() and not printing.cancelled() and printing.exception() is not None:
        print(f"! {printing.exception()}", file=sys.stderr, flush=True)
        status = 1
    return status


def main_chat(argv: list[str]) -> int:
    p = OneLineParser(
        prog="python -m rawws chat", formatter_class=DefaultsHelpFormatter,
        description="An interactive terminal chat on a rawws chat server. Type /help inside.")
    p.add_argument("url", nargs="?", default="ws://127.0.0.1:8765/ws",
                   help="server URL (default ws://127.0.0.1:8765/ws)")
    p.add_argument("--user", help="your name when the server runs without auth")
    p.add_argument("--room", default="lobby", help="room to join at start (default lobby; "
                                                   "'' for none)")
    p.add_argument("--token", default=os.environ.get("RAWWS_TOKEN"),
                   help="JWT or static token (default: $RAWWS_TOKEN); sent in a header")
    p.add_argument("--no-reconnect", action="store_true", help="exit when the connection drops")
    p.add_argument("--retry", action="store_true",
                   help="keep trying until the server answers (default: fail after the open "
                        "timeout, 10 s)")
    p.add_argument("--debug", action="store_true", help="log every frame (< received, > sent)")
    add_client_flags(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if args.debug:
        logging.getLogger("rawws").setLevel(logging.DEBUG)
    elif args.retry:  # say that it is retrying, and why
        logging.getLogger("rawws.chat.client").setLevel(logging.INFO)
    try:
        context = client_context(ca_certs=args.ca_certs, certfile=args.certfile,
                                 keyfile=args.keyfile)
    except TLSConfigError as exc:
        print(f"rawws chat: {exc}", file=sys.stderr)
        return 2
    if context is not None and not args.url.startswith("wss://"):
        print("rawws chat: --ca-certs / --certfile need a wss:// URL", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_chat(args.url, user=args.user, room=args.room or None,
                                 token=args.token, reconnect=not args.no_reconnect,
                                 ssl=context, retry=args.retry))
    except KeyboardInterrupt:
        return 0
