"""End to end over real sockets: every WebSocket message, endpoint, error code and close code."""

from __future__ import annotations

import asyncio

import pytest

import rawws

from .e2e import (
    Limits,
    closed,
    connect,
    eventually,
    http,
    http_json,
    recv,
    recv_type,
    request,
    running,
    send,
    user,
)


async def test_welcome_and_guest_name() -> None:
    async with running() as server:
        ws = await connect(server, "/ws")
        welcome = await recv(ws)
        assert welcome["type"] == "welcome"
        assert welcome["user_id"].startswith("guest-") and len(welcome["user_id"]) == 12
        assert isinstance(welcome["connection_id"], str) and len(welcome["connection_id"]) == 16
        await ws.close()


async def test_rooms_end_to_end() -> None:
    async with running() as server:
        alice = await user(server, "alice")
        bob = await user(server, "bob")
        joined = await request(alice, {"type": "join", "room": "lobby", "id": 1})
        epoch = joined.pop("epoch")
        assert type(epoch) is str and len(epoch) == 16
        assert joined == {"type": "joined", "room": "lobby", "users": ["alice"],
                          "user_count": 1, "history": [], "seq": 0, "more": False, "id": 1}
        joined = await request(bob, {"action": "join", "room": "lobby"})
        assert joined["users"] == ["alice", "bob"]
        announced = await recv(alice)
        assert announced["type"] == "user_joined" and announced["user_id"] == "bob"
        assert announced["users"] == ["alice", "bob"] and announced["timestamp"].endswith("Z")

        await send(alice, {"type": "message", "room": "lobby", "content": "hello"})
        for ws in (alice, bob):
            got = await recv(ws)
            assert {k: got[k] for k in ("type", "room", "user_id", "content", "seq")} == {
                "type": "message", "room": "lobby", "user_id": "alice", "content": "hello",
                "seq": 1}
        await send(bob, {"type": "message", "room": "lobby", "content": {"x": [1]}, "id": "b1"})
        mine = await recv(bob)
        theirs = await recv(alice)
        assert mine["id"] == "b1" and mine["seq"] == 2 and "id" not in theirs
        assert {k: v for k, v in mine.items() if k != "id"} == theirs

        left = await request(bob, {"type": "leave", "room": "lobby", "id": 2})
        assert left == {"type": "left", "room": "lobby", "id": 2}
        gone = await recv(alice)
        assert (gone["type"], gone["user_id"], gone["users"]) == ("user_left", "bob", ["alice"])

        # A dropped connection is announced too.
        await request(bob, {"type": "join", "room": "lobby"})
        await recv_type(alice, "user_joined")
        assert bob.transport is not None
        bob.transport.abort()
        gone = await recv_type(alice, "user_left")
        assert gone["user_id"] == "bob"
        await alice.close()


async def test_history_and_since_over_the_wire() -> None:
    async with running() as server:
        alice = await user(server, "alice", "/ws/chat/lobby")
        assert (await recv(alice))["type"] == "joined"
        for i in range(1, 6):
            await send(alice, {"type": "message", "content": f"m{i}"})
            assert (await recv(alice))["seq"] == i
        bob = await user(server, "bob")
        joined = await request(bob, {"type": "join", "room": "lobby", "since": 3})
        assert [m["content"] for m in joined["history"]] == ["m4", "m5"]
        assert joined["seq"] == 5 and joined["complete"] is True
        carol = await user(server, "carol", "/ws/chat/lobby")
        joined = await recv(carol)
        assert [m["seq"] for m in joined["history"]] == [1, 2, 3, 4, 5]
        for ws in (alice, bob, carol):
            await ws.close()


async def test_chat_endpoint_tutorial_client_shapes() -> None:
    # The shapes of the FastAPI tutorial's room client: {"type":"message","content":...} with
    # the room taken from the path, and {"type":"private","target":...,"content":...}.
    async with running() as server:
        bob = await user(server, "bob", "/ws/chat/general")
        await recv(bob)  # joined
        alice = await user(server, "alice", "/ws/chat/general")
        joined = await recv(alice)
        assert joined["room"] == "general" and joined["users"] == ["bob", "alice"]
        await recv_type(bob, "user_joined")
        await send(alice, {"type": "message", "content": "hi all"})
        assert (await recv(bob))["content"] == "hi all"
        await recv(alice)
        await send(alice, {"type": "private", "target": "bob", "content": "psst"})
        private = await recv(bob)
        assert (private["type"], private["from"], private["content"]) == (
            "private", "alice", "psst")
        ack = await recv(alice)
        assert ack == {"type": "private_ack", "target": "bob", "status": "sent",
                       "recipients": 1}
        await alice.close()
        await bob.close()


