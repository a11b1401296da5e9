"""``rawws trace --listen HOST:PORT UPSTREAM_URL``: a tracing proxy that shows the protocol.

(The module is not called ``trace``: that name belongs to the standard library.)

Owns: :class:`TraceProxy`, a transparent TCP proxy between any WebSocket client and any server
that decodes both directions (:class:`~rawws.tools.decode.ConnectionDecoder`) and reports one
event per handshake head, frame, violation and TCP event (:mod:`rawws.wirelog`), as text
lines on stdout and, with ``--jsonl FILE``, as JSON lines; and the command line.

Does not own: decoding (``decode``), formatting (``wirelog``).

The proxy observes and never fixes: every byte it receives is forwarded as it came, in the same
chunks, before or after decoding makes no difference to the peers (tests check the bytes
forwarded against the bytes received). Half-closes are forwarded as half-closes (a FIN from one
side becomes a FIN to the other), resets as aborts. The path of ``UPSTREAM_URL`` is not used:
the client's request goes upstream unchanged, ``Host`` header included. ``wss://`` upstreams
are reached over TLS (``--cafile`` to trust a private CA); the client side is plain TCP.

Secrets (query values, credential headers, tokens in payloads) are blanked in both outputs by
default (:func:`rawws.wirelog.redacted`); ``--show-secrets`` keeps them, which a capture
meant for ``rawws replay`` needs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
import ssl as ssl_module
import sys
from collections.abc import Callable
from typing import IO, Any

from ..aio.client import parse_uri
from ..errors import InvalidURI
from ..wirelog import Direction, Event, EventWriter, TcpEvent
from .decode import MAX_PAYLOAD, ConnectionDecoder

__all__ = ["TraceProxy", "add_parser", "parse_listen", "run"]

_READ_SIZE = 2**16


class TraceProxy:
    """Forward connections accepted on a listening socket to ``host:port`` and decode them.

    ``sink`` receives the events of each chunk as a list. ``ssl`` is the context for a TLS
    upstream (``server_hostname`` defaults to ``host``). ``clock`` gives event times.
    """

    def __init__(self, host: str, port: int, sink: Callable[[list[Event]], None], *,
                 ssl: ssl_module.SSLContext | None = None, server_hostname: str | None = None,
                 max_payload: int = MAX_PAYLOAD,
                 clock: Callable[[], float] | None = None) -> None:
        self.host = host
        self.port = port
        self.sink = sink
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.max_payload = max_payload
        self._clock = clock
        self._start = 0.0
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Bytes received from, and forwarded to, each side, per connection (tests compare).
        self.received: dict[int, dict[Direction, bytearray]] = {}
        self.forwarded: dict[int, dict[Direction, bytearray]] = {}
        self.record_bytes = False

    def clock(self) -> float:
        if self._clock is not None:
            return self._clock()
        return asyncio.get_running_loop().time() - self._start

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> TraceProxy:
        self._start = asyncio.get_running_loop().time()
        self._server = await asyncio.start_server(self._accept, host, port)
        return self

    @property
    def port_listening(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def sockets(self) -> tuple[Any, ...]:
        return tuple(self._server.sockets) if self._server is not None else ()

    async def drain(self) -> None:
        """Wait until every connection accepted so far has ended (both sides closed)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> TraceProxy:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _accept(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = next(self._ids)
        peer = client_writer.get_extra_info("peername")
        decoder = ConnectionDecoder(conn, clock=self.clock, max_payload=self.max_payload)
        self.sink([TcpEvent(self.clock(), conn, "open",
                            detail=f"{peer[0]}:{peer[1]}" if peer else "?")])
        if self.record_bytes:
            self.received[conn] = {"c2s": bytearray(), "s2c": bytearray()}
            self.forwarded[conn] = {"c2s": bytearray(), "s2c": bytearray()}
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl,
                    server_hostname=(self.server_hostname or self.host) if self.ssl else None)
            except (OSError, ssl_module.SSLError) as exc:
                self.sink([TcpEvent(self.clock(), conn, "error",
                                    detail=f"cannot reach {self.host}:{self.port}: {exc}")])
                client_writer.transport.abort()
                return
            pumps = [
                asyncio.ensure_future(self._pump(conn, "c2s", decoder, client_reader,
                                                 upstream_writer)),
                asyncio.ensure_future(self._pump(conn, "s2c", decoder, upstream_reader,
                                                 client_writer)),
            ]
            try:
                done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
                if any(p.exception() for p in done if not p.cancelled()):
                    # A reset on one side: reset the other.
                    client_writer.transport.abort()
                    upstream_writer.transport.abort()
                await asyncio.wait(pumps)
                for pump in pumps:
                    if not pump.cancelled():
                        pump.exception()  # reported as a tcp error event already
            finally:
                for pump in pumps:
                    pump.cancel()
                for writer in (client_writer, upstream_writer):
                    writer.close()
            self.sink([TcpEvent(self.clock(), conn, "closed")])
        except asyncio.CancelledError:
            client_writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def _pump(self, conn: int, direction: Direction, decoder: ConnectionDecoder,
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = self.received.get(conn, {}).get(direction)
        forwarded = self.forwarded.get(conn, {}).get(direction)
        try:
            while data := await reader.read(_READ_SIZE):
                if received is not None:
                    received += data
                self.sink(decoder.feed(direction, data))
                writer.write(data)  # exactly what arrived: the proxy never fixes
                if forwarded is not None:
                    forwarded += data
                await writer.drain()
        except (ConnectionError, ssl_module.SSLError) as exc:
            self.sink([TcpEvent(self.clock(), conn, "error", direction, str(exc) or
                                type(exc).__name__)])
            raise
        self.sink(decoder.eof(direction))
        if writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()  # a half-close stays a half-close
        else:
            writer.close()


# --- command line ------------------------------------------------------------------------------


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``:PORT`` (127.0.0.1)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen wants HOST:PORT, not {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "trace", help="a tracing proxy: decode every frame between a client and a server",
        description="Forward WebSocket connections to UPSTREAM_URL and print one line per "
                    "handshake head, frame, protocol violation and TCP event (python -m pydoc "
                    "rawws.tools.wirelog for the log format).")
    parser.add_argument("upstream", metavar="UPSTREAM_URL",
                        help="ws://HOST:PORT (or wss://) of the server; its path is not used")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT",
                        help="where clients connect (port 0: any free port)")
    parser.add_argument("--jsonl", metavar="FILE",
                        help="also write every event as a JSON line to FILE ('-': stdout)")
    parser.add_argument("--quiet", action="store_true", help="no text lines on stdout")
    parser.add_argument("--show-secrets", action="store_true",
                        help="do not blank tokens, credentials and query values (needed for "
                             "a capture to replay); by default they are redacted")
    parser.add_argument("--max-payload", type=int, default=MAX_PAYLOAD, metavar="BYTES",
                        help="payload bytes kept per frame (default 16 MiB)")
    parser.add_argument("--cafile", help="CA certificates to verify a wss:// upstream with")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        listen_host, listen_port = parse_listen(args.listen)
        secure, host, port, _ = parse_uri(args.upstream)
    except (ValueError, InvalidURI) as exc:
        print(f"rawws trace: {exc}", file=sys.stderr)
        return 2
    if args.max_payload < 0:
        print("rawws trace: --max-payload must be >= 0", file=sys.stderr)
        return 2
    context = None
    if secure:
        context = ssl_module.create_default_context(cafile=args.cafile)
    jsonl: IO[str] | None = None
    try:
        if args.jsonl == "-":
            jsonl = sys.stdout
        elif args.jsonl:
            jsonl = open(args.jsonl, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        print(f"rawws trace: cannot write {args.jsonl}: {exc}", file=sys.stderr)
        return 2
    writer = EventWriter(None if args.quiet or jsonl is sys.stdout else sys.stdout, jsonl,
                         show_secrets=args.show_secrets)
    try:
        return asyncio.run(_serve(TraceProxy(host, port, writer, ssl=context,
                                             max_payload=args.max_payload),
                                  listen_host, listen_port, args.upstream))
    finally:
        if jsonl is not None and jsonl is not sys.stdout:
            jsonl.close()


async def _serve(proxy: TraceProxy, host: str, port: int, upstream: str) -> int:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    def stopping() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping)
    try:
        await proxy.start(host, port)
    except OSError as exc:
        print(f"rawws trace: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    address = proxy.sockets[0].getsockname()
    print(f"rawws trace: listening on {address[0]}:{address[1]}, forwarding to {upstream}",
          file=sys.stderr, flush=True)
    try:
        await stop
    finally:
        await proxy.close()
    return 0
