"""``rawws serve --workers N``: N processes on one port, supervised.

Owns: parsing ``--workers`` (a number, or ``auto``: the CPUs this process may run on), the
supervisor process, and what makes a process a worker (its index, watching its supervisor).

Does not own: serving (each worker is an ordinary ``rawws serve`` with the same flags) or what
makes the workers one server (the broker: :mod:`rawws.chat.bus`).

Theory of operation (docs/scaling.md, "Workers"):

1. **One port, N sockets.** The supervisor binds the port once with ``SO_REUSEPORT`` (and keeps
   that socket, bound but never listening, for its lifetime, so the port stays reserved while
   workers restart); each worker, its own process and event loop, listens on the same port with
   ``SO_REUSEPORT``, and the kernel spreads new connections over the listening sockets (by a
   hash of the addresses). With ``--port 0`` the supervisor's socket picks the port.
2. **Workers are ``rawws serve`` processes** started with the supervisor's own arguments plus
   ``--port P --worker-index I``. Their output is forwarded line by line with a ``[worker I]``
   prefix; the supervisor prints its own line once every worker is listening.
3. **Supervised**: a worker that exits without being asked to is logged and started again
   (at once if it ran for a while, after a growing pause up to :data:`MAX_BACKOFF` seconds if it
   keeps dying young). A worker that exits with status 2 (a configuration error) before it ever
   listened stops everything with status 2: restarting it would fail the same way.
4. **Stopping**: SIGTERM or SIGINT to the supervisor sends SIGTERM to every worker (each closes
   its connections with 1001 within ``--shutdown-timeout``), waits for them, kills any still
   alive after that deadline plus :data:`STOP_MARGIN` seconds, and exits 0. Each worker's stdin
   is a pipe from the supervisor: if the supervisor dies (even by ``kill -9``), the pipe closes
   and the workers stop by themselves.
5. **Workers need a broker.** N > 1 without ``--broker`` is refused (status 2): N processes
   with their own memory would be N unrelated servers behind one port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import Final, TextIO

__all__ = ["Supervisor", "cpu_count", "reserve_port", "worker_count"]

_logger = logging.getLogger("rawws.chat.workers")

#: Seconds a worker must have run for its death to be restarted at once.
STEADY: Final = 10.0
#: Longest pause before restarting a worker that keeps dying young.
MAX_BACKOFF: Final = 5.0
#: Seconds past --shutdown-timeout before a worker that has not exited is killed.
STOP_MARGIN: Final = 5.0
#: The line a worker prints once it listens (rawws.chat.cli's banner).
READY_MARK: Final = "rawws chat server on "


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity mask, as containers set it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def worker_count(value: str) -> int:
    """``--workers``: a whole number >= 1, or ``auto``."""
    if value == "auto":
        return cpu_count()
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1 or str(count) != value.strip().lstrip("+"):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 or 'auto', not {value!r}")
    return count


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with SO_REUSEPORT, not listening: it holds the port
    (and picks one for port 0) while the workers listen on it too. OSError if the port is
    taken by a process that did not set SO_REUSEPORT."""
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - not Linux / BSD
        raise OSError("--workers needs SO_REUSEPORT, which this system does not have")
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


class _Worker:
    __slots__ = ("index", "process", "ready", "restarts", "started")

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self.ready = False
        self.started = 0.0
        self.restarts = 0


