"""Every reply counts against the per-connection outbound budget (issue 11, item 11): a client
that sends requests and never reads cannot make the server hold more for it than its
slow-consumer limit (write_limit + max_queue_bytes), whatever it asks for: a `join` with
`since=0` on a room with a long history, history pages, presence and room lists.

Measured as the RSS of a real ``rawws serve`` process (/proc/PID/status). Before replies were
bounded, eight readers that never read, each sending one `join` with `since=0` to a room
keeping 1,000 messages of 16 KB, made the server hold 152 MiB (16 MB each, for as long as
they stayed connected), against a slow-consumer limit of 1.06 MiB each.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ..processes import ServerProcess, serve
from .e2e import WAIT
from .hostile import RawClient, scrape_metrics

EMOJI = "\U0001F600"
READERS = 8
WRITE_LIMIT = 64 * 1024
MiB = 2**20
SLACK = 8 * MiB  # the interpreter's own noise between two readings


async def until_received(port: int, count: float) -> dict[str, float]:
    """Wait (bounded) until the server has handled ``count`` WebSocket messages in all."""
    async with asyncio.timeout(WAIT):
        while True:
            found = await scrape_metrics(port)
            if found["rawws_messages_received_total"] >= count:
                return found
            await asyncio.sleep(0.01)


async def stop(server: ServerProcess) -> None:
    server.kill()
    await server.wait()


@pytest.mark.parametrize(("queue", "reply", "pages"), [
    (1 * MiB, None, 2),  # the defaults: 1 MiB queue, 256 KiB replies
    (8 * MiB, 1 * MiB, 6),  # budgets big enough that what is held shows in RSS
])
async def test_a_reader_that_never_reads_costs_at_most_its_slow_consumer_limit(
        queue: int, reply: int | None, pages: int) -> None:
    budget = WRITE_LIMIT + queue
    sizes = ["--max-queue-bytes", str(queue)] + (["--max-reply-bytes", str(reply)]
                                                 if reply else [])
    # A room keeping 1,000 messages of 16 KB (4-byte characters). The stalled readers are
    # never dropped during the test (a long grace): only the budget bounds them.
    server, port = await serve("--history-size", "1000", "--slow-consumer-grace", "600",
                               "--rate", "1e6", "--burst", "1e6", "--no-compression", *sizes)
    try:
        filler = await RawClient.welcomed(port, "filler")
        await filler.request([{"type": "join", "room": "big"}] + [
            {"type": "message", "room": "big", "content": EMOJI * 4000} for _ in range(1000)])
        # Warm-up: a reader that reads takes a big join and a page, then leaves.
        reader = await RawClient.welcomed(port, "reader")
        await reader.request([{"type": "join", "room": "big", "since": 0},
                              {"type": "history", "room": "big", "since": 0}])
        reader.close()
        received = (await scrape_metrics(port))["rawws_messages_received_total"]
        base = server.rss()
        stalled = [await RawClient.open(port, f"/ws?user_id=s{i}", receive_buffer=4096)
                   for i in range(READERS)]
        # Each asks for a big join and some pages, under its budget: it stays connected and
        # the server holds all of it. Nothing is read, not even the welcome.
        asks: list[Any] = [{"type": "join", "room": "big", "since": 0},
                           *({"type": "history", "room": "big", "since": n * 60}
                             for n in range(pages)),
                           {"type": "presence", "users": [f"s{i}" for i in range(100)]},
                           {"type": "rooms"}]
        for client in stalled:
            await client.send_all(asks)
        received += READERS * len(asks)
        found = await until_received(port, received)
        held = server.rss() - base
        assert found.get('rawws_closes_total{code="1013"}', 0) == 0
        assert held <= READERS * budget + SLACK, f"held {held / MiB:.1f} MiB"
        if queue > 1 * MiB:
            # The kernel's socket buffers took their part; the rest waits in the server.
            assert found["rawws_queued_messages"] >= READERS
            assert held >= READERS * 2 * MiB, f"held {held / MiB:.1f} MiB"
        # Asking for more than the budget closes the reader (1013), and frees its queue.
        for client in stalled:
            await client.send_all([{"type": "history", "room": "big", "since": n}
                                   for n in range(0, 1000, 50)])
        found = await until_received(port, received + READERS * 20)
        assert found['rawws_closes_total{code="1013"}'] == READERS
        assert found["rawws_queued_messages"] == 0
        assert server.rss() - base <= READERS * budget + SLACK
        for client in stalled:
            client.close()
        filler.close()
    finally:
        await stop(server)