async def test_private_offline_inbox_and_notifications_endpoint() -> None:
    async with running() as server:
        alice = await user(server, "alice")
        ack = await request(alice, {"type": "private", "target": "dave", "content": "later"})
        assert ack == {"type": "private_ack", "target": "dave", "status": "queued",
                       "recipients": 0, "message_id": ack["message_id"]}
        status, body = await http_json(server, "POST", "/api/notify/dave", {"message": "n1"})
        assert (status, body) == (200, {"status": "queued", "recipients": 0,
                                        "message_id": body["message_id"]})
        assert body["message_id"] != ack["message_id"]
        # The tutorial's notification client: /ws/notifications?user_id=..., text "ping".
        dave = await connect(server, "/ws/notifications?user_id=dave")
        welcome = await recv(dave)
        assert (welcome["type"], welcome["offline_items"]) == ("welcome", 2)
        first, second = await recv(dave), await recv(dave)
        assert (first["type"], first["from"], first["content"]) == ("private", "alice", "later")
        assert (second["type"], second["message"]) == ("notification", "n1")
        assert first["offline"] is True and second["offline"] is True  # from the inbox
        assert (first["message_id"], second["message_id"]) == (ack["message_id"],
                                                               body["message_id"])
        await send(dave, "ping")
        assert await recv(dave) == {"type": "pong"}
        status, body = await http_json(server, "POST", "/api/notify/dave", {"message": "n2"})
        assert body == {"status": "sent", "recipients": 1}
        live = await recv(dave)
        assert live["message"] == "n2" and "offline" not in live
        for message in ({"type": "join", "room": "x"}, {"type": "subscribe", "topics": ["a"]}):
            assert (await request(dave, message))["code"] == "forbidden"
        await alice.close()
        await dave.close()


async def test_topics_tutorial_shapes_on_the_root_path() -> None:
    # The websockets tutorial's notification server: ws://host:port (path "/"), "action" keys.
    async with running() as server:
        sub = await connect(server, "/")
        await recv(sub)
        reply = await request(sub, {"action": "subscribe", "topics": ["stock.*", "news.#"]})
        assert reply == {"type": "subscribed", "topics": ["stock.*", "news.#"]}
        pub = await connect(server, "/")
        await recv(pub)
        await send(pub, {"action": "publish", "topic": "stock.AAPL", "message": {"p": 190}})
        assert await recv(pub) == {"type": "published", "topic": "stock.AAPL", "recipients": 1}
        note = await recv(sub)
        assert {k: note[k] for k in ("type", "topic", "message", "seq")} == {
            "type": "notification", "topic": "stock.AAPL", "message": {"p": 190}, "seq": 1}
        await send(pub, {"action": "publish", "topic": "news.eu.fr", "message": "x"})
        assert (await recv(pub))["recipients"] == 1
        assert (await recv(sub))["topic"] == "news.eu.fr"
        reply = await request(sub, {"type": "unsubscribe", "topics": ["stock.*"], "id": 5})
        assert reply == {"type": "unsubscribed", "topics": ["stock.*"], "id": 5}
        await send(pub, {"action": "publish", "topic": "stock.AAPL", "message": 1})
        assert (await recv(pub))["recipients"] == 0
        await sub.close()
        await pub.close()


async def test_ping_forms() -> None:
    async with running() as server:
        ws = await user(server, "alice")
        await send(ws, "ping")
        assert await recv(ws) == {"type": "pong"}
        assert await request(ws, {"type": "ping", "id": 42}) == {"type": "pong", "id": 42}
        await ws.close()


@pytest.mark.parametrize(("message", "code"), [
    ("hello", "bad_json"),
    (b"\x01\x02", "bad_json"),
    ("[]", "bad_request"),
    ('{"type":"join"}', "bad_request"),
    ('{"type":"warp"}', "unknown_type"),
    ('{"type":"join","room":"x","since":-1}', "bad_request"),
    ('{"type":"leave","room":"nowhere"}', "not_found"),
    ('{"type":"message","room":"nowhere","content":"x"}', "not_found"),
    ('{"type":"message","room":"r","content":"' + "x" * 20000 + '"}', "too_large"),
    ('{"a":' + "[" * 50 + "]" * 50 + "}", "too_large"),
    ('{"type":"subscribe","topics":["a.#.b"]}', "bad_request"),
    ('{"type":"publish","topic":"a.*","message":1}', "bad_request"),
    # Out-of-range numbers (issue 11 item 13): a parse error, never a 1011 when echoed back.
    *[(template.replace("N", number), "bad_json")
      for number in ("1e400", "-1e400", "NaN", "Infinity", "-Infinity")
      for template in ('{"type":"message","room":"r","content":N}',
                       '{"type":"message","room":"r","content":{"x":[N]}}',
                       '{"type":"private","target":"bob","content":N}',
                       '{"type":"publish","topic":"t","message":N}',
                       '{"type":"join","room":"r","since":N}',
                       '{"type":"ping","id":N}',
                       '{"type":"presence","users":[N]}')],
])
async def test_error_codes(message: str | bytes, code: str) -> None:
    async with running() as server:
        ws = await user(server, "alice")
        error = await request(ws, message)
        assert error["type"] == "error" and error["code"] == code and error["id"] is None
        assert isinstance(error["message"], str) and "Traceback" not in error["message"]
        # The connection stays open.
        assert await request(ws, {"type": "ping"}) == {"type": "pong"}
        await ws.close()


