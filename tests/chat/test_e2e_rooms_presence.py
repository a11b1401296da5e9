"""End to end: the room list (`rooms`) and online status (`presence`) over WebSocket, with and
without token claims, and what the notifications endpoint answers."""

from __future__ import annotations

import time

from rawws.chat.auth import encode_jwt

from .e2e import connect, http_json, recv, recv_type, request, running, user

SECRET = "rooms-presence-secret"


async def test_rooms_over_websocket_matches_the_http_list() -> None:
    async with running() as server:
        alice = await user(server, "alice", "/ws/chat/lobby")
        await recv_type(alice, "joined")
        bob = await user(server, "bob", "/ws/chat/lobby")
        await recv_type(bob, "joined")
        await request(bob, {"type": "join", "room": "dev"})
        status, _ = await http_json(server, "POST", "/api/rooms/news/messages",
                                    {"content": "kept"})
        assert status == 200
        reply = await request(alice, {"type": "rooms", "id": "r1"})
        while reply["type"] != "rooms":  # skip bob's arrival
            reply = await recv(alice)
        assert reply == {"type": "rooms", "rooms": [
            {"room": "dev", "user_count": 1},
            {"room": "lobby", "user_count": 2},
            {"room": "news", "user_count": 0},
        ], "truncated": False, "id": "r1"}
        _, listed = await http_json(server, "GET", "/api/rooms")
        assert [(r["room"], r["user_count"]) for r in listed["rooms"]] == [
            (r["room"], r["user_count"]) for r in reply["rooms"]]
        await alice.close()
        await bob.close()


async def test_presence_follows_connections() -> None:
    async with running() as server:
        alice = await user(server, "alice")
        reply = await request(alice, {"type": "presence", "users": ["bob", "alice"]})
        assert reply == {"type": "presence", "online": {"bob": False, "alice": True}}
        bob = await user(server, "bob")
        reply = await request(alice, {"type": "presence", "users": ["bob"], "id": 2})
        assert reply == {"type": "presence", "online": {"bob": True}, "id": 2}
        await bob.close()
        await bob.wait_closed()
        reply = await request(alice, {"type": "presence", "users": ["bob"]})
        # The server forgot bob before his TCP connection ended (asyncio calls the protocol's
        # connection_lost before it closes the socket), and wait_closed() waited for that end.
        assert reply == {"type": "presence", "online": {"bob": False}}
        error = await request(alice, {"type": "presence", "users": ["x"] * 101})
        assert (error["type"], error["code"]) == ("error", "too_large")
        await alice.close()


async def test_rooms_with_a_token_lists_only_its_rooms_and_notifications_refuse_both() -> None:
    async with running(jwt_secret=SECRET) as server:
        admin = encode_jwt({"sub": "root", "exp": time.time() + 600}, SECRET)
        limited = encode_jwt({"sub": "olivia", "exp": time.time() + 600,
                              "rooms": ["lobby", "team.*"]}, SECRET)
        root = await connect(server, "/ws", headers=[("Authorization", f"Bearer {admin}")])
        await recv_type(root, "welcome")
        for room in ("admin", "lobby", "team.red"):
            assert (await request(root, {"type": "join", "room": room}))["type"] == "joined"
        olivia = await connect(server, "/ws", headers=[("Authorization", f"Bearer {limited}")])
        await recv_type(olivia, "welcome")
        reply = await request(olivia, {"type": "rooms"})
        assert [r["room"] for r in reply["rooms"]] == ["lobby", "team.red"]
        assert (await request(olivia, {"type": "presence", "users": ["root"]}))["online"] == {
            "root": True}
        notes = await connect(server, "/ws/notifications",
                              headers=[("Authorization", f"Bearer {limited}")])
        await recv_type(notes, "welcome")
        for message in ({"type": "rooms"}, {"type": "presence", "users": ["root"]}):
            error = await request(notes, message)
            assert (error["type"], error["code"]) == ("error", "forbidden")
        for ws in (root, olivia, notes):
            await ws.close()
