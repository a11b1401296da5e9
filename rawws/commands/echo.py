"""``rawws echo``: an echo server (the conformance suite and the benchmarks run against it).

Every message is sent back as it came; a peer slow to read its echoes stops being read
(back-pressure) until it catches up. Port in use, a bad certificate: one line on stderr and a
non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from ..aio.connection import Connection, Listener, Message
from ..aio.server import serve
from ..tls import TLSConfigError, add_server_flags, server_context
from ..wirelog import Tracing, add_trace_flags
from . import USAGE, DefaultsHelpFormatter, listen_error

__all__ = ["EchoListener", "add_parser", "run"]


class EchoListener(Listener):
    """Echo every message back; stop reading while the peer is slow to take our replies."""

    def on_message(self, ws: Connection, message: Message) -> None:
        ws.send_nowait(message)
        if ws.writing_paused:
            ws.pause_reading()

    def on_writable(self, ws: Connection) -> None:
        ws.resume_reading()


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "echo", help="run an echo server",
        description="An echo server: every message comes back as it was sent. Ctrl+C or "
                    "SIGTERM closes every connection with 1001 and exits.",
        formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001, help="0 picks a free port")
    parser.add_argument("--max-size", type=int, default=2**20,
                        help="largest message in bytes; 0 = unlimited")
    parser.add_argument("--no-compression", action="store_true",
                        help="do not negotiate permessage-deflate")
    parser.add_argument("--shutdown-timeout", type=float, default=5.0, metavar="SECONDS",
                        help="on SIGTERM / Ctrl+C, close every connection with 1001 and abort "
                             "those still open after SECONDS")
    parser.add_argument("--log-level", default="warning",
                        choices=["debug", "info", "warning", "error"],
                        help="info logs one line per connection accepted or refused")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="log a transcript of every frame (< received, > sent)")
    add_server_flags(parser)
    add_trace_flags(parser)
    parser.set_defaults(run=run)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _run_until_signal(server: serve) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, _set_once, stop)
    async with server as running:
        addresses = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}"
                              for s in running.sockets)
        print(f"rawws echo server listening on {addresses}", flush=True)
        await stop


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "debug", False):
        logging.getLogger("rawws").setLevel(args.log_level.upper())
    max_size = None if args.max_size == 0 else args.max_size
    try:
        context = server_context(certfile=args.certfile, keyfile=args.keyfile,
                                 ca_certs=args.ca_certs)
        tracing = Tracing.from_flags(args.trace, args.trace_jsonl)
        server = serve(EchoListener(), args.host, args.port, max_size=max_size,
                       compression=None if args.no_compression else "deflate",
                       ping_interval=None, shutdown_timeout=args.shutdown_timeout,
                       ssl=context,
                       process_response=tracing.process_response if tracing else None)
    except (ValueError, TLSConfigError, OSError) as exc:
        print(f"rawws echo: {exc}", file=sys.stderr)
        return USAGE
    try:
        asyncio.run(_run_until_signal(server))
    except OSError as exc:
        print(f"rawws echo: {listen_error(exc, args.host, args.port)}", file=sys.stderr)
        return 1
    finally:
        if tracing is not None:
            tracing.close()
    return 0