class Supervisor:
    """Runs ``count`` workers of ``rawws serve ARGV`` on ``host:port`` (module docstring)."""

    def __init__(self, argv: Sequence[str], count: int, *, host: str, port: int,
                 stop_timeout: float, out: TextIO | None = None) -> None:
        self.argv = list(argv)
        self.count = count
        self.host = host
        self.port = port
        self.stop_timeout = stop_timeout
        self.out = out or sys.stdout
        self.workers = [_Worker(i) for i in range(1, count + 1)]
        self._stopping = False
        self._fatal: int | None = None
        self._announced = False
        self._stop: asyncio.Event | None = None

    def command(self, worker: _Worker) -> list[str]:
        # The last occurrence of a flag wins with argparse: the overrides go at the end.
        return [sys.executable, "-m", "rawws", "serve", *self.argv, "--workers", "1",
                "--port", str(self.port), "--worker-index", str(worker.index)]

    def run(self) -> int:
        try:
            holder = reserve_port(self.host, self.port)
        except OSError as exc:
            print(f"rawws serve: cannot bind {self.host}:{self.port}: {exc}", file=sys.stderr)
            return 1
        with holder:
            self.port = holder.getsockname()[1]
            return asyncio.run(self._main())

    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._request_stop)
        watchers = [asyncio.ensure_future(self._supervise(worker)) for worker in self.workers]
        await self._stop.wait()
        self._stopping = True
        await self._stop_all()
        for watcher in watchers:
            watcher.cancel()
        for watcher in watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        return self._fatal if self._fatal is not None else 0

    def _request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def _start(self, worker: _Worker) -> None:
        worker.ready = False
        worker.started = time.monotonic()
        worker.process = await asyncio.create_subprocess_exec(
            *self.command(worker), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=None,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    async def _supervise(self, worker: _Worker) -> None:
        backoff = 0.1
        while not self._stopping:
            await self._start(worker)
            process = worker.process
            assert process is not None
            await self._forward(worker)
            status = await process.wait()
            if self._stopping:
                return
            lived = time.monotonic() - worker.started
            if status == 2 and not worker.ready:
                print(f"rawws serve: worker {worker.index} refused its configuration "
                      "(status 2): stopping", file=sys.stderr, flush=True)
                self._fatal = 2
                self._request_stop()
                return
            worker.restarts += 1
            how = f"signal {signal.Signals(-status).name}" if status < 0 else f"status {status}"
            pause = 0.0 if lived >= STEADY else backoff
            backoff = 0.1 if lived >= STEADY else min(MAX_BACKOFF, backoff * 2)
            _logger.warning("worker %d (pid %d) exited with %s after %.1f s; restarting it%s",
                            worker.index, process.pid, how, lived,
                            f" in {pause:g} s" if pause else "")
            if pause:
                with contextlib.suppress(TimeoutError):
                    assert self._stop is not None
                    async with asyncio.timeout(pause):
                        await self._stop.wait()  # returns early when asked to stop

    async def _forward(self, worker: _Worker) -> None:
        """Copy the worker's output with its prefix until it closes; note when it listens."""
        process = worker.process
        assert process is not None and process.stdout is not None
        while True:
            raw = await process.stdout.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\n")
            print(f"[worker {worker.index}] {line}", file=self.out, flush=True)
            if not worker.ready and READY_MARK in line:
                worker.ready = True
                self._maybe_announce()

    def _maybe_announce(self) -> None:
        if self._announced or not all(w.ready for w in self.workers):
            return
        self._announced = True
        pids = ", ".join(str(w.process.pid) for w in self.workers if w.process is not None)
        host = f"[{self.host}]" if ":" in self.host else self.host
        print(f"rawws serve: {self.count} workers (pids {pids}) on http://{host}:{self.port}; "
              "SIGTERM stops them all", file=self.out, flush=True)

    async def _stop_all(self) -> None:
        alive = [w.process for w in self.workers
                 if w.process is not None and w.process.returncode is None]
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self.stop_timeout + STOP_MARGIN):
                for process in alive:
                    await process.wait()
        except TimeoutError:
            for process in alive:
                if process.returncode is None:
                    _logger.warning("worker pid %d did not stop in time: killed", process.pid)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            for process in alive:
                await process.wait()


def watch_supervisor(loop: asyncio.AbstractEventLoop, stop: asyncio.Future[None]) -> None:
    """In a worker: stop when the supervisor's pipe on stdin closes (the supervisor died)."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            if not stop.done():
                _logger.warning("the supervisor is gone: stopping")
                stop.set_result(None)

    with contextlib.suppress(OSError, ValueError, NotImplementedError):
        loop.add_reader(fd, readable)
