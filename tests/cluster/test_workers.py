"""``rawws serve --workers N``: N processes on one port (SO_REUSEPORT) that are one server
through the broker, supervised: a dead worker is restarted, SIGTERM stops them all, and a
supervisor that dies takes its workers with it."""

from __future__ import annotations

import os
import re
import signal

import pytest

from rawws.chat.workers import cpu_count
from tests.chat.e2e import closed
from tests.processes import ServerProcess
from tests.redis_server import RedisServer

from .nodes import Node, eventually, joined, recv_type, request, send

pytestmark = pytest.mark.redis

READY = r"rawws serve: (\d+) workers \(pids ([\d, ]+)\) on http://127\.0\.0\.1:(\d+)"


async def supervisor(broker: str, workers: str = "2", *args: str
                     ) -> tuple[ServerProcess, Node, list[int]]:
    proc = await ServerProcess.start("serve", "--port", "0", "--log-level", "warning",
                                     "--workers", workers, "--broker", broker, *args)
    try:
        found = await proc.expect(READY)
    except BaseException:
        proc.kill()
        raise
    proc.keep_reading()
    pids = [int(pid) for pid in found.group(2).split(", ")]
    assert len(pids) == int(found.group(1))
    return proc, Node(proc, int(found.group(3))), pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not serving anyone
        return stat.read().split(") ", 1)[1][0] != "Z"


def nodes_holding(redis: RedisServer, connection_ids: set[str]) -> dict[str, set[str]]:
    """Which node (worker) announced which of these connections, as Redis has it."""
    found: dict[str, set[str]] = {}
    nodes = redis.command("ZRANGE", "rawws:nodes", "0", "-1")
    assert isinstance(nodes, list)
    for node in nodes:
        assert isinstance(node, bytes)
        conns = redis.command("HKEYS", f"rawws:node:{node.decode()}")
        assert isinstance(conns, list)
        mine = {c.decode() for c in conns if isinstance(c, bytes)} & connection_ids
        if mine:
            found[node.decode()] = mine
    return found


async def test_two_workers_share_one_port_and_are_one_server(
        redis_server: RedisServer) -> None:
    proc, node, pids = await supervisor(redis_server.url)
    try:
        clients = [await node.user(f"u{i}") for i in range(16)]
        ids = {welcome["connection_id"] for _, welcome in clients}

        def spread() -> bool:
            return len(nodes_holding(redis_server, ids)) == 2

        await eventually(spread, what="connections on both workers")
        holders = nodes_holding(redis_server, ids)
        assert sum(len(conns) for conns in holders.values()) == 16
        first, second = (sorted(conns)[0] for conns in holders.values())
        by_id = {welcome["connection_id"]: ws for ws, welcome in clients}
        sender, receiver = by_id[first], by_id[second]
        await joined(receiver, "crossing")
        await joined(sender, "crossing")
        await send(sender, {"type": "message", "room": "crossing", "content": "hop", "id": 1})
        sent = await recv_type(sender, "message")  # (a user_joined may come first)
        got = await recv_type(receiver, "message")
        assert got["content"] == "hop" and got["seq"] == sent["seq"] == 1
        for ws, _ in clients:
            await ws.close()
    finally:
        assert await proc.stop() == 0
    for pid in pids:
        assert not alive(pid)


async def test_a_worker_that_dies_is_restarted_and_sigterm_stops_them_all(
        redis_server: RedisServer) -> None:
    proc, node, pids = await supervisor(redis_server.url)
    try:
        os.kill(pids[0], signal.SIGKILL)
        await eventually(lambda: re.search(rf"worker 1 \(pid {pids[0]}\) exited with signal "
                                           r"SIGKILL .*; restarting it", proc.output),
                         what="the restart logged")
        await eventually(lambda: proc.output.count("[worker 1] rawws chat server on") == 2,
                         what="worker 1 listening again")
        assert alive(pids[1]) and not alive(pids[0])
        ws, _ = await node.user("still-served")  # whichever worker takes it
        assert (await request(ws, {"type": "ping", "id": 1}))["type"] == "pong"
        workers = children(proc.process.pid)
        assert len(workers) == 2 and pids[1] in workers and pids[0] not in workers
        proc.signal(signal.SIGTERM)
        code, _ = await closed(ws)
        assert code == 1001  # each worker closes its connections on the way out
        assert await proc.wait() == 0
    finally:
        proc.kill()
    for pid in workers:
        assert not alive(pid)


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as found:
        return [int(child) for child in found.read().split()]


async def test_workers_stop_by_themselves_when_the_supervisor_is_killed(
        redis_server: RedisServer) -> None:
    proc, _, pids = await supervisor(redis_server.url)
    proc.kill()  # SIGKILL: no chance to stop the workers
    await proc.wait()
    await eventually(lambda: not any(alive(pid) for pid in pids),
                     what="the workers gone with their supervisor")


async def test_workers_auto_starts_one_per_cpu(redis_server: RedisServer) -> None:
    proc, _, pids = await supervisor(redis_server.url, "auto")
    try:
        assert len(pids) == cpu_count()
    finally:
        assert await proc.stop() == 0
