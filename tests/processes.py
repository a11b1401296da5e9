"""Real ``python -m rawws ...`` processes for the tests that need one (startup errors, signals,
log contents, TLS flags): started with asyncio, every output line kept, every wait bounded by a
generous hang guard (never a performance assertion)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: A hang guard for any one wait on a process.
WAIT = 30.0


class ServerProcess:
    """``python -m rawws ARGS`` with stdout and stderr merged into one list of lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None,
                    cwd: Path | None = None) -> ServerProcess:
        environment = dict(os.environ)
        environment.update(env or {})
        environment.setdefault("PYTHONUNBUFFERED", "1")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rawws", *args, cwd=cwd or ROOT, env=environment,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        return cls(process)

    async def _readline(self) -> str | None:
        assert self.process.stdout is not None
        raw = await self.process.stdout.readline()
        if not raw:
            return None
        line = raw.decode("utf-8", "replace").rstrip("\n")
        self.lines.append(line)
        return line

    async def expect(self, pattern: str) -> re.Match[str]:
        """Read lines until one matches ``pattern`` (lines already read are searched first)."""
        regex = re.compile(pattern)
        for line in self.lines:
            if (found := regex.search(line)) is not None:
                return found
        async with asyncio.timeout(WAIT):
            while True:
                line = await self._readline()
                assert line is not None, f"process ended before {pattern!r}: {self.lines}"
                if (found := regex.search(line)) is not None:
                    return found

    async def port(self) -> int:
        """The port from the startup line of ``serve`` or ``echo``."""
        found = await self.expect(r"(?:on https?://|listening on )[0-9.]+:(\d+)")
        return int(found.group(1))

    def keep_reading(self) -> None:
        """Keep collecting output in the background (so the pipe never fills)."""
        async def drain() -> None:
            while await self._readline() is not None:
                pass
        if self._reader is None:
            self._reader = asyncio.ensure_future(drain())

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.process.returncode is None:
            self.process.send_signal(sig)

    async def wait(self) -> int:
        """Wait for the exit (reading the rest of the output); return the exit status."""
        async with asyncio.timeout(WAIT):
            if self._reader is None:
                while await self._readline() is not None:
                    pass
            else:
                await self._reader
            return await self.process.wait()

    async def stop(self) -> int:
        self.signal(signal.SIGTERM)
        return await self.wait()

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()

    def rss(self) -> int:
        """The process's resident set size in bytes (``VmRSS`` of /proc/PID/status)."""
        return rss_of(self.process.pid)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``python -m rawws ARGS`` to its end; return (exit status, merged output)."""
    proc = await ServerProcess.start(*args, env=env)
    try:
        status = await proc.wait()
    finally:
        proc.kill()
    return status, proc.output


def rss_of(pid: int) -> int:
    """The resident set size of process ``pid`` in bytes (``VmRSS`` of /proc/PID/status)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def serve(*args: str, cwd: Path | None = None) -> tuple[ServerProcess, int]:
    """``python -m rawws serve --port 0 --log-level warning ARGS``, started and listening:
    the process (its output kept in the background) and its port. ``--port P`` in ``args``
    overrides the 0 (a restart on the same port). ``cwd``: another checkout of rawws to run
    (``python -m`` imports the package from there: a benchmark's "before" figures)."""
    proc = await ServerProcess.start("serve", "--port", "0", "--log-level", "warning", *args,
                                     cwd=cwd)
    try:
        port = await proc.port()
    except BaseException:
        proc.kill()
        raise
    proc.keep_reading()
    return proc, port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def raw_upgrade(port: int, path: str = "/", *,
                      headers: Sequence[tuple[str, str]] = (),
                      host: str | None = None, local_host: str | None = None) -> tuple[
        asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Open a TCP connection, send an upgrade request (``Host: host``, default
    127.0.0.1:PORT), read the response head. ``local_host``: the client's own address
    (another loopback address, 127.0.0.2, is another client to the server)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=None if local_host is None else (local_host, 0))
    lines = [f"GET {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in headers)]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    async with asyncio.timeout(WAIT):
        head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, head
