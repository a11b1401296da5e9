"""Instructions per echo round trip, counted by callgrind: repeatable on a loaded machine.

    python -m benchmarks.instructions                      # rawws, 64-byte echo
    python -m benchmarks.instructions --server floor --size 1024
    python -m benchmarks.instructions --server rawws --env RAWWS_PURE_PYTHON=1 --size 65536
    python -m benchmarks.instructions --inproc              # rawws's own Python only

``--inproc`` leaves out the event loop and the sockets: a ``ServerConnection`` (the callback
echo of ``servers/rawws_server.py``) on a transport that only collects what is written, fed one
frame per ``buffer_updated`` call, exactly as the loop would feed it. What it counts is rawws's
own cost per message, read path, dispatch, reply and write included.

The server (one of ``benchmarks/servers``) runs under ``valgrind --tool=callgrind``; a blocking
client in this process does the opening handshake, then sends masked binary messages one at a
time and waits for each echo, as the picows load generator does with one connection. The server
is run twice, with ``--messages`` and with twice as many, and the figure is the difference in
instructions divided by the difference in messages: start-up, imports, the handshake and the
shutdown cancel out, and what is left is the cost of one round trip in the server process
(user space: the interpreter, asyncio, rawws; not the kernel's side of the system calls).

Wall-clock benchmarks on a shared 2-core machine move by 10 % with the neighbours' load; these
counts move by well under 1 %, which is what makes them useful while iterating. They are a
direction, not a result: the side-by-side figures (``benchmarks/run.py``) are the result.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_KEY = b"\x11\x22\x33\x44"


def _mask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        n, "little")


def _frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes([0x82, 0x80 | n])
    elif n < 65536:
        head = bytes([0x82, 0xFE]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x82, 0xFF]) + n.to_bytes(8, "big")
    return head + _KEY + _mask(payload, _KEY)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise ConnectionError("server closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_echo(sock: socket.socket) -> bytes:
    head = _recv_exact(sock, 2)
    n = head[1] & 0x7F
    if n == 126:
        n = int.from_bytes(_recv_exact(sock, 2), "big")
    elif n == 127:
        n = int.from_bytes(_recv_exact(sock, 8), "big")
    return _recv_exact(sock, n)


def _drive(port: int, messages: int, size: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101"), response[:80]
    payload = os.urandom(size)
    frame = _frame(payload)
    for _ in range(messages):
        sock.sendall(frame)
        if _read_echo(sock) != payload:
            raise AssertionError("wrong echo")
    sock.close()


class _CollectingTransport:
    """What the in-process run writes to: enough of an asyncio transport, keeps the bytes."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def writelines(self, data: list[bytes]) -> None:
        self.written.extend(data)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def abort(self) -> None:
        pass


def _inproc(messages: int, size: int) -> None:
    """The child of ``--inproc``: ``messages`` echoes through a ServerConnection, no loop."""
    import asyncio

    import rawws
    from benchmarks.servers.rawws_server import Bench

    async def run() -> None:
        server = rawws.Server(Bench(), max_size=max(size, 1 << 22))
        ws = server._make_connection()
        transport = _CollectingTransport()
        ws.connection_made(transport)  # type: ignore[arg-type]
        key = base64.b64encode(os.urandom(16))
        ws.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
                         b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        assert transport.written[0].startswith(b"HTTP/1.1 101")
        payload = os.urandom(size)
        frame = memoryview(_frame(payload))
        n = len(frame)
        for _ in range(messages):
            # As the loop does: each read lands in the buffer the connection lends (the copy is
            # the kernel's in real life), at most as much as it holds, then buffer_updated.
            done = 0
            while done < n:
                view = ws.get_buffer(-1)
                k = min(len(view), n - done)
                view[:k] = frame[done : done + k]
                ws.buffer_updated(k)
                done += k
            del transport.written[:]
        server.close()

    asyncio.run(run())


def _count(server: str, messages: int, size: int, env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        if server == "inproc":
            subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                 sys.executable, "-m", "benchmarks.instructions", "--child", str(messages),
                 "--size", str(size)],
                cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONHASHSEED": "0", **env})
            return _totals(out.read_text())
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, "-m", f"benchmarks.servers.{server}", "--port", "0",
             "--max-size", str(max(size, 1 << 22))],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONHASHSEED": "0", **env})
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.match(r"READY (\d+)", line)
            if not match:
                raise RuntimeError(f"server did not start: {line!r}")
            _drive(int(match.group(1)), messages, size)
        finally:
            proc.send_signal(signal.SIGINT)  # asyncio.run ends; valgrind writes its counts
            proc.wait(timeout=120)
        return _totals(out.read_text())


def _totals(text: str) -> int:
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
    if not match:
        raise RuntimeError("no totals in the callgrind output")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="rawws_server",
                        help="a module of benchmarks/servers (rawws_server, floor, ...)")
    parser.add_argument("--size", type=int, default=64, help="message size in bytes")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment of the server (e.g. RAWWS_PURE_PYTHON=1)")
    parser.add_argument("--inproc", action="store_true",
                        help="rawws's own cost: no event loop, no sockets (see above)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _inproc(args.child, args.size)
        return 0
    if args.inproc:
        args.server = "inproc"
    server = args.server if args.server.endswith("_server") or args.server in (
        "floor", "null", "inproc") else f"{args.server}_server"
    env = dict(item.split("=", 1) for item in args.env)
    low = _count(server, args.messages, args.size, env)
    high = _count(server, 2 * args.messages, args.size, env)
    per = (high - low) / args.messages
    print(f"{server} {args.size} B: {per:,.0f} instructions per round trip "
          f"({low:,} / {high:,} for {args.messages} / {2 * args.messages} messages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
