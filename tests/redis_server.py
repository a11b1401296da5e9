"""A real ``redis-server`` for the tests that need one: started on a free port of 127.0.0.1 in
a temporary directory, with AOF on (so a restart finds what was acknowledged), stopped by its
PID. Never the system's service, never a shared instance: each test gets its own.

Fixtures (importable by any test module, and by ``tests/conftest.py`` for every test):

* ``redis_server``: a running :class:`RedisServer`, stopped after the test.
* ``redis_url``: its ``redis://127.0.0.1:PORT/0``.

When ``redis-server`` or the ``redis`` Python package (``pip install -e '.[redis]'``) is missing
the test is skipped with the reason, so that ``make test`` stays green on a machine without them;
with ``RAWWS_REDIS_TESTS=require`` (``make test-redis``, CI) a missing piece fails instead.

Every wait is polled against a deadline (a hang guard, never a performance assertion).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Hang guard for any one wait on a redis-server.
WAIT = 30.0
REQUIRE_ENV = "RAWWS_REDIS_TESTS"


def server_binary() -> str | None:
    configured = os.environ.get("RAWWS_REDIS_SERVER")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None)


def missing_piece() -> str | None:
    """Why the Redis tests cannot run here, or None."""
    try:
        import redis.asyncio  # noqa: F401
    except ImportError:
        return ("the Python package redis is not installed "
                "(make test-redis installs it: pip install -e '.[redis]')")
    if server_binary() is None:
        return "redis-server not found (scripts/install_redis.sh installs it)"
    return None


def require_redis() -> None:
    """Skip the calling test when Redis is missing, or fail it under RAWWS_REDIS_TESTS=require."""
    reason = missing_piece()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "require":
        pytest.fail(f"{REQUIRE_ENV}=require but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(port: int, line: bytes, timeout: float = 1.0) -> bytes | int | list[object] | None:
    """Send one inline command; return its reply: bytes for a status or bulk string, an int,
    a list for an array, None for a nil. An error reply raises RuntimeError."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(line + b"\r\n")
        return _Reply(sock).read()


class _Reply:
    """Just enough RESP2 to read one reply (test set-up and checks, never a hot path)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis-server closed the connection")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis-server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size + 2:]
        return data

    def read(self) -> bytes | int | list[object] | None:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            return None if int(rest) < 0 else self._exactly(int(rest))
        if kind == b"*":
            return None if int(rest) < 0 else [self.read() for _ in range(int(rest))]
        raise ValueError(f"not a RESP reply: {line[:80]!r}")


class RedisServer:
    """One ``redis-server`` process. :meth:`start` waits until it answers PING."""

    def __init__(self, directory: Path, port: int | None = None, *,
                 appendfsync: str = "everysec", appendonly: bool = True,
                 extra: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.port = port or _free_port()
        self.appendfsync = appendfsync
        self.appendonly = appendonly
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> RedisServer:
        binary = server_binary()
        assert binary is not None, missing_piece()
        for _ in range(5):  # the free port may be taken between the probe and the bind
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", str(self.directory), "--daemonize", "no",
                 "--appendonly", "yes" if self.appendonly else "no",
                 "--appendfsync", self.appendfsync,
                 "--appendfilename", "appendonly.aof", "--save", "",
                 "--logfile", str(self.directory / "redis.log"), "--protected-mode", "yes",
                 *self.extra],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait_ready():
                return self
            self.process.kill()
            self.process.wait()
            if "Address already in use" not in self.log:
                break
            self.port = _free_port()
        raise RuntimeError(f"redis-server did not start:\n{self.log[-2000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            try:
                if _command(self.port, b"PING") == b"PONG":
                    return True
            except RuntimeError as exc:  # -LOADING while the AOF is read back: not yet
                if "NOAUTH" in str(exc):
                    return True  # up, and wants a password (requirepass)
            except OSError:
                pass
            time.sleep(0.01)  # polling for readiness, bounded by the deadline
        return False

    def ping(self) -> bool:
        try:
            return _command(self.port, b"PING") == b"PONG"
        except (OSError, RuntimeError):
            return False

    def command(self, *words: str) -> bytes | int | list[object] | None:
        """A one-line command (for test set-up and checks, never on a hot path)."""
        return _command(self.port, " ".join(words).encode(), timeout=WAIT)

    # --- what outage tests do to it ---------------------------------------------------------

    def pause(self) -> None:
        """SIGSTOP: the process is frozen; connections stay open and get no answer."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL (continued first if paused): gone at once, AOF as it was written."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
            self.process.wait(timeout=WAIT)

    def restart(self) -> RedisServer:
        """Start again on the same port and directory (the AOF is read back)."""
        self.kill()
        return self.start()

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL if it does not exit within the hang guard."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)  # a paused server cannot exit
            process.terminate()
        try:
            process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=WAIT)


@contextlib.contextmanager
def running_redis(**options: object) -> Iterator[RedisServer]:
    """A RedisServer in its own temporary directory, stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="rawws-redis-") as directory:
        server = RedisServer(Path(directory), **options)  # type: ignore[arg-type]
        try:
            yield server.start()
        finally:
            server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    require_redis()
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url
