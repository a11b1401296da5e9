"""End to end under load: hundreds of clients in one room, and slow consumers.

Bounded in count (connections, messages) and guarded by generous timeouts; nothing here asserts
on how long anything took. The slow-consumer tests run on the virtual clock of rawws.testing
(in-memory network, 4 KiB kernel buffers for the stalled reader): the grace between the 1013 and
the drop is the real default, checked to the instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

import pytest

import rawws
from rawws.chat.server import ChatConfig, ChatServer
from rawws.testing import VirtualEventLoop, idle

from .e2e import WAIT, Limits, closed, connect, eventually, recv, request, running, user

CLIENTS = 300
SENDERS = 3
PER_SENDER = 20


async def test_hundreds_of_clients_receive_every_message_in_order() -> None:
    limits = Limits(max_connections_per_ip=CLIENTS + 10, rate=1000.0, burst=1000.0)
    async with running(limits=limits) as server:
        clients = []
        for i in range(CLIENTS):
            ws = await user(server, f"u{i}", "/ws/chat/big")
            joined = await recv(ws)
            assert joined["type"] == "joined" and joined["user_count"] == i + 1
            clients.append(ws)
        received: list[list[dict[str, Any]]] = [[] for _ in clients]
        total = SENDERS * PER_SENDER

        async def read(i: int, ws: rawws.ClientConnection) -> None:
            while len(received[i]) < total:
                event = json.loads(await ws.recv())
                if event["type"] == "message":
                    received[i].append(event)

        readers = [asyncio.ensure_future(read(i, ws)) for i, ws in enumerate(clients)]
        for n in range(PER_SENDER):
            for s in range(SENDERS):
                await clients[s].send(json.dumps(
                    {"type": "message", "content": {"sender": s, "n": n}}))
        async with asyncio.timeout(120):
            await asyncio.gather(*readers)
        expected_seqs = list(range(1, total + 1))
        for i, events in enumerate(received):
            assert [e["seq"] for e in events] == expected_seqs, i
            for s in range(SENDERS):
                mine = [e["content"]["n"] for e in events if e["content"]["sender"] == s]
                assert mine == list(range(PER_SENDER)), (i, s)
                assert all(e["user_id"] == f"u{s}" for e in events
                           if e["content"]["sender"] == s)
        # Every recipient got the same bytes: one serialization per message.
        assert server.metrics.messages_sent >= CLIENTS * total
        await asyncio.gather(*(ws.close() for ws in clients))


async def slow_client(server: ChatServer, path: str) -> rawws.ClientConnection:
    """A client with a tiny receive buffer (4 KiB) that reads only when asked to."""
    if isinstance(asyncio.get_running_loop(), VirtualEventLoop):
        ws = await rawws.connect(server.url + path, compression=None, max_queue=1,
                                 ping_interval=None)
        assert ws.transport is not None
        ws.transport.set_buffer_size(4096)  # type: ignore[attr-defined]
        return ws
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    return await rawws.connect(server.url + path, sock=sock, compression=None, max_queue=1,
                               ping_interval=None)


async def stalled_subscriber(server: ChatServer, topic: str) -> rawws.ClientConnection:
    """A client that stops reading: tiny receive buffer, and it never calls recv()."""
    ws = await slow_client(server, "/ws?user_id=stalled")
    await recv(ws)
    assert (await request(ws, {"type": "subscribe", "topics": [topic]}))["type"] == "subscribed"
    return ws


def peer_of(server: ChatServer, name: str) -> Any:
    for peer in server.hub.peers:
        if peer.session is not None and peer.session.user == name:
            return peer
    return None


async def run_feed(server: ChatServer, readers: list[rawws.ClientConnection], *,
                   stop: Any, after: int, limit: int) -> tuple[list[list[int]], dict[str, int]]:
    """Publish numbered notifications on "feed" while ``readers`` read at full speed. Keep going
    until ``stop()`` holds, then ``after`` more. Return what each reader got, and the largest
    memory the stalled peer held on the server (transport buffer, queue length and bytes)."""
    publisher = await user(server, "publisher")
    got: list[list[int]] = [[] for _ in readers]
    worst = {"buffer": 0, "queue": 0, "queued_bytes": 0}

    async def read(i: int, ws: rawws.ClientConnection) -> None:
        with contextlib.suppress(rawws.ConnectionClosed):
            async for raw in ws:
                event = json.loads(raw)
                if event["type"] == "notification":
                    got[i].append(event["message"]["n"])

    tasks = [asyncio.ensure_future(read(i, ws)) for i, ws in enumerate(readers)]
    payload = "x" * 2000
    sent = 0
    remaining = None
    while remaining != 0:
        assert sent < limit, "the slow consumer was never shed"
        reply = await request(publisher, {"type": "publish", "topic": "feed",
                                          "message": {"n": sent, "pad": payload}})
        assert reply["type"] == "published"
        sent += 1
        peer = peer_of(server, "stalled")
        if peer is not None:
            worst["buffer"] = max(worst["buffer"], peer.ws.write_buffer_size)
            worst["queue"] = max(worst["queue"], len(peer.queue))
            worst["queued_bytes"] = max(worst["queued_bytes"], peer.queued_bytes)
        if remaining is None and stop():
            remaining = after
        elif remaining is not None:
            remaining -= 1
        if sent % 20 == 0:  # the fast readers keep up: wait for them, not for the stalled one
            await eventually(lambda n=sent: all(len(g) == n for g in got))  # type: ignore[misc]
    await eventually(lambda: all(len(g) == sent for g in got))
    for task in tasks:
        task.cancel()
    await publisher.close()
    return got, worst


@pytest.mark.virtual_clock
async def test_stalled_reader_is_closed_1013_dropped_after_the_grace_others_unaffected(
        ) -> None:
    limits = Limits(rate=1e6, burst=1e6, max_queue=64, max_queue_bytes=256 * 1024)
    write_limit = 64 * 1024
    grace = ChatConfig().slow_consumer_grace
    # close_timeout and keepalive cannot end the connection during this test: only the
    # slow-consumer abort can.
    async with running(limits=limits, write_limit=write_limit, close_timeout=600.0) as server:
        stalled = await stalled_subscriber(server, "feed")
        stalled_peer = peer_of(server, "stalled")
        readers = [await user(server, f"r{i}") for i in range(5)]
        for ws in readers:
            await request(ws, {"type": "subscribe", "topics": ["feed"]})
        loop = asyncio.get_running_loop()
        shed_at: list[float] = []

        def shed() -> bool:
            if server.metrics.closes[1013] == 1 and not shed_at:
                shed_at.append(loop.time())
            return bool(shed_at)

        got, worst = await run_feed(server, readers, stop=shed, after=200, limit=20_000)
        sent = len(got[0])
        for numbers in got:
            assert numbers == list(range(sent))  # every message, in order, after the shedding
        assert sent > 200
        # Memory held for the stalled reader stayed within its bounds.
        assert worst["queue"] == limits.max_queue  # the queue filled up, and no further
        assert worst["queued_bytes"] <= limits.max_queue_bytes
        assert worst["buffer"] <= write_limit + 4096  # the high-water mark, plus one message
        assert server.metrics.dropped["queue_full"] > 0
        assert server.hub.queued_messages == 0
        # Its TCP connection is dropped (it never read the close frame), so the transport's
        # buffer is freed too: the connection is gone from the hub and from the server, at
        # exactly the end of the grace.
        assert loop.time() == shed_at[0]  # the feed took no (virtual) time
        await asyncio.sleep(grace - 0.001)
        assert stalled_peer in server.hub.peers
        await asyncio.sleep(0.001)
        await idle()
        assert stalled_peer not in server.hub.peers
        assert server.metrics.aborts["slow_consumer"] == 1
        assert stalled_peer.ws.transport is None
        assert stalled_peer.ws not in server.server.connections
        assert stalled_peer.ws.state is rawws.State.CLOSED
        # The stalled client, reading again, finds the connection dropped: 1006, not a close
        # frame (that was still behind the data it had not read).
        code, _ = await closed(stalled, timeout=WAIT * 3)
        assert code == 1006
        for ws in readers:
            await ws.close()


@pytest.mark.virtual_clock
async def test_a_slow_reader_that_catches_up_within_the_grace_reads_the_1013() -> None:
    limits = Limits(rate=1e6, burst=1e6, max_queue=64, max_queue_bytes=256 * 1024)
    grace = ChatConfig().slow_consumer_grace
    loop = asyncio.get_running_loop()
    async with running(limits=limits, close_timeout=600.0) as server:
        stalled = await stalled_subscriber(server, "feed")
        reader = await user(server, "fast")
        await request(reader, {"type": "subscribe", "topics": ["feed"]})
        await run_feed(server, [reader], stop=lambda: server.metrics.closes[1013] == 1,
                       after=0, limit=20_000)
        shed_at = loop.time()
        await asyncio.sleep(grace * 0.9)  # the reader resumes just before the grace ends
        code, reason = await closed(stalled, timeout=WAIT * 3)
        assert loop.time() < shed_at + grace
        assert code == 1013 and "queue full" in reason
        await eventually(lambda: not server.hub.peers - {peer_of(server, "fast")})
        assert server.metrics.aborts["slow_consumer"] == 0  # closed by the handshake
        await reader.close()


@pytest.mark.virtual_clock
async def test_drop_oldest_policy_keeps_the_slow_reader_and_counts_drops() -> None:
    limits = Limits(rate=1e6, burst=1e6, max_queue=32, max_queue_bytes=256 * 1024)
    async with running(limits=limits, slow_consumer="drop-oldest") as server:
        stalled = await stalled_subscriber(server, "feed")
        reader = await user(server, "fast")
        await request(reader, {"type": "subscribe", "topics": ["feed"]})
        got, worst = await run_feed(
            server, [reader], stop=lambda: server.metrics.dropped["slow_consumer"] >= 100,
            after=0, limit=20_000)
        sent = len(got[0])
        assert got[0] == list(range(sent))
        assert worst["queue"] <= limits.max_queue
        assert server.metrics.closes[1013] == 0
        # The slow reader resumes: it gets increasing numbers, with gaps, ending with the last.
        numbers: list[int] = []
        async with asyncio.timeout(WAIT * 3):
            while not numbers or numbers[-1] != sent - 1:
                event = json.loads(await stalled.recv())
                if event["type"] == "notification":
                    numbers.append(event["message"]["n"])
        assert numbers == sorted(set(numbers))
        assert len(numbers) < sent
        assert sent - len(numbers) >= server.metrics.dropped["slow_consumer"]
        await stalled.close()
        await reader.close()


@pytest.mark.virtual_clock
async def test_a_slow_reader_never_delays_a_room() -> None:
    # Room messages are never dropped: with the drop-oldest policy a reader whose queue is full
    # of chat messages is still closed with 1013.
    limits = Limits(rate=1e6, burst=1e6, max_queue=16, max_queue_bytes=64 * 1024)
    async with running(limits=limits, slow_consumer="drop-oldest", close_timeout=60.0,
                       slow_consumer_grace=600.0) as s:
        slow = await slow_client(s, "/ws/chat/r?user_id=slow")
        fast = await user(s, "fast", "/ws/chat/r")
        sent = 0
        async with asyncio.timeout(120):
            while s.metrics.closes[1013] == 0:
                assert sent < 20_000
                await fast.send(json.dumps({"type": "message", "content": "y" * 2000}))
                while True:  # read up to our own copy: the room keeps going for the fast one
                    event = json.loads(await fast.recv())
                    if event["type"] == "message":
                        break
                sent += 1
        assert s.metrics.dropped["slow_consumer"] == 0
        assert (await closed(slow, timeout=WAIT * 3))[0] == 1013
        await fast.close()


async def test_connect_is_refused_not_queued_at_the_cap() -> None:
    async with running(limits=Limits(max_connections=3)) as server:
        held = [await user(server, f"u{i}") for i in range(3)]
        refused = 0
        for _ in range(5):
            try:
                await connect(server, "/ws")
            except rawws.InvalidStatus as exc:
                assert exc.status_code == 503
                refused += 1
        assert refused == 5
        assert server.metrics.handshake_rejections["max_connections"] == 5
        for ws in held:
            await ws.close()
