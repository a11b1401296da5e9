"""Two ``rawws serve --broker`` processes on two ports and one real redis-server behave as one
server: rooms (one seq order everywhere), presence, private messages, topics, the HTTP API,
``since=`` recovery and offline inboxes, whichever node each client is on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import rawws
from tests.redis_server import RedisServer

from .nodes import cluster, eventually, joined, recv, recv_type, request, send

pytestmark = pytest.mark.redis


async def messages(ws: rawws.ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next ``count`` room messages (other events skipped)."""
    found = []
    while len(found) < count:
        event = await recv(ws)
        if event["type"] == "message":
            found.append(event)
    return found


async def test_a_room_has_one_seq_order_on_both_nodes(redis_server: RedisServer) -> None:
    async with cluster(redis_server.url) as (a, b):
        alice, _ = await a.user("alice")
        carol, _ = await a.user("carol")
        bob, _ = await b.user("bob")
        dave, _ = await b.user("dave")
        for ws in (alice, carol, bob, dave):
            await joined(ws, "r")
        # Both senders at once, as fast as they can: Redis decides the order, once.
        burst = 25
        await asyncio.gather(
            *(send(alice, {"type": "message", "room": "r", "content": f"a{i}", "id": i})
              for i in range(burst)),
            *(send(bob, {"type": "message", "room": "r", "content": f"b{i}"})
              for i in range(burst)))
        seen = await asyncio.gather(*(messages(ws, 2 * burst) for ws in (alice, carol, bob,
                                                                           dave)))
        orders = [[(m["seq"], m["message_id"], m["content"]) for m in got] for got in seen]
        assert [seq for seq, _, _ in orders[0]] == list(range(1, 2 * burst + 1))
        assert orders[1] == orders[0] and orders[2] == orders[0] and orders[3] == orders[0]
        # Each sender's own messages come in the order it sent them.
        assert [c for _, _, c in orders[0] if c[0] == "a"] == [f"a{i}" for i in range(burst)]
        assert [c for _, _, c in orders[0] if c[0] == "b"] == [f"b{i}" for i in range(burst)]
        # The sender's copy is its reply (with its id), and nobody got anything twice.
        assert {m.get("id") for m in seen[0] if m["user_id"] == "alice"} == set(range(burst))
        epochs = {m["epoch"] for got in seen for m in got}
        assert len(epochs) == 1


async def test_presence_and_membership_span_both_nodes(redis_server: RedisServer) -> None:
    async with cluster(redis_server.url) as (a, b):
        alice, _ = await a.user("alice")
        await joined(alice, "lobby")

        async def b_sees_alice() -> bool:  # presence crosses in one round trip, not at once
            _, _, body = await b.http("GET", "/api/rooms")
            return bool(body["rooms"] == [{"room": "lobby", "user_count": 1, "seq": 0}])

        await eventually(b_sees_alice)
        bob, _ = await b.user("bob")
        reply = await joined(bob, "lobby")
        assert reply["users"] == ["alice", "bob"] and reply["user_count"] == 2
        arrived = await recv_type(alice, "user_joined")
        assert arrived["user_id"] == "bob" and arrived["user_count"] == 2
        online = await request(alice, {"type": "presence", "users": ["bob", "zed"], "id": 1})
        assert online["online"] == {"bob": True, "zed": False}
        status, _, body = await a.http("GET", "/api/users/online")
        assert status == 200 and body["users"] == ["alice", "bob"]
        status, _, body = await b.http("GET", "/api/rooms")
        assert body["rooms"] == [{"room": "lobby", "user_count": 2, "seq": 0}]
        await bob.close()
        left = await recv_type(alice, "user_left")
        assert left["user_id"] == "bob" and left["users"] == ["alice"]

        async def bob_offline() -> bool:
            reply = await request(alice, {"type": "presence", "users": ["bob"], "id": 2})
            return reply["online"] == {"bob": False}

        await eventually(bob_offline, what="bob offline on node A")


