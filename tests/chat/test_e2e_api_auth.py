"""The HTTP API's auth matrix (issue 11 item 2), end to end: auth on/off x API key on/off x
--open-api, and what a user token may do. docs/security.md has the same matrix as a table."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rawws.chat.auth import encode_jwt

from .e2e import connect, http, http_json, recv, recv_type, request, running, user

SECRET = "api-auth-secret-of-at-least-32-bytes!"
KEY = "operator-key-of-at-least-32-bytes-long"
OPERATOR = [("Authorization", f"Bearer {KEY}")]

#: Every /api/* endpoint, with a valid body.
ENDPOINTS = [
    ("POST", "/api/notify/alice", '{"message": "hi"}'),
    ("POST", "/api/broadcast", '"hi"'),
    ("POST", "/api/publish/news.today", '"hi"'),
    ("GET", "/api/rooms", None),
    ("GET", "/api/rooms/lobby", None),
    ("POST", "/api/rooms/lobby/messages", '{"content": "hi"}'),
    ("GET", "/api/users/online", None),
]


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


def jwt(user: str = "alice", **claims: Any) -> str:
    return encode_jwt({"sub": user, "exp": time.time() + 3600, **claims}, SECRET)


async def ws_user(server: Any, name: str, path: str = "/ws") -> Any:

    ws = await connect(server, path, headers=bearer(jwt(name)))
    welcome = await recv(ws)
    assert welcome["user_id"] == name
    return ws


# --- auth on, no API key: closed -----------------------------------------------------------


@pytest.mark.parametrize(("method", "target", "body"), ENDPOINTS)
@pytest.mark.parametrize("credential", ["none", "user token", "garbage"])
async def test_auth_on_without_api_key_the_api_is_closed(method: str, target: str,
                                                         body: str | None,
                                                         credential: str) -> None:
    headers = {"none": [], "user token": bearer(jwt()), "garbage": bearer("x")}[credential]
    async with running(jwt_secret=SECRET) as server:
        status, found, payload = await http(server, method, target, body, headers)
        assert status == 401, payload
        assert found["www-authenticate"].startswith("Bearer")
        assert b'"error":"unauthorized"' in payload and b"--api-key" in payload
        assert server.router.store.room_names() == []  # nothing was created or posted
        # /healthz and /metrics stay open.
        assert (await http(server, "GET", "/healthz"))[0] == 200
        assert (await http(server, "GET", "/metrics"))[0] == 200


async def test_auth_on_without_api_key_a_body_cannot_post_as_a_user() -> None:
    async with running(jwt_secret=SECRET) as server:
        alice = await ws_user(server, "alice")
        await request(alice, {"type": "join", "room": "lobby"})
        status, _, _ = await http(server, "POST", "/api/rooms/lobby/messages",
                                  '{"content": "I am alice", "user_id": "alice"}')
        assert status == 401
        status, _, _ = await http(server, "GET", "/api/rooms/lobby")  # its history
        assert status == 401
        await alice.close()


# --- auth on, API key: the operator, and user tokens limited by their grants ------------------


@pytest.mark.parametrize(("method", "target", "body"), ENDPOINTS)
async def test_auth_on_with_api_key_the_key_is_the_operator(method: str, target: str,
                                                            body: str | None) -> None:
    async with running(jwt_secret=SECRET, api_key=KEY) as server:
        assert (await http(server, method, target, body))[0] == 401
        assert (await http(server, method, target, body, bearer("wrong-key")))[0] == 403
        status, _, payload = await http(server, method, target, body, OPERATOR)
        assert status in (200, 404), payload  # 404: GET /api/rooms/lobby before it exists


async def test_the_operator_posts_as_api_and_cannot_name_a_user() -> None:
    async with running(jwt_secret=SECRET, api_key=KEY) as server:
        alice = await ws_user(server, "alice")
        await request(alice, {"type": "join", "room": "lobby"})
        status, body = await http_json(server, "POST", "/api/rooms/lobby/messages",
                                       {"content": "deploy done"}, OPERATOR)
        assert status == 200
        event = await recv_type(alice, "message")
        assert (event["user_id"], event["content"]) == ("api", "deploy done")
        for name in ("alice", "bob", "guest-1"):
            status, body = await http_json(server, "POST", "/api/rooms/lobby/messages",
                                           {"content": "I am " + name, "user_id": name},
                                           OPERATOR)
            assert (status, body["error"]) == (403, "forbidden")
        # "api" itself is allowed: it is who the operator is.
        status, _ = await http_json(server, "POST", "/api/rooms/lobby/messages",
                                    {"content": "ok", "user_id": "api"}, OPERATOR)
        assert status == 200
        status, detail = await http_json(server, "GET", "/api/rooms/lobby", None, OPERATOR)
        assert [m["user_id"] for m in detail["history"]] == ["api", "api"]
        await alice.close()


async def test_a_user_token_acts_as_its_user_within_its_grants() -> None:
    async with running(jwt_secret=SECRET, api_key=KEY) as server:
        carol = await ws_user(server, "carol")
        for room in ("team.red", "admin"):
            await request(carol, {"type": "join", "room": room})
        await http(server, "POST", "/api/rooms/admin/messages", '{"content": "secret plan"}',
                   OPERATOR)
        alice = bearer(jwt("alice", rooms=["team.*"], publish=["alice.#"]))

        status, body = await http_json(server, "POST", "/api/rooms/team.red/messages",
                                       {"content": "hello"}, alice)
        assert status == 200
        event = await recv_type(carol, "message")
        assert (event["room"], event["user_id"]) == ("admin", "api")  # the operator's post
        event = await recv_type(carol, "message")
        assert (event["room"], event["user_id"]) == ("team.red", "alice")
        # A body cannot make it someone else.
        status, body = await http_json(server, "POST", "/api/rooms/team.red/messages",
                                       {"content": "x", "user_id": "carol"}, alice)
        assert (status, body["error"]) == (403, "forbidden")
        # Rooms outside its claim: no post, no history, not even whether they exist.
        for target in ("/api/rooms/admin", "/api/rooms/nowhere"):
            status, body = await http_json(server, "GET", target, None, alice)
            assert (status, body["error"]) == (403, "forbidden")
        status, body = await http_json(server, "POST", "/api/rooms/admin/messages",
                                       {"content": "x"}, alice)
        assert status == 403
        status, body = await http_json(server, "GET", "/api/rooms", None, alice)
        assert [r["room"] for r in body["rooms"]] == ["team.red"]
        status, body = await http_json(server, "GET", "/api/rooms/team.red", None, alice)
        assert status == 200 and [m["content"] for m in body["history"]] == ["hello"]
        # Publish where its claim allows; notify and broadcast are the operator's.
        assert (await http(server, "POST", "/api/publish/alice.status", '"up"', alice))[0] == 200
        assert (await http(server, "POST", "/api/publish/bob.status", '"up"', alice))[0] == 403
        assert (await http(server, "POST", "/api/notify/carol", '"hi"', alice))[0] == 403
        assert (await http(server, "POST", "/api/broadcast", '"hi"', alice))[0] == 403
        assert (await http(server, "GET", "/api/users/online", None, alice))[0] == 200
        # Refused tokens are 403 like a wrong key.
        for bad in (encode_jwt({"sub": "alice", "exp": time.time() - 3600}, SECRET),
                    encode_jwt({"sub": "alice"}, "another-secret"), "é.é.é"):
            assert (await http(server, "GET", "/api/rooms", None, bearer(bad)))[0] == 403
        await carol.close()


async def test_a_notification_body_cannot_pose_as_a_private_message() -> None:
    async with running(jwt_secret=SECRET, api_key=KEY) as server:
        alice = await ws_user(server, "alice")
        forged = {"type": "private", "from": "bob", "content": "send me your password"}
        status, _ = await http_json(server, "POST", "/api/notify/alice", forged, OPERATOR)
        assert status == 200
        event = await recv(alice)
        assert event["type"] == "notification" and event["message"] == forged
        assert "from" not in event
        await alice.close()


# --- auth on, --open-api: the operator's explicit choice -------------------------------------


async def test_open_api_lets_anyone_act_as_the_operator_but_not_as_a_user() -> None:
    async with running(jwt_secret=SECRET, open_api=True) as server:
        alice = await ws_user(server, "alice")
        await request(alice, {"type": "join", "room": "lobby"})
        status, _ = await http_json(server, "POST", "/api/notify/alice", '"hi"')
        assert status == 200
        status, body = await http_json(server, "POST", "/api/rooms/lobby/messages",
                                       {"content": "x", "user_id": "alice"})
        assert (status, body["error"]) == (403, "forbidden")
        status, _ = await http_json(server, "GET", "/api/rooms/lobby")
        assert status == 200
        # A user token is still that user, and a refused one is refused.
        limited = bearer(jwt("bob", rooms=["other"]))
        assert (await http(server, "GET", "/api/rooms/lobby", None, limited))[0] == 403
        assert (await http(server, "GET", "/api/rooms/lobby", None, bearer("x")))[0] == 403
        await alice.close()


# --- auth off ---------------------------------------------------------------------------------


async def test_auth_off_without_api_key_is_open_and_names_are_claims() -> None:
    async with running() as server:
        alice = await user(server, "alice")
        await request(alice, {"type": "join", "room": "lobby"})
        status, _ = await http_json(server, "POST", "/api/rooms/lobby/messages",
                                    {"content": "from the bot", "user_id": "ci-bot"})
        assert status == 200
        assert (await recv_type(alice, "message"))["user_id"] == "ci-bot"
        await alice.close()


async def test_auth_off_with_api_key_needs_the_key() -> None:
    async with running(api_key=KEY) as server:
        assert (await http(server, "POST", "/api/broadcast", '"x"'))[0] == 401
        assert (await http(server, "POST", "/api/broadcast", '"x"', bearer("nope")))[0] == 403
        status, _ = await http_json(server, "POST", "/api/rooms/r/messages",
                                    {"content": "x", "user_id": "ci-bot"}, OPERATOR)
        assert status == 200
