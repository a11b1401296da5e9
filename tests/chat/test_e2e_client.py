"""End to end: rawws.chat.ChatClient, including reconnection that recovers missed messages."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

import rawws
from rawws.chat import encode_jwt
from rawws.chat.client import ChatClient, ChatError
from rawws.chat.router import Answer

from ..processes import serve
from .e2e import WAIT, Limits, eventually, recv, running, user


async def events_until(client: ChatClient, predicate: Any) -> list[dict[str, Any]]:
    """Collect events until one satisfies ``predicate`` (inclusive)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT):
        while True:
            event = await client.next_event()
            seen.append(event)
            if predicate(event):
                return seen


async def test_every_request() -> None:
    async with running() as server, ChatClient(server.url, user_id="alice") as alice, \
            ChatClient(server.url + "/ws", user_id="bob") as bob:
        assert alice.user_id == "alice" and alice.connection_id
        joined = await alice.join("lobby")
        assert joined["type"] == "joined" and joined["users"] == ["alice"]
        await bob.join("lobby")
        sent = await alice.send("lobby", "hi")
        assert (sent["type"], sent["seq"], sent["content"]) == ("message", 1, "hi")
        got = await events_until(bob, lambda e: e["type"] == "message")
        assert got[-1]["content"] == "hi" and "id" not in got[-1]
        ack = await alice.private("bob", {"secret": 1})
        assert (ack["status"], ack["recipients"]) == ("sent", 1)
        got = await events_until(bob, lambda e: e["type"] == "private")
        assert got[-1]["content"] == {"secret": 1}
        assert (await bob.subscribe("alerts.#"))["topics"] == ["alerts.#"]
        published = await alice.publish("alerts.disk", "90%")
        assert published["recipients"] == 1
        got = await events_until(bob, lambda e: e["type"] == "notification")
        assert got[-1]["message"] == "90%"
        assert (await bob.unsubscribe("alerts.#"))["type"] == "unsubscribed"
        assert bob.topics == []
        assert (await alice.ping())["type"] == "pong"
        assert await alice.list_rooms() == [{"room": "lobby", "user_count": 2}]
        assert await alice.presence("bob", "carol") == {"bob": True, "carol": False}
        with pytest.raises(ChatError) as info:
            await alice.presence("not a name")
        assert info.value.code == "bad_request"
        assert (await alice.leave("lobby"))["type"] == "left"
        assert "lobby" not in alice.rooms
        with pytest.raises(ChatError) as info:
            await alice.send("lobby", "not a member")
        assert info.value.code == "not_found"


async def test_reconnect_recovers_missed_room_messages() -> None:
    async with running() as server:
        poster = await user(server, "poster", "/ws/chat/lobby")
        await recv(poster)
        client = ChatClient(server.url, user_id="alice", backoff_initial=0.05)
        await client.connect()
        await client.join("lobby")
        await client.subscribe("news.*")

        async def post(n: int) -> None:
            await poster.send(f'{{"type":"message","content":"m{n}"}}')

        for n in range(1, 6):
            await post(n)
        got = await events_until(client, lambda e: e.get("content") == "m5")
        assert [e["seq"] for e in got if e["type"] == "message"] == [1, 2, 3, 4, 5]

        # Kill the connection mid-session, then post while the client is away. No await
        # between the abort and the posts: the client cannot have reconnected yet.
        ws = client.websocket
        assert ws is not None and ws.transport is not None
        ws.transport.abort()
        for n in range(6, 11):
            server.hub.execute(server.router.post("lobby", "poster", f"m{n}", Answer()))
        await eventually(lambda: client.connections == 2)
        await post(11)

        got = await events_until(client, lambda e: e.get("content") == "m11")
        kinds = [e["type"] for e in got]
        assert kinds[0] == "disconnected"
        assert "welcome" in kinds and "joined" in kinds and "subscribed" in kinds
        messages = [e for e in got if e["type"] == "message"]
        assert [m["content"] for m in messages] == [f"m{n}" for n in range(6, 12)]
        assert [m["seq"] for m in messages] == list(range(6, 12))
        # The topic subscription came back too.
        published = await client.publish("news.eu", "fresh")
        assert published["recipients"] == 1
        assert client.rooms == {"lobby": 11}
        await client.close()
        await poster.close()