async def test_private_messages_and_http_notify_cross_nodes(redis_server: RedisServer) -> None:
    async with cluster(redis_server.url) as (a, b):
        alice, _ = await a.user("alice")
        bob, _ = await b.user("bob")
        bob2, _ = await b.user("bob")  # two connections of one user

        async def a_knows_bob() -> bool:  # presence crosses in one round trip, not at once
            _, _, body = await a.http("GET", "/api/users/online")
            return "bob" in body["users"]

        await eventually(a_knows_bob)
        ack = await request(alice, {"type": "private", "target": "bob", "content": "psst",
                                    "id": 7})
        assert ack == {"type": "private_ack", "target": "bob", "status": "sent",
                       "recipients": 2, "id": 7}
        for ws in (bob, bob2):
            got = await recv_type(ws, "private")
            assert got["from"] == "alice" and got["content"] == "psst"
        status, _, body = await a.http("POST", "/api/notify/bob", {"message": {"n": 1}})
        assert status == 200 and body == {"status": "sent", "recipients": 2}
        for ws in (bob, bob2):
            assert (await recv_type(ws, "notification"))["message"] == {"n": 1}
        # And back: from B to a user on A.
        status, _, body = await b.http("POST", "/api/notify/alice", {"message": "hi"})
        assert body == {"status": "sent", "recipients": 1}
        assert (await recv_type(alice, "notification"))["message"] == "hi"


async def test_topic_publish_reaches_and_counts_subscribers_on_both_nodes(
        redis_server: RedisServer) -> None:
    async with cluster(redis_server.url) as (a, b):
        subscribers = []
        for node, name, pattern in ((a, "a1", "stock.AAPL"), (a, "a2", "stock.*"),
                                    (b, "b1", "stock.#"), (b, "b2", "*.AAPL"),
                                    (b, "b3", "bonds.*")):
            ws, _ = await node.user(name)
            reply = await request(ws, {"type": "subscribe", "topics": [pattern], "id": 1})
            assert reply["type"] == "subscribed"
            subscribers.append((name, ws))

        async def counted() -> bool:
            status, _, body = await a.http("POST", "/api/publish/probe.none", {"message": 0})
            return bool(status == 200 and body["recipients"] == 0)

        await eventually(counted)  # A answers; now wait until it knows B's four patterns
        publisher, _ = await a.user("pub")

        async def all_known() -> bool:
            reply = await request(publisher, {"type": "publish", "topic": "bonds.x",
                                              "message": "probe", "id": "p"})
            return bool(reply["recipients"] == 1)

        await eventually(all_known)
        reply = await request(publisher, {"type": "publish", "topic": "stock.AAPL",
                                          "message": {"px": 1}, "id": 2})
        assert reply == {"type": "published", "topic": "stock.AAPL", "recipients": 4, "id": 2}
        for name, ws in subscribers:
            if name == "b3":
                continue
            got = await recv_type(ws, "notification")
            assert got["topic"] == "stock.AAPL" and got["message"] == {"px": 1}
            assert type(got["seq"]) is int
        _, _, body = await b.http("POST", "/api/publish/stock.MSFT", {"message": 2})
        assert body == {"status": "sent", "topic": "stock.MSFT", "recipients": 2}


async def test_since_zero_on_b_includes_what_was_sent_on_a(redis_server: RedisServer) -> None:
    async with cluster(redis_server.url) as (a, b):
        alice, _ = await a.user("alice")
        await joined(alice, "log")
        sent = [await request(alice, {"type": "message", "room": "log", "content": i, "id": i})
                for i in range(5)]
        status, _, body = await a.http("POST", "/api/rooms/log/messages", {"content": "api"})
        assert status == 200 and body["seq"] == 6
        late, _ = await b.user("late")
        reply = await joined(late, "log", since=0)
        assert [m["seq"] for m in reply["history"]] == [1, 2, 3, 4, 5, 6]
        assert [m["message_id"] for m in reply["history"][:5]] == [m["message_id"] for m in sent]
        assert reply["epoch"] == sent[0]["epoch"] and reply["complete"] is True
        resumed = await joined(late, "log", since=4, epoch=sent[0]["epoch"])
        assert [m["content"] for m in resumed["history"]] == [4, "api"]
        status, _, body = await b.http("GET", "/api/rooms/log")
        assert body["seq"] == 6 and len(body["history"]) == 6


