"""A node killed with ``kill -9`` (no goodbye): its users' presence expires on the other node
within presence_ttl + heartbeat, their rooms see them leave, and their offline inbox is intact
(delivered again on the surviving node, since nothing was acknowledged)."""

from __future__ import annotations

import json
import time

import pytest

from tests.redis_server import RedisServer

from .nodes import cluster, eventually, joined, recv, recv_type, request

pytestmark = pytest.mark.redis

PRESENCE_TTL = 2.0
HEARTBEAT = 0.5


async def test_a_killed_nodes_users_expire_and_their_inbox_survives(
        redis_server: RedisServer) -> None:
    broker = f"{redis_server.url}?presence_ttl={PRESENCE_TTL:g}&heartbeat={HEARTBEAT:g}"
    async with cluster(broker) as (a, b):
        alice, _ = await a.user("alice")
        await joined(alice, "r")
        # dave has two items waiting; he is connected to B, has received them, not acked.
        for n in range(2):
            status, _, body = await a.http("POST", "/api/notify/dave", {"message": n})
            assert status == 200 and body["status"] == "queued", body
        dave, welcome = await b.user("dave")
        assert welcome["offline_items"] == 2
        ids = [(await recv(dave))["message_id"] for _ in range(2)]
        bob, _ = await b.user("bob")
        await joined(bob, "r")
        assert (await recv_type(alice, "user_joined"))["user_id"] == "bob"

        async def online(*names: str) -> dict[str, bool]:
            reply = await request(alice, {"type": "presence", "users": list(names), "id": 1})
            result: dict[str, bool] = reply["online"]
            return result

        assert await online("bob", "dave") == {"bob": True, "dave": True}

        b.process.kill()  # SIGKILL: no goodbye to the cluster
        killed = time.monotonic()
        left = await recv_type(alice, "user_left", timeout=30)
        expired = time.monotonic() - killed
        assert left["user_id"] == "bob" and left["users"] == ["alice"]
        assert await online("bob", "dave") == {"bob": False, "dave": False}
        _, _, body = await a.http("GET", "/api/users/online")
        assert body["users"] == ["alice"]
        print(json.dumps({"presence_expired_after_s": round(expired, 2),
                          "bound_s": PRESENCE_TTL + HEARTBEAT}))
        # The bound documented (docs/scaling.md), plus scheduling slack on a shared machine.
        assert expired <= PRESENCE_TTL + HEARTBEAT + 2.0

        # dave comes back on A: both items, not acknowledged, are there.
        dave, welcome = await a.user("dave")
        assert welcome["offline_items"] == 2
        assert [(await recv(dave))["message_id"] for _ in range(2)] == ids
        # The killed node is gone from Redis too (a node starting now does not load it).
        await eventually(lambda: redis_server.command("ZCARD", "rawws:nodes") == 1)
