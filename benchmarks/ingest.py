"""Ingest: acknowledged room messages per second, the SQLite store against the memory store.

Usage::

    .venv/bin/python -m benchmarks.ingest                  # 5 rounds, 3 s windows
    .venv/bin/python -m benchmarks.ingest --rounds 9 --seconds 5 \
        --stores memory,sqlite,sqlite-normal

What is measured: ``python -m rawws serve`` (a real process, pinned to the first CPU) with
``--store memory`` or ``--store sqlite:FILE`` (a fresh file per measurement, in a temporary
directory on the same disk as the repository unless ``--dir`` says otherwise). ``--conns``
clients (this process, pinned to the second CPU), each alone in its own room, keep ``--window``
``message`` requests in flight: a request is counted when its reply (the sender's copy of the
message, with its seq) arrives, which with the SQLite store is after the commit that made it
durable. So the figure is acknowledged, durable messages per second, and the ratio is what
durability costs the ingest path (issue 15's goal: SQLite >= 50 % of memory).

Rounds interleave the stores (memory, sqlite, memory, sqlite...); each figure is the median over
the rounds after a warm-up round, with its min-max spread, and the ratio is computed round by
round. Next to the wall-clock rate: the server's CPU seconds per 1,000 messages (all its
threads: the SQLite writer thread included) and how long it waited for a CPU that another
tenant of the machine had (``wait``: above a few percent the machine was loaded; re-run on a
quiet machine for figures to publish).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / ".results"

STORES = {
    "memory": lambda d, i: "memory",
    "sqlite": lambda d, i: f"sqlite:{d}/ingest-{i}.db",
    "sqlite-normal": lambda d, i: f"sqlite:{d}/ingest-{i}.db?synchronous=normal",
}


def _pin(core: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {core % (os.cpu_count() or 1)})


def cpu_of(pid: int) -> tuple[float, float]:
    """(CPU seconds, seconds waiting for a CPU) of every thread of ``pid`` so far."""
    run = wait = 0.0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0, 0.0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                fields = f.read().split()
            run += int(fields[0]) / 1e9
            wait += int(fields[1]) / 1e9
        except (OSError, ValueError, IndexError):
            continue
    return run, wait


# --- the server ----------------------------------------------------------------------------------


class Server:
    def __init__(self, store: str) -> None:
        self.store = store
        args = [sys.executable, "-m", "rawws", "serve", "--port", "0", "--store", store,
                "--rate", "1e9", "--burst", "1e9", "--no-compression", "--log-level", "warning"]
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=lambda: _pin(0))
        self.port = 0

    def wait_ready(self, timeout: float = 30.0) -> int:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            seen.append(line)
            found = re.search(r"on http://[0-9.]+:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                return self.port
        raise RuntimeError(f"server {self.store} did not start: {''.join(seen)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- the clients ---------------------------------------------------------------------------------


def client_frame(payload: bytes) -> bytes:
    n = len(payload)
    head = bytes((0x81, 0x80 | n)) if n < 126 else bytes((0x81, 0xFE)) + n.to_bytes(2, "big")
    return head + b"\x00\x00\x00\x00" + payload  # all-zero masking key: payload unchanged


class Client(asyncio.Protocol):
    """One sender: handshake, welcome, join its room, then ``window`` messages in flight."""

    def __init__(self, index: int, port: int, window: int, size: int) -> None:
        self.index = index
        self.window = window
        self.request = (f"GET /ws?user_id=ingest{index} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        room = f"ingest-{index}"
        content = "x" * size
        self.join = client_frame(json.dumps({"type": "join", "room": room}).encode())
        self.message = client_frame(json.dumps({"type": "message", "room": room,
                                                "content": content, "id": 1}).encode())
        self.buf = bytearray()
        self.upgraded = False
        self.frames = 0  # frames received since the handshake
        self.acked = 0  # replies to messages
        self.ready = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.running = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(buf[:200].decode(errors="replace")))
                return
            self.upgraded = True
            pos = end + 4
        size = len(buf)
        count = 0
        while size - pos >= 2:
            n = buf[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2:pos + 4], "big")
                start = pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2:pos + 10], "big")
                start = pos + 10
            if size < start + n:
                break
            pos = start + n
            count += 1
        del buf[:pos]
        if not count:
            return
        before = self.frames
        self.frames += count
        if before < 2 <= self.frames and not self.ready.done():
            self.ready.set_result(None)  # welcome + joined
            count = self.frames - 2
        if self.running and count:
            self.acked += count
            assert self.transport is not None
            self.transport.write(self.message * count)

    def start(self) -> None:
        assert self.transport is not None
        self.running = True
        self.transport.write(self.message * self.window)


async def measure(port: int, conns: int, window: int, size: int, warmup: float,
                  seconds: float, server_pid: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    clients = []
    for i in range(conns):
        _, client = await loop.create_connection(
            lambda i=i: Client(i, port, window, size), "127.0.0.1", port)
        client.transport.write(client.join)
        clients.append(client)
    await asyncio.wait_for(asyncio.gather(*(c.ready for c in clients)), 30)
    for client in clients:
        client.start()
    await asyncio.sleep(warmup)
    a0 = sum(c.acked for c in clients)
    s0 = cpu_of(server_pid)
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - t0
    acked = sum(c.acked for c in clients) - a0
    s1 = cpu_of(server_pid)
    for client in clients:
        client.running = False
        assert client.transport is not None
        client.transport.abort()
    return {
        "rate": acked / elapsed,
        "cpu_ms_per_1000": (s1[0] - s0[0]) * 1e6 / max(acked, 1),
        "server_wait": (s1[1] - s0[1]) / elapsed,
    }


def run_one(store_spec: str, args: argparse.Namespace) -> dict[str, float]:
    server = Server(store_spec)
    try:
        port = server.wait_ready()
        return asyncio.run(measure(port, args.conns, args.window, args.size, args.warmup,
                                   args.seconds, server.proc.pid))
    finally:
        server.stop()


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5, help="measured rounds (after a warm-up)")
    p.add_argument("--seconds", type=float, default=3.0, help="measurement window")
    p.add_argument("--warmup", type=float, default=1.0, help="traffic before each window")
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--window", type=int, default=32, help="messages in flight per client")
    p.add_argument("--size", type=int, default=100, help="characters of content")
    p.add_argument("--stores", default="memory,sqlite")
    p.add_argument("--dir", type=Path, default=None,
                   help="where the SQLite files go (default: a temporary directory under the "
                        "repository, so on the disk the server would use)")
    args = p.parse_args(argv)
    stores = args.stores.split(",")
    for name in stores:
        if name not in STORES:
            p.error(f"unknown store {name!r}; choose from {', '.join(STORES)}")
    _pin(1)
    load_before = os.getloadavg()
    base = args.dir or ROOT / "var"
    base.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in stores}
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=base) as tmp:
        for round_no in range(args.rounds + 1):
            for name in stores:
                spec = STORES[name](tmp, f"{round_no}-{name}")
                figures = run_one(spec, args)
                label = "warm-up" if round_no == 0 else f"round {round_no}"
                print(f"{label:>8} {name:<14} {figures['rate']:>10,.0f} msg/s  "
                      f"cpu {figures['cpu_ms_per_1000']:6.1f} ms/1000  "
                      f"wait {figures['server_wait']:5.1%}", flush=True)
                if round_no:
                    results[name].append(figures)
    load_after = os.getloadavg()
    print()
    print(f"{'store':<14} {'acked msg/s: median (min-max)':>34} {'server CPU ms/1000':>20} "
          f"{'CPU wait':>9}")
    for name in stores:
        rates = [r["rate"] for r in results[name]]
        cpu = statistics.median(r["cpu_ms_per_1000"] for r in results[name])
        wait = statistics.median(r["server_wait"] for r in results[name])
        print(f"{name:<14} {_spread(rates):>34} {cpu:>20.1f} {wait:>9.1%}")
    summary: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                               "loadavg": [load_before, load_after], "results": results}
    if "memory" in stores:
        print()
        for name in stores:
            if name == "memory":
                continue
            ratios = [s["rate"] / m["rate"] for s, m in zip(results[name], results["memory"],
                                                            strict=True)]
            summary[f"ratio_{name}"] = ratios
            verdict = "PASS" if statistics.median(ratios) >= 0.5 else "SHORT"
            print(f"{name}/memory: {statistics.median(ratios):.2f} "
                  f"({min(ratios):.2f}-{max(ratios):.2f})  goal >= 0.50: {verdict}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs); a quiet re-run: python -m benchmarks.ingest --rounds 9 "
          "--seconds 5")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