async def test_an_offline_item_queued_via_a_is_delivered_via_b_until_acknowledged(
        redis_server: RedisServer) -> None:
    async with cluster(redis_server.url) as (a, b):
        status, _, body = await a.http("POST", "/api/notify/carol", {"message": "later"})
        assert status == 200 and body["status"] == "queued"
        message_id = body["message_id"]
        carol, welcome = await b.user("carol")
        # Counted in the welcome once B has read it from the bus (a round trip after A's 200);
        # if carol connected before that, it comes right after the welcome, the same item.
        assert welcome["offline_items"] in (0, 1)
        item = await recv(carol)
        assert item["message_id"] == message_id and item["offline"] is True
        await carol.close()
        carol, welcome = await a.user("carol")  # not acknowledged: delivered again, on A
        assert welcome["offline_items"] == 1
        assert (await recv(carol))["message_id"] == message_id
        ack = await request(carol, {"type": "ack", "message_id": message_id, "id": 1})
        assert ack == {"type": "acked", "count": 1, "id": 1}
        await carol.close()
        for node in (a, b):  # acknowledged on A: never again, on either node
            async def nothing_left(node: Any = node) -> bool:
                ws, welcome = await node.user("carol")
                await ws.close()
                return bool(welcome["offline_items"] == 0)

            await eventually(nothing_left)


async def test_the_slow_consumer_policy_applies_to_messages_from_another_node(
        redis_server: RedisServer) -> None:
    """A reader on B that stops reading is closed with 1013 when what B holds for it is full,
    however the messages reached B (here: all posted on A); B's other reader is unaffected."""
    from tests.chat.hostile import RawClient, scrape_metrics

    args = ("--max-queue", "64", "--max-queue-bytes", "1MiB", "--http-rate", "0")
    async with cluster(redis_server.url, 2, *args) as (a, b):
        stalled = await RawClient.open(b.port, "/ws/chat/feed?user_id=stall",
                                       receive_buffer=4096)  # never read again
        # The healthy reader only counts frames: a reader this test process can keep fast.
        reader = await RawClient.open(b.port, "/ws/chat/feed?user_id=reader")
        await reader.read_frames(2)  # welcome, joined
        await eventually(lambda: _known_in(a, "feed", 2), what="A knowing the members")
        # More than the kernel buffers of the stalled connection hold (the server's send
        # buffer may grow to tcp_wmem's maximum) plus write_limit and the queue's 1 MiB.
        chunk = "x" * 12000
        count = max(700, int(2 * (_send_buffer_max() + (1 << 20)) / len(chunk)))
        expected = reader.frames + count
        reading = asyncio.ensure_future(reader.read_frames(expected))
        for i in range(count):
            status, _, body = await a.http("POST", "/api/rooms/feed/messages",
                                           {"content": f"{i}:{chunk}"})
            assert status == 200, body
        await reading
        assert reader.last[-1].startswith(b'{"type":"message"')

        async def shed() -> bool:
            found = await scrape_metrics(b.port)
            return found.get('rawws_closes_total{code="1013"}', 0) == 1

        await eventually(shed, what="the stalled reader closed with 1013 on B")
        stalled.close()
        reader.close()


async def _known_in(node: Any, room: str, users: int) -> bool:
    _, _, body = await node.http("GET", "/api/rooms")
    return any(r["room"] == room and r["user_count"] == users for r in body["rooms"])


def _send_buffer_max() -> int:
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as wmem:
            return int(wmem.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20