@pytest.mark.virtual_clock
async def test_reconnect_after_server_restart_on_the_same_port() -> None:
    """The server is down for 30 s: with the default backoff (0.2 s doubling up to 10 s) and
    the jitter pinned to its top, the attempts come 0.2, 0.6, 1.4, 3.0, 6.2, 12.6, 22.6 and
    32.6 s after the drop; the last one finds the new server."""
    loop = asyncio.get_running_loop()
    async with running() as first:
        port = first.port
        client = ChatClient(first.url, user_id="alice", jitter=lambda: 1.0)
        await client.connect()
        await client.join("lobby")
    dropped = loop.time()
    await asyncio.sleep(30)
    assert client.connections == 1
    # The server went away (1001); a new one comes up on the same port.
    async with running(port=port) as second:
        await eventually(lambda: client.connections == 2)
        assert loop.time() - dropped == pytest.approx(32.6)
        first = await events_until(client, lambda e: e["type"] == "disconnected")
        assert [e["type"] for e in first] == ["welcome", "joined", "disconnected"]
        assert first[-1]["code"] == 1001
        again = await events_until(client, lambda e: e["type"] == "joined")
        # A new server with an in-memory store is a new stream: the client says so.
        assert [e["type"] for e in again] == ["welcome", "gap", "joined"]
        assert again[1]["reason"] == "reset" and again[1]["last_seq"] == 0
        assert again[-1]["room"] == "lobby"
        assert (await client.send("lobby", "again"))["seq"] == 1
        assert second.router.online_users() == ["alice"]
        await client.close()


async def test_token_in_header_and_fatal_auth_failure() -> None:
    secret = "client-secret"
    async with running(jwt_secret=secret) as server:
        good = encode_jwt({"sub": "alice"}, secret)
        async with ChatClient(server.url, token=good) as client:
            assert client.user_id == "alice"
        bad = ChatClient(server.url, token=encode_jwt({"sub": "alice"}, "wrong"))
        with pytest.raises(ChatError) as info:
            await bad.connect()
        assert info.value.code == "auth" and "4002" in info.value.message
        await bad.close()


async def test_rejected_handshake_is_fatal() -> None:
    async with running() as server:
        client = ChatClient(server.url + "/wrong/path", user_id="alice")
        with pytest.raises(ChatError) as info:
            await client.connect()
        assert info.value.code == "rejected" and "404" in info.value.message
        await client.close()


async def test_iteration_ends_after_close() -> None:
    async with running() as server:
        client = ChatClient(server.url, user_id="alice")
        await client.connect()
        events = []

        async def consume() -> None:
            async for event in client:
                events.append(event["type"])

        consumer = asyncio.ensure_future(consume())
        await client.ping()
        await client.close()
        async with asyncio.timeout(WAIT):
            await consumer
        assert events == ["welcome", "pong"]
        with pytest.raises(ChatError):
            await client.next_event(timeout=WAIT)


async def test_policy_close_is_not_retried() -> None:
    limits = Limits(rate=1.0, burst=1.0, rate_strikes=1.0, rate_strike_refill=0.001)
    async with running(limits=limits) as server:
        client = ChatClient(server.url, user_id="alice", backoff_initial=0.01,
                            request_timeout=WAIT)
        await client.connect()
        ws = client.websocket
        assert ws is not None
        for _ in range(3):
            with contextlib.suppress(rawws.ConnectionClosed):
                await ws.send('{"type":"ping"}')
        seen: list[str] = []
        with pytest.raises(ChatError) as info:
            async with asyncio.timeout(WAIT):
                async for event in client:
                    seen.append(event["type"])
        assert info.value.code == "policy"
        assert seen == ["welcome", "pong", "error"]
        assert client.connections == 1
        await client.close()


