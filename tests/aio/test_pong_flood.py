"""Issue 11 item 12, proven by an attack on a real ``rawws echo``: a peer that sends pings and
never reads cannot make the server queue pongs without bound. The server's RSS is measured
(``/proc/PID/status``, bytes) before and after the flood; before the fix it grew by about
60 MiB per 500,000 pings (every pong queued in the transport's buffer).

Synchronisation, without sleeping: the flood is over for the server once the kernel holds none
of its bytes (the client's send queue, SIOCOUTQ, and the server socket's receive queue in
/proc/net/tcp are both empty), and a round trip on a second connection then proves the read
that took the last of them has been handled (callbacks run one after the other).
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="Linux /proc needed")

ROOT = Path(__file__).resolve().parents[2]
PINGS = 200_000
KEY = b"\x01\x02\x03\x04"
#: RSS growth allowed for the whole flood: the transport's high-water mark (64 KiB), one read's
#: worth of pongs, and the allocator's slack. Queuing every pong grows by 24 MiB (127 bytes
#: each) and more.
BOUND = 8 * 1024 * 1024
HANG_GUARD = 120.0


def _masked(opcode: int, payload: bytes) -> bytes:
    unmasked = bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + KEY + unmasked


def _upgrade(port: int, *, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect
    sock.settimeout(HANG_GUARD)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: nothing after the head is taken
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def _echo(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_masked(0x2, payload))
    data = b""
    while len(data) < 2 + len(payload):
        data += sock.recv(4096)
    assert data == bytes([0x82, len(payload)]) + payload


def _rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)) * 1024  # type: ignore[union-attr]


def _receive_queue(local_port: int, remote_port: int) -> int | None:
    """The receive queue of the TCP socket (local, remote) from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)) == (local_port,
                                                                            remote_port):
            return int(fields[4].split(":")[1], 16)
    return None


def _send_queue(sock: socket.socket) -> int:
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]


def _wait_until_read(sock: socket.socket, server_port: int) -> None:
    """Until the kernel holds none of the bytes ``sock`` sent (a bounded wait for a state)."""
    client_port = sock.getsockname()[1]
    deadline = time.monotonic() + HANG_GUARD
    while _send_queue(sock) or _receive_queue(server_port, client_port):
        assert time.monotonic() < deadline, "the server stopped reading"
        time.sleep(0.01)


@pytest.fixture
def echo() -> Iterator[tuple[int, int]]:
    process = subprocess.Popen([sys.executable, "-m", "rawws", "echo", "--host", "127.0.0.1",
                                "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        port = None
        for line in process.stdout:
            found = re.search(r"listening on [0-9.]+:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        assert port is not None, "rawws echo did not start"
        yield process.pid, port
    finally:
        process.terminate()
        process.wait(timeout=HANG_GUARD)


def test_a_ping_flood_from_a_peer_that_never_reads(echo: tuple[int, int]) -> None:
    pid, port = echo
    witness = _upgrade(port)
    attacker = _upgrade(port, rcvbuf=4096)  # reads nothing, with a small window
    _echo(witness, b"before")
    before = _rss(pid)

    flood = _masked(0x9, bytes(range(125))) * 10_000  # the largest control frames
    for _ in range(PINGS // 10_000):
        attacker.sendall(flood)
    _wait_until_read(attacker, port)
    _echo(witness, b"after")  # the read with the last pings has been handled
    growth = _rss(pid) - before

    assert growth < BOUND, f"RSS grew by {growth / 2**20:.1f} MiB for {PINGS} pings"
    attacker.close()
    witness.close()
