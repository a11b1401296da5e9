"""``python -m rawws``: the command line.

* ``python -m rawws echo [--host H] [--port P] [--max-size BYTES]``: an echo server (used by the
  conformance suite and the benchmarks). ``--max-size 0`` means unlimited.
* ``python -m rawws client URI``: an interactive client in the style of wscat. Lines you type are
  sent as text; ``/ping [TEXT]``, ``/close [CODE [REASON]]``, ``/binary HEX`` and ``/quit``.
* ``python -m rawws serve ...`` and ``python -m rawws chat ...``: the chat-and-notify server and
  its terminal client (see ``docs/chat.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from ssl import SSLContext

from .aio.client import connect
from .aio.connection import Connection, Listener, Message
from .aio.server import serve
from .errors import ConnectionClosed, RawwsError
from .redact import RedactingFilter, redact_text
from .sansio.codes import CLOSE_CODE_MEANINGS
from .tls import TLSConfigError, add_client_flags, add_server_flags, client_context, server_context

__all__ = ["main"]


class EchoListener(Listener):
    """Echo every message back; stop reading while the peer is slow to take our replies."""

    def on_message(self, ws: Connection, message: Message) -> None:
        ws.send_nowait(message)
        if ws.writing_paused:
            ws.pause_reading()

    def on_writable(self, ws: Connection) -> None:
        ws.resume_reading()


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _run_until_signal(coro_server: serve) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, _set_once, stop)
    async with coro_server as server:
        addresses = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}"
                              for s in server.sockets)
        print(f"rawws echo server listening on {addresses}", flush=True)
        await stop


def _echo(args: argparse.Namespace) -> int:
    max_size = None if args.max_size == 0 else args.max_size
    try:
        context = server_context(certfile=args.certfile, keyfile=args.keyfile,
                                 ca_certs=args.ca_certs)
        server = serve(
            EchoListener(),
            args.host,
            args.port,
            max_size=max_size,
            compression=None if args.no_compression else "deflate",
            ping_interval=None,
            shutdown_timeout=args.shutdown_timeout,
            ssl=context,
        )
    except ValueError as exc:
        print(f"rawws echo: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_run_until_signal(server))
    return 0


async def _client(uri: str, compression: str | None, ssl: SSLContext | None = None) -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        ws = await connect(uri, compression=compression, ssl=ssl)
    except (TimeoutError, OSError, RawwsError) as exc:
        print(f"! could not connect: {exc}", file=sys.stderr)
        return 1
    print(f"= connected to {redact_text(uri)}"
          + (f" (extensions: {', '.join(e.name for e in ws.extensions)})"
             if ws.extensions else "")
          + "; type /help for commands", flush=True)

    async def printer() -> None:
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    print(f"< (binary) {message.hex(' ')}", flush=True)
                else:
                    print(f"< {message}", flush=True)
        except ConnectionClosed:
            pass

    printing = asyncio.create_task(printer())
    try:
        while not printing.done():
            line_task = asyncio.ensure_future(reader.readline())
            await asyncio.wait([line_task, printing], return_when=asyncio.FIRST_COMPLETED)
            if not line_task.done():
                line_task.cancel()
                break
            raw = line_task.result()
            if not raw:
                await ws.close()
                break
            line = raw.decode(errors="replace").rstrip("\n")
            try:
                if not await _client_command(ws, line):
                    break
            except ConnectionClosed:
                break
            except (ValueError, RawwsError) as exc:
                print(f"! {exc}", flush=True)
        await ws.wait_closed()
    finally:
        printing.cancel()
    code = ws.close_code or 1006
    meaning = CLOSE_CODE_MEANINGS.get(code, "application-defined")
    print(f"x closed: {code} {meaning}" + (f" ({ws.close_reason})" if ws.close_reason else ""))
    return 0


async def _client_command(ws: Connection, line: str) -> bool:
    """Run one line typed by the user. Return False to stop reading input."""
    if not line.startswith("/"):
        await ws.send(line)
        return True
    command, _, rest = line.partition(" ")
    if command == "/ping":
        latency = await (await ws.ping(rest.encode() if rest else None))
        print(f"= pong after {latency * 1000:.2f} ms", flush=True)
    elif command == "/close":
        code_text, _, reason = rest.partition(" ")
        await ws.close(int(code_text) if code_text else 1000, reason)
        return False
    elif command == "/binary":
        await ws.send(bytes.fromhex(rest))
    elif command == "/quit":
        await ws.close()
        return False
    elif command == "/help":
        print("= /ping [TEXT]  /close [CODE [REASON]]  /binary HEX  /quit  (other lines: text)")
    else:
        print(f"! unknown command {command}; /help lists them", flush=True)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["--debug", "serve"]:
        argv = ["serve", "--debug", *argv[2:]]  # the same transcript as for echo and client
    if argv and argv[0] in ("serve", "chat"):
        # The chat layer is imported only for these commands.
        cli = importlib.import_module("rawws.chat.cli")
        run = cli.main_serve if argv[0] == "serve" else cli.main_chat
        return int(run(argv[1:]))

    parser = argparse.ArgumentParser(prog="python -m rawws",
                                     description="rawws WebSocket tools")
    parser.add_argument("--debug", action="store_true",
                        help="log a transcript of every frame (< received, > sent)")
    commands = parser.add_subparsers(dest="command", required=True)
    echo = commands.add_parser("echo", help="run an echo server")
    echo.add_argument("--host", default="127.0.0.1")
    echo.add_argument("--port", type=int, default=9001)
    echo.add_argument("--max-size", type=int, default=2**20,
                      help="largest message in bytes (default 1 MiB; 0 = unlimited)")
    echo.add_argument("--no-compression", action="store_true",
                      help="do not negotiate permessage-deflate")
    echo.add_argument("--shutdown-timeout", type=float, default=5.0, metavar="SECONDS",
                      help="on SIGTERM / Ctrl+C, close every connection with 1001 and abort "
                           "those still open after SECONDS (default 5)")
    add_server_flags(echo)
    client = commands.add_parser("client", help="an interactive client (like wscat)")
    client.add_argument("uri")
    client.add_argument("--no-compression", action="store_true")
    add_client_flags(client)
    commands.add_parser("serve", help="the chat and notify server (see docs/chat.md)")
    commands.add_parser("chat", help="a terminal chat client (see docs/chat.md)")
    # rawws/tools: each module registers its subcommand
    for tool in ("trace_proxy", "replay", "craft"):
        importlib.import_module(f"rawws.tools.{tool}").add_parser(commands)
    args = parser.parse_args(argv)
    if hasattr(args, "run"):
        return int(args.run(args))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    for handler in logging.getLogger().handlers:  # no secret reaches a log (rawws.redact)
        handler.addFilter(RedactingFilter())
    if args.debug:
        logging.getLogger("rawws").setLevel(logging.DEBUG)
    if args.command == "echo":
        return _echo(args)
    try:
        context = client_context(ca_certs=args.ca_certs, certfile=args.certfile,
                                 keyfile=args.keyfile)
    except TLSConfigError as exc:
        print(f"rawws client: {exc}", file=sys.stderr)
        return 2
    if context is not None and not args.uri.startswith("wss://"):
        print("rawws client: --ca-certs / --certfile need a wss:// URI", file=sys.stderr)
        return 2
    return asyncio.run(_client(args.uri, None if args.no_compression else "deflate", context))


if __name__ == "__main__":
    sys.exit(main())
