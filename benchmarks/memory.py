"""Where a server's memory per idle connection goes: tracemalloc inside the server process.

    python -m benchmarks.memory rawws                 # 2,000 idle connections, no compression
    python -m benchmarks.memory rawws --deflate --conns 1000 --frames 6

Starts the server (``BENCH_TRACEMALLOC``, see servers/_common.py), opens a first tenth of the
connections, takes a snapshot, opens the rest, and prints what was allocated in between, grouped
by traceback, per connection. tracemalloc sees Python allocations only: the kernel's socket
buffers and the allocator's slack, which RSS includes, are not there.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from .run import SERVERS, LoadGen, Server, _cleanup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", choices=sorted(SERVERS))
    parser.add_argument("--conns", type=int, default=2000)
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--frames", type=int, default=4, help="traceback depth")
    args = parser.parse_args(argv)
    logdir = Path(tempfile.mkdtemp(prefix="rawws-memory-"))
    os.environ["BENCH_TRACEMALLOC"] = str(args.frames)
    cpus = sorted(os.sched_getaffinity(0))
    server = Server(args.server, cpus[0], logdir)
    loadgen = LoadGen(cpus[-1], logdir)
    first = args.conns // 10
    try:
        loadgen.call(op="idle_open", port=server.port, conns=first, deflate=args.deflate)
        time.sleep(0.5)
        rss1 = server.rss()
        os.kill(server.pid, signal.SIGUSR1)
        time.sleep(1.0)
        loadgen.call(op="idle_open", port=server.port, conns=args.conns - first,
                     deflate=args.deflate, timeout=300)
        time.sleep(0.5)
        rss2 = server.rss()
        os.kill(server.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 60
        while "TRACEMALLOC end" not in server.log.read_text(errors="replace"):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        loadgen.call(op="idle_close")
        loadgen.stop()
        server.stop()
        _cleanup()
    n = args.conns - first
    text = server.log.read_text(errors="replace")
    report = text[text.rfind("TRACEMALLOC total") :]
    print(f"{args.server}: {n} connections added, RSS +{(rss2 - rss1) / n:.0f} bytes each")
    for line in report.splitlines():
        if line.startswith("-- ") or line.startswith("TRACEMALLOC total"):
            size = int(line.split()[1 if line.startswith("-- ") else 2])
            line = f"{line}   ({size / n:.0f} bytes per connection)"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
