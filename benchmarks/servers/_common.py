"""What every benchmark server shares: options, the ready signal, and never outliving its driver.

* Options: ``--host``, ``--port`` (0 picks one), ``--max-size`` (largest message accepted, bytes),
  ``--uvloop`` (only the reference null server uses it; the servers under test run on plain
  asyncio, as users run them).
* Ready signal: once listening, print ``READY <port>`` on stdout and flush.
* Lifetime: exit when the parent process (the driver) goes away, or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
from collections.abc import Awaitable, Callable

# Big enough for the 1 MiB echo plus headroom; the same for every server.
DEFAULT_MAX_SIZE = 4 * 1024 * 1024


def parse_args(argv: list[str] | None = None, **flags: bool) -> argparse.Namespace:
    """The common options, plus one ``--name-with-dashes`` switch per keyword in ``flags``."""
    parser = argparse.ArgumentParser()
    for name in flags:
        parser.add_argument("--" + name.replace("_", "-"), action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--uvloop", action="store_true")
    return parser.parse_args(argv)


def raise_nofile_limit() -> int:
    """Raise the soft open-files limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def port_of(server: asyncio.AbstractServer | object) -> int:
    """The port an asyncio.Server (or anything with ``.sockets``) listens on."""
    sockets = server.sockets  # type: ignore[attr-defined]
    return int(sockets[0].getsockname()[1])


def _trace_memory(frames: int) -> None:
    """``BENCH_TRACEMALLOC=N``: trace allocations (N frames deep); SIGUSR1 takes a snapshot,
    SIGUSR2 prints to stderr what was allocated since, grouped by traceback (benchmarks/memory.py).
    """
    import signal
    import tracemalloc

    tracemalloc.start(frames)
    state: dict[str, tracemalloc.Snapshot] = {}

    def mark(signum: int, frame: object) -> None:
        state["base"] = tracemalloc.take_snapshot()

    def report(signum: int, frame: object) -> None:
        snap = tracemalloc.take_snapshot()
        stats = snap.compare_to(state.get("base", snap), "traceback")
        total = sum(s.size_diff for s in stats)
        out = [f"TRACEMALLOC total {total} bytes in {sum(s.count_diff for s in stats)} blocks"]
        for stat in stats[:25]:
            out.append(f"-- {stat.size_diff} bytes in {stat.count_diff} blocks")
            out += [f"     {line}" for line in stat.traceback.format()[-2 * frames :]]
        sys.stderr.write("\n".join(out) + "\nTRACEMALLOC end\n")
        sys.stderr.flush()

    signal.signal(signal.SIGUSR1, mark)
    signal.signal(signal.SIGUSR2, report)


async def _watchdog(max_seconds: float) -> None:
    parent = os.getppid()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    while True:
        await asyncio.sleep(0.5)
        if os.getppid() != parent or loop.time() > deadline:
            os._exit(0)


def run(start: Callable[[argparse.Namespace], Awaitable[int]], **flags: bool) -> None:
    """Parse options, call ``await start(args)`` (which listens and returns the port), print the
    ready line, then serve until killed. ``flags``: extra switches this server accepts."""
    args = parse_args(None, **flags)
    raise_nofile_limit()
    if os.environ.get("BENCH_TRACEMALLOC"):
        _trace_memory(int(os.environ["BENCH_TRACEMALLOC"]))

    async def main() -> None:
        port = await start(args)
        sys.stdout.write(f"READY {port}\n")
        sys.stdout.flush()
        await _watchdog(args.max_seconds)

    if args.uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
