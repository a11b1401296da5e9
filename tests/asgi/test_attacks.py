"""Memory attacks on rawws.asgi under a real uvicorn process, measured by the server's RSS.

A client that floods a connection whose application does not read (or has not accepted yet)
must stall on TCP back-pressure: the server stops reading instead of holding what it is sent.
The bound checked (8 MiB of RSS growth for a 64 MiB flood) is far above what one read and the
socket buffers cost, and far below the flood: a server that reads on fails it by 56 MiB.
uvicorn's own classes are measured the same way, their outcome written down per class.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from rawws.sansio.codes import Opcode
from tests.aio.peers import RawClient, until, upgrade_request

from .harness import WS_CLASSES  # skips the module without uvicorn

ROOT = Path(__file__).resolve().parents[2]
FLOOD = 64 * 1024 * 1024
CHUNK = 64 * 1024
BOUND = 8 * 1024 * 1024


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def start(ws: str, app: str) -> tuple[asyncio.subprocess.Process, int, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.asgi.attack_server", "--ws", ws, "--app", app, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    async with asyncio.timeout(30):
        line = (await process.stdout.readline()).decode().split()
    assert line[0] == "READY", line
    return process, int(line[1]), int(line[2])


async def flood(ws: str, app: str) -> tuple[int, str, int]:
    """RSS growth of the server while a client floods it; what became of the flood: "stalled"
    (the server stopped reading), "read" (it took all 64 MiB) or "dropped" (it closed the
    connection); and how much the client wrote."""
    process, port, pid = await start(ws, app)
    try:
        if app == "never-reads":
            client = await RawClient.connect(port)
        else:
            client = await RawClient.open(port)
            client.write(upgrade_request()[0])
        chunk = client.frame(Opcode.BINARY, b"\x00" * (CHUNK - 16))
        before = rss(pid)
        written = [0]

        async def write_all() -> None:
            for _ in range(FLOOD // CHUNK):
                client.write(chunk)
                await client.writer.drain()
                written[0] += len(chunk)

        writer = asyncio.create_task(write_all())
        # Stalled: the writer made no progress over 50 polls in a row (a server that reads on
        # lets 64 MiB through in well under a second; one that does not, stops it for good).
        seen = [-1, 0]

        def no_progress() -> bool:
            if writer.done():
                return True
            seen[1] = seen[1] + 1 if written[0] == seen[0] else 0
            seen[0] = written[0]
            return seen[1] >= 50

        await until(no_progress, timeout=60, step=0.01)
        growth = rss(pid) - before
        if not writer.done():
            outcome = "stalled"
            writer.cancel()
        else:
            outcome = "dropped" if writer.exception() is not None else "read"
        client.abort()
        return growth, outcome, written[0]
    finally:
        process.kill()  # its application never returns: uvicorn's graceful exit would wait
        await process.wait()


@pytest.mark.parametrize("app", ["never-reads", "never-accepts"])
async def test_a_flood_stalls_on_back_pressure(app: str) -> None:
    growth, outcome, written = await flood("rawws", app)
    assert outcome == "stalled", f"the server {outcome} the flood"
    assert written < FLOOD // 4
    assert growth < BOUND, f"server RSS grew by {growth / 2**20:.1f} MiB"


#: What uvicorn's classes do with the same floods (docs/asgi.md): after accepting, both pause
#: reading; before, wsproto reads (and keeps) everything, websockets-sansio drops the client.
UVICORN = {
    ("websockets-sansio", "never-reads"): "stalled",
    ("wsproto", "never-reads"): "stalled",
    ("websockets-sansio", "never-accepts"): "dropped",
    ("wsproto", "never-accepts"): "read",
}


def test_every_class_is_attacked() -> None:
    assert {ws for ws, _ in UVICORN} | {"rawws"} == set(WS_CLASSES)


@pytest.mark.parametrize(("ws", "app"), list(UVICORN))
async def test_uvicorn_classes_under_the_same_flood(ws: str, app: str) -> None:
    growth, outcome, written = await flood(ws, app)
    print(f"{ws} {app}: {outcome} after {written / 2**20:.1f} MiB, "
          f"RSS +{growth / 2**20:.1f} MiB")
    assert outcome == UVICORN[ws, app]
    if outcome == "read":
        assert growth > FLOOD // 2  # it kept what it read
    else:
        assert growth < BOUND
