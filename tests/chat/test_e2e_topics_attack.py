"""Wildcard subscriptions cannot make publishing expensive for everyone (issue 11, item 9).

The attack: patterns like ``{a,*}.{a,*}....b`` (15 levels), every one of them matching
``a.a....a.b``. The old trie explored both branches at every level, so 25,000 of them from a
few connections stalled the event loop 1.5 s per 60 publishes. Now a publish costs one lookup
per pattern *shape*, and shapes are capped server-wide, as are a pattern's depth and wildcards
and the subscriptions in all. The caps are attacked over real sockets (clear errors, the
connection kept), and the work per publish is asserted as lookups counted by the index, never
as time.
"""

from __future__ import annotations

import itertools
from typing import Any

import rawws

from .e2e import Limits, eventually, request, running, user

LEVELS = 15


def attack_patterns(max_stars: int) -> list[str]:
    """Every ``{a,*}^15.b`` with at most ``max_stars`` stars: each its own shape."""
    out = []
    for stars in range(max_stars + 1):
        for where in itertools.combinations(range(LEVELS), stars):
            out.append(".".join("*" if i in where else "a" for i in range(LEVELS)) + ".b")
    return out


TOPIC = ".".join(["a"] * LEVELS) + ".b"


async def still_open(ws: rawws.ClientConnection) -> None:
    assert (await request(ws, {"type": "ping", "id": "alive"})) == {"type": "pong",
                                                                    "id": "alive"}


async def subscribe(ws: rawws.ClientConnection, topics: list[str]) -> Any:
    return await request(ws, {"type": "subscribe", "topics": topics, "id": 1})


async def test_shapes_budget_bounds_the_work_of_every_publish() -> None:
    limits = Limits()
    patterns = attack_patterns(limits.max_pattern_wildcards)  # 1,941 shapes
    async with running() as server:
        attackers = [await user(server, f"m{i}") for i in range(20)]
        accepted: list[str] = []
        refused = 0
        holders = set()
        chunks = [patterns[i:i + 50] for i in range(0, len(patterns), 50)]
        for i, chunk in enumerate(chunks[: 2 * len(attackers)]):
            ws = attackers[i // 2]
            reply = await subscribe(ws, chunk)
            if reply["type"] == "subscribed":
                accepted += chunk
                holders.add(i // 2)
            else:
                assert reply["code"] == "forbidden", reply
                assert reply["message"].startswith(
                    "too many distinct wildcard pattern shapes on this server (max 256")
                refused += 1
                await still_open(ws)
        index = server.router.index
        assert index.wildcard_shapes <= limits.max_pattern_shapes
        assert len(accepted) == 250 and refused > 30  # 5 requests of 50 fit, then no more
        # The publish: every accepted pattern matches; the work is one lookup per shape.
        publisher = await user(server, "publisher")
        before = index.probes
        for _ in range(60):
            reply = await request(publisher, {"type": "publish", "topic": TOPIC,
                                              "message": "x"})
            assert reply["recipients"] == len(holders)
        per_publish = (index.probes - before) / 60
        assert per_publish <= limits.max_pattern_shapes + 2
        assert per_publish >= len(accepted)  # each accepted shape was looked up
        # Literal topics and patterns of shapes in use stay open to everyone.
        bystander = await user(server, "bystander")
        assert (await subscribe(bystander, ["a.b.c", TOPIC,
                                            accepted[7]]))["type"] == "subscribed"
        for ws in attackers:  # they never read their notifications: no closing handshake
            assert ws.transport is not None
            ws.transport.abort()
        await publisher.close()
        await bystander.close()


async def test_pattern_depth_and_wildcards_are_capped() -> None:
    async with running(limits=Limits(max_pattern_depth=8)) as server:
        alice = await user(server, "alice")
        reply = await subscribe(alice, ["a.b.c.d.e.f.g.h.i"])
        assert (reply["code"], reply["message"]) == (
            "too_large", "topic pattern 'a.b.c.d.e.f.g.h.i' has 9 segments (max 8)")
        await still_open(alice)
        # One pattern over the cap refuses the request: nothing is subscribed.
        reply = await subscribe(alice, ["ok.*", "*.*.*.*.*.b"])
        assert (reply["code"], reply["message"]) == (
            "too_large", "topic pattern '*.*.*.*.*.b' has 5 wildcards (max 4)")
        assert len(server.router.index) == 0
        await still_open(alice)
        assert (await subscribe(alice, ["*.*.*.*.b", "ok.*"]))["type"] == "subscribed"
        assert sorted(server.router.index.patterns()) == ["*.*.*.*.b", "ok.*"]
        await alice.close()


async def test_the_server_wide_subscription_budget() -> None:
    async with running(limits=Limits(max_patterns=250)) as server:
        users = [await user(server, f"u{i}") for i in range(3)]
        for i, ws in enumerate(users[:2]):
            for half in (0, 50):
                reply = await subscribe(ws, [f"t{i}.n{j}" for j in range(half, half + 50)])
                assert reply["type"] == "subscribed"
        reply = await subscribe(users[2], [f"t2.n{j}" for j in range(51)])
        assert (reply["code"], reply["message"]) == (
            "forbidden", "the server's subscription budget is full (max 250 subscriptions)")
        await still_open(users[2])
        reply = await subscribe(users[2], [f"t2.n{j}" for j in range(50)])
        assert reply["type"] == "subscribed"
        assert len(server.router.index) == 250
        await users[0].close()  # its 100 subscriptions go with it
        await eventually(lambda: len(server.router.index) == 150)
        assert (await subscribe(users[2], ["more"]))["type"] == "subscribed"
        for ws in users[1:]:
            await ws.close()