async def test_a_restarted_server_is_a_new_stream_the_client_reports_the_gap_and_keeps_up(
) -> None:
    """kill -9 a real server process (history in memory: lost) and start another on the same
    port. The room counts from seq 1 again under a new epoch: the client yields a ``gap`` and
    then every message of the new stream, none dropped for having a seq it had seen before."""
    server, port = await serve()
    url = f"ws://127.0.0.1:{port}"
    client = ChatClient(url, user_id="alice", backoff_initial=0.05, backoff_max=0.2)
    try:
        await client.connect()
        joined = await client.join("lobby")
        old_epoch = joined["epoch"]
        for n in range(3):
            sent = await client.send("lobby", f"old{n}")
            assert sent["epoch"] == old_epoch
        assert client.rooms == {"lobby": 3} and client.epochs == {"lobby": old_epoch}
        server.kill()
        await server.wait()
        server, _ = await serve("--port", str(port))
        async with ChatClient(url, user_id="bob") as bob:
            assert (await bob.join("lobby"))["epoch"] != old_epoch
            for n in range(5):
                assert (await bob.send("lobby", f"new{n}"))["seq"] == n + 1
        got = await events_until(client, lambda e: e.get("content") == "new4")
        gaps = [e for e in got if e["type"] == "gap"]
        assert len(gaps) == 1
        gap = gaps[0]
        new_epoch = gap["epoch"]
        assert gap == {"type": "gap", "room": "lobby", "reason": "reset", "epoch": new_epoch,
                       "previous_epoch": old_epoch, "last_seq": 3}
        after = got[got.index(gap):]
        messages = [e for e in after if e["type"] == "message"]
        assert [m["content"] for m in messages] == [f"new{n}" for n in range(5)]
        assert [m["seq"] for m in messages] == [1, 2, 3, 4, 5]
        assert {m["epoch"] for m in messages} == {new_epoch}
        before = [e["content"] for e in got[:got.index(gap)] if e["type"] == "message"]
        assert before == ["old0", "old1", "old2"]  # alice's own, as replies
        assert client.rooms == {"lobby": 5} and client.epochs == {"lobby": new_epoch}
    finally:
        await client.close()
        server.kill()
        await server.wait()


async def test_a_rejoin_past_trimmed_history_reports_the_gap() -> None:
    async with running(limits=Limits(history_size=3)) as server:
        client = ChatClient(server.url, user_id="alice", backoff_initial=0.05)
        await client.connect()
        await client.join("lobby")
        await client.send("lobby", "m1")
        ws = client.websocket
        assert ws is not None and ws.transport is not None
        ws.transport.abort()
        for n in range(2, 8):  # seq 2..7 while away; only 5..7 are kept
            server.hub.execute(server.router.post("lobby", "poster", f"m{n}", Answer()))
        got = await events_until(client, lambda e: e.get("content") == "m7")
        gap = next(e for e in got if e["type"] == "gap")
        assert gap == {"type": "gap", "room": "lobby", "reason": "trimmed",
                       "epoch": client.epochs["lobby"], "last_seq": 1, "next_seq": 5}
        messages = [e["seq"] for e in got[got.index(gap):] if e["type"] == "message"]
        assert messages == [5, 6, 7]
        await client.close()


async def test_a_rejoin_reads_the_missed_history_page_by_page() -> None:
    """Replies are bounded (max_reply_bytes), so a client away for long gets its missed
    messages over several pages: it reads them all, in order, none twice, with the messages
    posted while it reads them held until they can follow."""
    limits = Limits(history_size=1000, max_reply_bytes=20_000, rate=1e6, burst=1e6)
    async with running(limits=limits) as server:
        client = ChatClient(server.url, user_id="alice", backoff_initial=0.05)
        await client.connect()
        await client.join("lobby")
        await client.join("other")
        ws = client.websocket
        assert ws is not None and ws.transport is not None
        ws.transport.abort()
        for n in range(1, 301):  # ~1 KB each: 300 KB while away, 15 pages
            for room in ("lobby", "other"):
                server.hub.execute(server.router.post(room, "poster",
                                                      {"n": n, "pad": "x" * 1000}, Answer()))
        await eventually(lambda: client.connections == 2)
        for n in range(301, 311):  # while (or after) it reads the pages
            server.hub.execute(server.router.post("lobby", "poster", {"n": n, "pad": ""},
                                                  Answer()))
        got = await events_until(client, lambda e: e.get("content", {}).get("n") == 310)
        got += await events_until(client, lambda e: e.get("room") == "other"
                                  and e.get("content", {}).get("n") == 300)
        for room, last in (("lobby", 310), ("other", 300)):
            numbers = [e["content"]["n"] for e in got
                       if e["type"] == "message" and e["room"] == room]
            assert numbers == list(range(1, last + 1)), room
        assert not [e for e in got if e["type"] == "gap"]
        assert client.rooms == {"lobby": 310, "other": 300}
        history = await client.history("lobby", before=11, limit=3)
        assert [m["content"]["n"] for m in history["history"]] == [8, 9, 10]
        assert history["more"] is True
        await client.close()
