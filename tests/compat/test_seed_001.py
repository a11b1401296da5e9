"""Seed 001 (a websockets tutorial) run unchanged with ``import rawws as websockets``, and, as
the reference, with websockets itself: the same client drives both and sees the same things.

The programs are read from the tutorial's text at test time (``RAWWS_SEEDS``, default
``/work/shared/seeds``; the tests are skipped where it is absent): the tutorial's code stays
its own and is not copied into the project. Each program is run as its own process with three
substitutions, the only ones: ``import websockets`` becomes ``import rawws as websockets``, its
fixed port 8765 becomes a free port, and ``localhost`` becomes ``127.0.0.1`` (tests bind to
127.0.0.1 on a free port). Each is driven by a client over a real socket, as the tutorial
shows, and its output is checked against what the tutorial says it prints.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import rawws

from ..processes import ROOT, WAIT, free_port

SEEDS = Path(os.environ.get("RAWWS_SEEDS", "/work/shared/seeds"))
SEED = next(iter(sorted(SEEDS.glob("001_*.txt"))), None) if SEEDS.is_dir() else None

pytestmark = pytest.mark.skipif(SEED is None, reason=f"seed 001 not found in {SEEDS}")


def programs() -> dict[str, str]:
    """The tutorial's programs by file name: each starts at a ``# name.py`` line and runs up
    to the ``Output`` line that follows it."""
    assert SEED is not None
    text = SEED.read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for match in re.finditer(r"^# (\w+\.py)\n(.*?)(?=^Output)", text, re.S | re.M):
        found[match.group(1)] = match.group(2).rstrip() + "\n"
    return found


def prepare(source: str, port: int, library: str) -> str:
    """The program as it runs here: its port and host, and rawws for websockets if asked."""
    assert source.count("import websockets\n") == 1
    assert "8765" in source
    source = source.replace("8765", str(port)).replace('"localhost"', '"127.0.0.1"')
    if library == "rawws":
        source = source.replace("import websockets\n", "import rawws as websockets\n")
    return source


@pytest.fixture(params=["websockets", "rawws"])
def library(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Program:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def expect(self, pattern: str) -> str:
        regex = re.compile(pattern)
        for line in self.lines:
            if regex.search(line):
                return line
        assert self.process.stdout is not None
        async with asyncio.timeout(WAIT):
            while True:
                raw = await self.process.stdout.readline()
                assert raw, f"the program ended before {pattern!r}: {self.lines}"
                line = raw.decode().rstrip("\n")
                self.lines.append(line)
                if regex.search(line):
                    return line


@asynccontextmanager
async def run(name: str, port: int, library: str,
              stdin: bytes | None = None) -> AsyncIterator[Program]:
    source = prepare(programs()[name], port, library)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", source, cwd="/", env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    if stdin is not None:
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()
    program = Program(process)
    try:
        yield program
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def test_the_tutorial_has_the_programs() -> None:
    assert set(programs()) >= {"echo_server.py", "client.py", "chat_server.py",
                               "robust_server.py", "auth_server.py", "notification_server.py"}


async def test_echo_server_and_client(library: str) -> None:
    port = free_port()
    async with run("echo_server.py", port, library) as server:
        await server.expect(r"^Echo server running on ws://")
        async with run("client.py", port, library, stdin=b"Testing 123\n") as client:
            await client.expect(r"^Server says: Echo: Hello from Python client!$")
            await client.expect(r"Server says: Echo: Testing 123$")
            # Then input() meets the end of stdin: the program's own EOFError, not rawws'.
            await client.expect(r"^EOFError")
        await server.expect(r"^Received: Hello from Python client!$")
        await server.expect(r"^Received: Testing 123$")


async def test_broadcast_chat_server(library: str) -> None:
    """The tutorial's chat server has a bug: ``connected_clients -= disconnected`` inside
    ``broadcast()`` makes the name local, so the first broadcast raises UnboundLocalError.
    Under websockets and under rawws alike the handler fails, is logged, and the connection
    is closed with 1011."""
    port = free_port()
    uri = f"ws://127.0.0.1:{port}"
    async with run("chat_server.py", port, library) as server:
        await server.expect(r"^Chat server running")
        async with rawws.connect(uri) as alice:
            await server.expect(r"connected\. Total clients: 1$")
            with pytest.raises(rawws.ConnectionClosedError) as info:
                await alice.recv()
            assert info.value.code == 1011
        await server.expect(r"connection handler failed")
        await server.expect(r"UnboundLocalError: cannot access local variable "
                            r"'connected_clients'")


async def test_robust_server(library: str) -> None:
    port = free_port()
    async with run("robust_server.py", port, library) as server:
        await server.expect(r"Robust server running")
        async with rawws.connect(f"ws://127.0.0.1:{port}") as ws:
            await server.expect(r"New connection from \('127\.0\.0\.1', \d+\)")
            await ws.send("hello")
            assert await ws.recv() == "Processed: hello"
            await ws.send("x" * 10001)
            assert await ws.recv() == "Error: Message too long (max 10000 chars)"
        # async for ends quietly on a normal close: the program's ConnectionClosedOK branch
        # is not reached (with websockets either), its finally is.
        await server.expect(r"Cleanup complete for")


async def test_auth_server(library: str) -> None:
    port = free_port()
    uri = f"ws://127.0.0.1:{port}"
    async with run("auth_server.py", port, library) as server:
        await server.expect(r"Secure server running")
        async with rawws.connect(uri) as ws:
            await ws.send(json.dumps({"token": "demo-token-abc123"}))
            assert json.loads(await ws.recv()) == {"type": "auth", "status": "ok",
                                                   "username": "alice"}
            await server.expect(r"^alice authenticated successfully$")
            await ws.send("hi")
            assert await ws.recv() == "[alice] hi"
        async with rawws.connect(uri) as ws:
            await ws.send(json.dumps({"token": "wrong"}))
            assert json.loads(await ws.recv())["message"] == "Invalid token"
            with pytest.raises(rawws.ConnectionClosedError) as info:
                await ws.recv()
            assert (info.value.code, info.value.reason) == (1008, "Authentication failed")


async def test_notification_server(library: str) -> None:
    port = free_port()
    uri = f"ws://127.0.0.1:{port}"
    async with run("notification_server.py", port, library) as server:
        await server.expect(r"Notification server running")
        async with rawws.connect(uri) as subscriber, rawws.connect(uri) as publisher:
            await subscriber.send(json.dumps({"action": "subscribe", "topics": ["alerts"]}))
            assert json.loads(await subscriber.recv()) == {"type": "subscribed",
                                                           "topics": ["alerts"]}
            await publisher.send(json.dumps({"action": "publish", "topic": "alerts",
                                             "message": "disk full"}))
            note = json.loads(await subscriber.recv())
            assert (note["type"], note["topic"], note["message"]) == ("notification", "alerts",
                                                                      "disk full")
            assert json.loads(await publisher.recv()) == {"type": "published",
                                                          "topic": "alerts", "recipients": 1}
