"""Budgets count real memory (issue 11, item 7): a real ``rawws serve`` process attacked with
many small entries of 4-byte UTF-8 characters grows its resident memory (RSS, read from
/proc/PID/status) by at most 1.5x the configured offline-inbox or room-history budget.

Before the budgets counted bytes of memory, a 16 MiB inbox budget let RSS grow by about 16x
(one small item for each of many users: the dicts, not the text, held the memory). Nothing
here is timed; the attacks are bounded in count, the waits only hang guards.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ..processes import ServerProcess, serve
from .hostile import RawClient, scrape_metrics

BUDGET = 16 * 1024 * 1024
BOUND = 1.5 * BUDGET
EMOJI = "\U0001F600"  # 4 bytes of UTF-8, one character
FAST = ("--rate", "1e9", "--burst", "1e9", "--no-compression")


def private(target: str, n: int) -> dict[str, Any]:
    return {"type": "private", "target": target, "content": EMOJI * (1 + n % 4)}


@pytest.mark.parametrize("per_user", [1, 100])
async def test_offline_inboxes_stay_within_their_budget_in_rss(per_user: int) -> None:
    total = 120_000 if per_user == 1 else 160_000
    server, port = await serve("--inbox-max-bytes", "16MiB", *FAST)
    try:
        client = await RawClient.welcomed(port, "attacker")
        # Warm-up: the connection's buffers and the first inboxes, before the baseline.
        await client.request([private(f"warm{n}", n) for n in range(2000)])
        base = server.rss()
        await client.request([private(f"u{n // per_user}", n) for n in range(total)])
        grown = server.rss() - base
        found = await scrape_metrics(port)
        # The attack landed: the budget is full of small items and the rest was dropped.
        assert found["rawws_inbox_items"] >= 20_000, found
        assert found['rawws_dropped_total{reason="inbox_full"}'] > 0
        assert found["rawws_inbox_bytes"] <= BUDGET
        assert grown <= BOUND, f"RSS grew {grown / 2**20:.1f} MiB for a 16 MiB budget"
        client.close()
    finally:
        await stop(server)


async def test_room_history_stays_within_its_budget_in_rss() -> None:
    rooms_per_client, clients, per_client = 50, 20, 8_000
    server, port = await serve("--history-max-bytes", "16MiB", *FAST)
    try:
        attackers = [await RawClient.welcomed(port, f"attacker{c}") for c in range(clients)]

        def rooms(c: int) -> list[str]:
            return [f"r{c}-{i}" for i in range(rooms_per_client)]

        def posts(c: int, count: int) -> list[dict[str, Any]]:
            names = rooms(c)
            return [{"type": "message", "room": names[n % len(names)],
                     "content": EMOJI * (1 + n % 4)} for n in range(count)]

        await asyncio.gather(*(a.request([{"type": "join", "room": r} for r in rooms(c)]
                                         + posts(c, 200))
                               for c, a in enumerate(attackers)))
        base = server.rss()
        await asyncio.gather(*(a.request(posts(c, per_client))
                               for c, a in enumerate(attackers)))
        grown = server.rss() - base
        found = await scrape_metrics(port)
        assert found["rawws_rooms"] == rooms_per_client * clients
        assert found["rawws_history_bytes"] <= BUDGET
        assert found["rawws_history_bytes"] >= BUDGET - 4096  # full: the budget trimmed
        assert grown <= BOUND, f"RSS grew {grown / 2**20:.1f} MiB for a 16 MiB budget"
        for a in attackers:
            a.close()
    finally:
        await stop(server)


async def stop(server: ServerProcess) -> None:
    server.kill()
    await server.wait()