async def test_forbidden_by_caps_and_publish_switch() -> None:
    async with running(limits=Limits(max_rooms_per_connection=1), client_publish=False) as s:
        ws = await user(s, "alice")
        await request(ws, {"type": "join", "room": "a"})
        assert (await request(ws, {"type": "join", "room": "b", "id": "j"}))["code"] == "forbidden"
        error = await request(ws, {"type": "publish", "topic": "t", "message": 1, "id": 9})
        assert (error["code"], error["id"]) == ("forbidden", 9)
        await ws.close()


async def test_message_too_big_closes_1009() -> None:
    async with running(limits=Limits(max_message_size=1024)) as server:
        ws = await user(server, "alice")
        await send(ws, "x" * 2000)
        assert (await closed(ws))[0] == 1009
        await eventually(lambda: not server.router.sessions)
        _, body = await http_json(server, "GET", "/api/users/online")
        assert body == {"users": [], "count": 0}


async def test_rate_limited_then_1008() -> None:
    limits = Limits(rate=1.0, burst=5.0, rate_strikes=3.0, rate_strike_refill=0.001)
    async with running(limits=limits) as server:
        ws = await user(server, "alice")
        for _ in range(9):
            await send(ws, "ping")
        replies = [await recv(ws) for _ in range(8)]
        assert replies[:5] == [{"type": "pong"}] * 5
        assert [r["code"] for r in replies[5:]] == ["rate_limited"] * 3
        assert await closed(ws) == (1008, "rate limit exceeded")
        metrics = server.metrics
        assert metrics.errors["rate_limited"] == 3 and metrics.closes[1008] == 1


@pytest.mark.parametrize(("path", "status"), [
    ("/nope", 404), ("/ws/chat/bad%20room", 404), ("/ws?user_id=bad%20name", 400)])
async def test_handshake_rejections(path: str, status: int) -> None:
    async with running() as server:
        with pytest.raises(rawws.InvalidStatus) as info:
            await connect(server, path)
        assert info.value.status_code == status


async def test_origin_policy() -> None:
    async with running() as server:
        own = f"http://127.0.0.1:{server.port}"
        ws = await connect(server, "/ws", origin=own)
        assert (await recv(ws))["type"] == "welcome"
        await ws.close()
        with pytest.raises(rawws.InvalidStatus) as info:
            await connect(server, "/ws", origin="http://evil.example")
        assert info.value.status_code == 403
        assert server.metrics.handshake_rejections["origin"] == 1
    async with running(allowed_origins=("http://app.example",)) as server:
        ws = await connect(server, "/ws", origin="http://app.example")
        await recv(ws)
        await ws.close()
        with pytest.raises(rawws.InvalidStatus):
            await connect(server, "/ws", origin=f"http://127.0.0.1:{server.port}")


async def test_connection_caps_503() -> None:
    async with running(limits=Limits(max_connections_per_ip=2)) as server:
        a, b = await user(server, "a"), await user(server, "b")
        with pytest.raises(rawws.InvalidStatus) as info:
            await connect(server, "/ws")
        assert info.value.status_code == 503
        assert server.metrics.handshake_rejections["per_ip"] == 1
        await a.close()
        await eventually(lambda: len(server.hub.peers) == 1)
        c = await user(server, "c")  # a slot is free again
        for ws in (b, c):
            await ws.close()
    async with running(limits=Limits(max_connections=1)) as server:
        a = await user(server, "a")
        with pytest.raises(rawws.InvalidStatus) as info:
            await connect(server, "/ws")
        assert info.value.status_code == 503
        assert server.metrics.handshake_rejections["max_connections"] == 1
        await a.close()


async def test_server_shutdown_closes_1001() -> None:
    async with running() as server:
        ws = await user(server, "alice")
        closing = asyncio.ensure_future(closed(ws))
        await server.close()
        assert (await closing)[0] == 1001


async def test_metrics_after_traffic() -> None:
    async with running() as server:
        a = await user(server, "a", "/ws/chat/r")
        await recv(a)
        await send(a, {"type": "message", "content": "x"})
        await recv(a)
        await send(a, "nope")
        await recv(a)
        status, _ = await http_json(server, "GET", "/healthz")
        status, headers, body = await http(server, "GET", "/metrics")
        text = body.decode()
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        lines = text.splitlines()
        assert "rawws_connections 1" in lines
        assert "rawws_rooms 1" in lines
        assert "rawws_messages_received_total 2" in lines
        assert 'rawws_errors_total{code="bad_json"} 1' in lines
        assert 'rawws_http_requests_total{status="200"} 1' in lines  # /healthz; this one next
        await a.close()
