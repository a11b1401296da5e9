"""One client cannot fill the server-wide room table (issue 11, item 10): an address, or a
user, may have created only so many rooms that still exist; a room with no members and no
history ends at once. Attacked over real sockets on a real ``rawws serve`` process with its
default limits: one address opening 200 connections that join 50 new rooms each (10,000
rooms asked for; before the caps, all of them were created, a tenth of a second's work).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

from ..processes import ServerProcess, serve
from .e2e import WAIT
from .hostile import RawClient, scrape_metrics

QUOTA = "this address has created too many rooms that still exist (max 1000)"


async def rooms_alive(port: int) -> int:
    return int((await scrape_metrics(port))["rawws_rooms"])


async def until_rooms(port: int, count: int) -> None:
    """Wait (bounded) until the server's room gauge shows ``count``: closes are handled by
    the server in its own time."""
    async with asyncio.timeout(WAIT):
        while await rooms_alive(port) != count:
            await asyncio.sleep(0.01)


async def stop(server: ServerProcess) -> None:
    server.kill()
    await server.wait()


async def test_one_address_cannot_fill_the_room_table() -> None:
    server, port = await serve()
    try:
        attackers = [await RawClient.welcomed(port, f"m{c}") for c in range(200)]
        replies = [a.keep_all() for a in attackers]
        await asyncio.gather(*(
            a.request([{"type": "join", "room": f"r{c}-{i}"} for i in range(50)])
            for c, a in enumerate(attackers)))
        kinds: Counter[tuple[str, str]] = Counter()
        for got in replies:
            for payload in got:
                event = json.loads(payload)
                kinds[event["type"], event.get("message", "")] += 1
        assert kinds == {("joined", ""): 1000, ("error", QUOTA): 9000}
        assert await rooms_alive(port) == 1000
        # The refused connections are still open and answer.
        await attackers[-1].request(['{"type": "ping", "id": 1}'])
        assert json.loads(attackers[-1].last[-1]) == {"type": "pong", "id": 1}
        # Another address still creates rooms; this one may again once its rooms are gone.
        other = await RawClient.welcomed(port, "bystander", local_host="127.0.0.2")
        await other.request([{"type": "join", "room": "fresh"}])
        assert json.loads(other.last[-1])["type"] == "joined"
        for a in attackers:
            a.close()
        await until_rooms(port, 1)  # no members, no history: every attacker room ended
        again = await RawClient.welcomed(port, "m0")
        await again.request([{"type": "join", "room": "r0-0"}])
        assert json.loads(again.last[-1])["type"] == "joined"
        again.close()
        other.close()
    finally:
        await stop(server)


async def test_one_user_cannot_fill_the_room_table_from_many_addresses() -> None:
    server, port = await serve("--max-rooms-per-user", "5")
    try:
        here = await RawClient.welcomed(port, "mallory")
        there = await RawClient.welcomed(port, "mallory", local_host="127.0.0.3")
        await here.request([{"type": "join", "room": f"a{i}"} for i in range(3)])
        await there.request([{"type": "join", "room": f"b{i}"} for i in range(3)])
        refused = json.loads(there.last[-1])
        assert refused["code"] == "forbidden"
        assert refused["message"] == ("you have created too many rooms that still exist "
                                      "(max 5)")
        assert await rooms_alive(port) == 5
        # Joining rooms that exist is not creating: still allowed.
        await there.request([{"type": "join", "room": "a0"}])
        assert json.loads(there.last[-1])["type"] == "joined"
        # Leaving a room with no history ends it, and gives the quota back.
        await here.request([{"type": "leave", "room": "a1"}, {"type": "join", "room": "c"}],
                           replies=2)
        assert [json.loads(p)["type"] for p in here.last[-2:]] == ["left", "joined"]
        here.close()
        there.close()
    finally:
        await stop(server)
