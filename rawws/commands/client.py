"""``rawws client URI``: a WebSocket client for the terminal and for scripts (like wscat and
websocat).

Three ways to run it, chosen by what stdin is:

* **a terminal**: interactive. Lines typed are sent as text; ``/ping [TEXT]``,
  ``/close [CODE [REASON]]``, ``/binary HEX``, ``/quit``, ``/help``; received messages print
  as ``< text`` or ``< (binary) hex``; status lines start with ``=`` and ``x``.
* **a pipe or a file**: every line is sent as one text message, verbatim (no commands);
  replies print as they are (text and a newline; binary bytes as they came). At the end of
  the input the client waits until the server has been quiet for ``--wait`` seconds, closes
  with 1000 and exits 0. ``--binary`` sends the whole input as one binary message instead.
* ``-x TEXT`` (repeatable): send these messages, print the replies until quiet, exit.

Every failure is one line on stderr and a non-zero exit status (``docs/cli.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import threading
from ssl import SSLContext
from typing import Any

from ..aio.client import ClientConnection, connect
from ..errors import ConnectionClosed, InvalidURI, RawwsError
from ..redact import redact_text
from ..sansio.codes import CLOSE_CODE_MEANINGS
from ..sansio.frames import Close
from ..tls import TLSConfigError, add_client_flags, client_context
from ..wirelog import Tracing, add_trace_flags
from . import USAGE, DefaultsHelpFormatter, describe_connect_error

__all__ = ["add_parser", "run"]

#: Close codes after which the client exits 0: a normal end (RFC 6455 §7.4.1).
NORMAL = frozenset({1000, 1001, 1005})
HELP = "= /ping [TEXT]  /close [CODE [REASON]]  /binary HEX  /quit  (other lines: text)"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "client", help="a WebSocket client for the terminal and for scripts (like wscat)",
        description="Connect to a WebSocket server. Interactive on a terminal; reads lines "
                    "from stdin when it is a pipe or a file (each line one text message) and "
                    "closes once the server has been quiet for --wait seconds after the end "
                    "of the input. Exit status: 0 closed normally, 1 a failure, 2 a usage "
                    "error.",
        formatter_class=DefaultsHelpFormatter)
    parser.add_argument("uri", help="ws:// or wss:// URI")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="add a request header (repeatable)")
    parser.add_argument("-s", "--subprotocol", action="append", default=[], metavar="NAME",
                        help="offer a subprotocol (repeatable, in order of preference)")
    parser.add_argument("--origin", help="send this Origin header")
    parser.add_argument("-x", "--execute", action="append", default=[], metavar="TEXT",
                        help="send TEXT (repeatable), print the replies until quiet, exit")
    parser.add_argument("--binary", action="store_true",
                        help="send the whole of stdin as one binary message")
    parser.add_argument("--wait", type=float, default=1.0, metavar="SECONDS",
                        help="at the end of the input, close once the server has been quiet "
                             "this long")
    parser.add_argument("--ping-interval", type=float, default=20.0, metavar="SECONDS",
                        help="keepalive ping interval; 0 turns keepalive off")
    parser.add_argument("--open-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="give up connecting after this long")
    parser.add_argument("--no-compression", action="store_true",
                        help="do not offer permessage-deflate")
    parser.add_argument("--show-close", action="store_true",
                        help="print the close code and reason (on stderr)")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="log a transcript of every frame (< received, > sent)")
    add_client_flags(parser)
    add_trace_flags(parser)
    parser.set_defaults(run=run)


def _fail(message: str, status: int = 1) -> int:
    print(f"rawws client: {message}", file=sys.stderr, flush=True)
    return status


def _parse_headers(values: list[str]) -> list[tuple[str, str]]:
    headers = []
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip() or any(c in value for c in "\r\n"):
            raise ValueError(f"--header {value!r}: expected 'NAME: VALUE'")
        headers.append((name.strip(), text.strip()))
    return headers


def run(args: argparse.Namespace) -> int:
    try:
        headers = _parse_headers(args.header)
        if args.wait < 0 or args.open_timeout <= 0 or args.ping_interval < 0:
            raise ValueError("--wait, --open-timeout and --ping-interval must be positive")
        if args.binary and args.execute:
            raise ValueError("--binary and --execute cannot be combined")
        context = client_context(ca_certs=args.ca_certs, certfile=args.certfile,
                                 keyfile=args.keyfile)
        if context is not None and not args.uri.startswith("wss://"):
            raise ValueError("--ca-certs / --certfile need a wss:// URI")
        tracing = Tracing.from_flags(args.trace, args.trace_jsonl)
    except (ValueError, TLSConfigError, OSError) as exc:
        return _fail(str(exc), USAGE)
    interactive = not args.execute and not args.binary and sys.stdin.isatty()
    try:
        return asyncio.run(_client(args, headers, context, interactive, tracing))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout was closed (``| head``): nothing more to say; keep Python quiet at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if tracing is not None:
            tracing.close()


async def _client(args: argparse.Namespace, headers: list[tuple[str, str]],
                  context: SSLContext | None, interactive: bool,
                  tracing: Tracing | None = None) -> int:
    tracer = tracing.client_tracer() if tracing is not None else None
    try:
        ws = await connect(args.uri, additional_headers=headers,
                           subprotocols=args.subprotocol or None, origin=args.origin,
                           compression=None if args.no_compression else "deflate",
                           ping_interval=args.ping_interval or None,
                           open_timeout=args.open_timeout, ssl=context, tracer=tracer)
    except InvalidURI as exc:
        return _fail(str(exc), USAGE)
    except (OSError, TimeoutError, RawwsError) as exc:
        if getattr(args, "debug", False):
            logging.getLogger("rawws").debug("connect failed", exc_info=exc)
        return _fail(describe_connect_error(exc, args.uri, args.open_timeout))
    if tracing is not None and tracer is not None:
        tracing.client_opened(tracer, ws)
    if interactive:
        extensions = ", ".join(e.name for e in ws.extensions)
        print(f"= connected to {redact_text(args.uri)}"
              + (f" (extensions: {extensions})" if extensions else "")
              + (f" (subprotocol: {ws.subprotocol})" if ws.subprotocol else "")
              + "; type /help for commands", flush=True)
        await _interactive(ws)
    else:
        await _scripted(ws, args)
    return _report_close(ws, args.show_close or interactive, interactive)


def _report_close(ws: ClientConnection, show: bool, interactive: bool) -> int:
    code = ws.close_code if ws.close_code is not None else 1006
    reason = ws.close_reason or ""
    meaning = CLOSE_CODE_MEANINGS.get(code, "application-defined")
    if interactive:
        print(f"x closed: {code} {meaning}" + (f" ({reason})" if reason else ""), flush=True)
    elif show:
        print(f"closed: {Close(code, reason)}", file=sys.stderr, flush=True)
    protocol = ws.protocol
    we_closed = protocol.close_sent is not None and not protocol.close_rcvd_first
    if code in NORMAL or (we_closed and protocol.close_rcvd is not None):
        return 0  # a normal end, or the close this side asked for (/close 4000 bye)
    if not interactive and not show:
        return _fail(f"connection closed: {Close(code, reason)}")
    return 1


# --- input ---------------------------------------------------------------------------------------


def _start_reader(queue: asyncio.Queue[bytes | None]) -> None:
    """Read stdin's lines in a daemon thread (a thread works for terminals, pipes, files and
    /dev/null alike; a daemon never keeps the process alive at exit). It reads the file
    descriptor with ``os.read``, not ``sys.stdin``: a thread blocked inside sys.stdin's
    buffered reader would hold its lock while the interpreter shuts down, which aborts it."""
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()

    def put(line: bytes | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            loop.call_soon_threadsafe(queue.put_nowait, line)

    def reader() -> None:
        pending = b""
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    put(line)
        except OSError:
            pass
        if pending:
            put(pending)  # a last line without its newline
        put(None)

    threading.Thread(target=reader, daemon=True, name="rawws-stdin").start()


def _read_all() -> bytes:
    """All of stdin (for --binary), from the file descriptor."""
    fd = sys.stdin.fileno()
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _print_message(message: str | bytes, interactive: bool) -> None:
    if interactive:
        shown = f"(binary) {message.hex(' ')}" if isinstance(message, bytes) else message
        print(f"< {shown}", flush=True)
    elif isinstance(message, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(message)
        sys.stdout.buffer.flush()
    else:
        print(message, flush=True)


class _Printer:
    """Prints messages as they arrive and remembers when the last one came."""

    def __init__(self, ws: ClientConnection, interactive: bool) -> None:
        self.ws = ws
        self.interactive = interactive
        self.last = asyncio.get_running_loop().time()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            async for message in self.ws:
                self.last = asyncio.get_running_loop().time()
                _print_message(message, self.interactive)
        except ConnectionClosed:
            pass

    async def until_quiet(self, wait: float) -> None:
        """Return once no message has arrived for ``wait`` seconds (or the connection
        ended)."""
        loop = asyncio.get_running_loop()
        self.last = max(self.last, loop.time())
        while not self.task.done():
            left = self.last + wait - loop.time()
            if left <= 0:
                return
            await asyncio.wait([self.task], timeout=left)


async def _scripted(ws: ClientConnection, args: argparse.Namespace) -> None:
    printer = _Printer(ws, interactive=False)
    try:
        if args.execute:
            for text in args.execute:
                await ws.send(text)
        elif args.binary:
            data = await asyncio.to_thread(_read_all)
            await ws.send(data)
        else:
            queue: asyncio.Queue[bytes | None] = asyncio.Queue()
            _start_reader(queue)
            while True:
                getting = asyncio.ensure_future(queue.get())
                await asyncio.wait([getting, printer.task],
                                   return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():  # the server closed first
                    getting.cancel()
                    break
                line = getting.result()
                if line is None:
                    break
                await ws.send(line.rstrip(b"\r").decode("utf-8", "replace"))
        await printer.until_quiet(args.wait)
    except ConnectionClosed:
        pass
    finally:
        await ws.close()
        await printer.task


async def _interactive(ws: ClientConnection) -> None:
    printer = _Printer(ws, interactive=True)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    _start_reader(queue)
    try:
        while not printer.task.done():
            getting = asyncio.ensure_future(queue.get())
            await asyncio.wait([getting, printer.task], return_when=asyncio.FIRST_COMPLETED)
            if not getting.done():
                getting.cancel()
                break
            raw = getting.result()
            if raw is None:
                break
            line = raw.decode("utf-8", "replace").rstrip("\r")
            try:
                if not await _command(ws, line):
                    break
            except ConnectionClosed:
                break
            except (ValueError, RawwsError) as exc:
                print(f"! {exc}", flush=True)
    finally:
        await ws.close()
        await printer.task


async def _command(ws: ClientConnection, line: str) -> bool:
    """Run one line typed by the user. Return False to stop reading input."""
    if not line.startswith("/") or line.startswith("//"):
        await ws.send(line[1:] if line.startswith("//") else line)
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
        return False
    elif command == "/help":
        print(HELP + "; //text sends /text", flush=True)
    else:
        print(f"! unknown command {command}; /help lists them", flush=True)
    return True
