"""Seed 002's final FastAPI app, unchanged, under uvicorn with rawws.asgi.WebSocketProtocol.

The app's code is read from the seed's text at test time (``shared/seeds/002_*.txt``, beside the
repository; nothing of the tutorial is copied here): its three last code listings, the chat
rooms (``/ws/chat/{room_id}``), the notification system (``/ws/notifications``,
``/api/notify/{user_id}``, ``/api/broadcast``) and the authenticated socket
(``/ws/authenticated``, which the tutorial adds to the notification system's ``app``). Each
listing is executed as the tutorial's reader would run it; the chat app and the notification
app (two ``FastAPI()`` objects in the tutorial) are served side by side by path. Every endpoint
is then exercised the way the seed's client code does: ``websockets.connect``, ``send`` and
``recv`` of JSON text, several users at once, and HTTP POSTs for the API.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from .harness import serve

pytest.importorskip("fastapi", reason="fastapi is not installed: pip install -e '.[asgi-test]'")
jwt = pytest.importorskip("jwt", reason="PyJWT is not installed: pip install -e '.[asgi-test]'")
httpx = pytest.importorskip("httpx", reason="httpx is not installed: pip install -e '.[asgi-test]'")

import websockets  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

#: The tutorial's HMAC key is short; PyJWT says so, and the tutorial is run as written.
pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key is")

ROOT = Path(__file__).resolve().parents[2]
#: Where the seeds are: shared/ beside the clone (CI), or the workspace's shared/.
SEED_DIRS = [ROOT.parent / "shared" / "seeds", ROOT.parent.parent / "shared" / "seeds"]
HEADINGS = ["Real-Time Chat Application", "Real-Time Notification System",
            "Authentication for WebSockets", "Common Mistakes"]


def seed_text() -> str:
    for directory in SEED_DIRS:
        for path in sorted(directory.glob("002_*.txt")):
            return path.read_text(encoding="utf-8")
    pytest.skip(f"seed 002 not found in {', '.join(map(str, SEED_DIRS))}")


def listing(text: str, heading: str, following: str) -> str:
    """The code between two headings of the seed (the page's text keeps code verbatim)."""
    match = re.search(rf"^{re.escape(heading)}\n(.*?)^{re.escape(following)}\n", text,
                      re.MULTILINE | re.DOTALL)
    assert match, f"seed 002 has no section {heading!r}"
    code = match.group(1).strip("\n") + "\n"
    compile(code, heading, "exec")  # it is code, whole
    return code


def load_apps() -> tuple[Any, Any]:
    text = seed_text()
    chat, notify, auth = (listing(text, HEADINGS[i], HEADINGS[i + 1]) for i in range(3))
    chat_ns: dict[str, Any] = {"__name__": "seed002_chat"}
    exec(chat, chat_ns)
    notify_ns: dict[str, Any] = {"__name__": "seed002_notify"}
    exec(notify, notify_ns)
    exec(auth, notify_ns)  # the tutorial adds this endpoint to the notification app
    return chat_ns["app"], notify_ns["app"]


def side_by_side(chat_app: Any, notify_app: Any) -> Any:
    """One ASGI app serving both of the tutorial's apps, by path (neither is changed)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        target = chat_app if scope.get("path", "").startswith("/ws/chat/") else notify_app
        await target(scope, receive, send)

    return app


SECRET = "your-secret-key"  # the tutorial's


@pytest.fixture
def seed_app() -> Any:
    return side_by_side(*load_apps())


async def recv_json(ws: Any) -> dict[str, Any]:
    return json.loads(await ws.recv())  # type: ignore[no-any-return]


async def test_chat_rooms(seed_app: Any) -> None:
    async with serve(seed_app, "rawws") as served:
        url = f"{served.url}/ws/chat/lobby"
        alice = await connect(f"{url}?user_id=alice")
        joined = await recv_json(alice)  # the room's broadcast of her arrival...
        assert (joined["type"], joined["user_id"], joined["users"]) == (
            "user_joined", "alice", ["alice"])
        assert await recv_json(alice) == joined  # ...and the history, which now holds it

        bob = await connect(f"{url}?user_id=bob")
        for ws in (alice, bob):
            event = await recv_json(ws)
            assert (event["type"], event["user_id"], event["users"]) == (
                "user_joined", "bob", ["alice", "bob"])
        history = [await recv_json(bob), await recv_json(bob)]
        assert [e["user_id"] for e in history] == ["alice", "bob"]

        await alice.send(json.dumps({"type": "message", "content": "hi all"}))
        for ws in (alice, bob):
            event = await recv_json(ws)
            assert (event["type"], event["user_id"], event["content"]) == (
                "message", "alice", "hi all")

        await bob.send(json.dumps({"type": "private", "target": "alice", "content": "psst"}))
        event = await recv_json(alice)
        assert (event["type"], event["from"], event["content"]) == ("private", "bob", "psst")

        await alice.close()
        event = await recv_json(bob)
        assert (event["type"], event["user_id"], event["users"]) == ("user_left", "alice",
                                                                     ["bob"])
        # bob got nothing of the private message: the next thing he sees is his own message.
        await bob.send(json.dumps({"type": "message", "content": "alone"}))
        assert (await recv_json(bob))["content"] == "alone"
        await bob.close()


async def test_chat_room_requires_a_user_id(seed_app: Any) -> None:
    """FastAPI refuses the missing query parameter with a close before accepting: 403."""
    async with serve(seed_app, "rawws") as served:
        with pytest.raises(websockets.InvalidStatus) as caught:
            await connect(f"{served.url}/ws/chat/lobby")
    assert caught.value.response.status_code == 403


async def test_several_users_at_once(seed_app: Any) -> None:
    """The seed's multi-user client: users talk at the same time in one room.

    Both stay until both are done: the tutorial's broadcast has no error handling, so a user
    leaving while another's broadcast is in flight fails that other handler (with any server).
    """
    async with serve(seed_app, "rawws") as served:
        everyone_done = asyncio.Barrier(2)

        async def user(name: str, messages: list[str]) -> list[tuple[str, str]]:
            seen = []
            async with connect(f"{served.url}/ws/chat/busy?user_id={name}") as ws:
                for message in messages:
                    await ws.send(json.dumps({"type": "message", "content": message}))
                while len(seen) < 4:
                    event = await recv_json(ws)
                    if event["type"] == "message":
                        seen.append((event["user_id"], event["content"]))
                await everyone_done.wait()
            return seen

        alice, bob = await asyncio.gather(user("alice", ["Hi!", "How are you?"]),
                                          user("bob", ["Hey!", "Good thanks!"]))
    sent = {("alice", "Hi!"), ("alice", "How are you?"), ("bob", "Hey!"), ("bob", "Good thanks!")}
    assert set(alice) == set(bob) == sent
    # Each user's own messages arrive in the order they were sent.
    for seen in (alice, bob):
        assert [c for u, c in seen if u == "alice"] == ["Hi!", "How are you?"]
        assert [c for u, c in seen if u == "bob"] == ["Hey!", "Good thanks!"]


async def test_notifications_queued_live_and_broadcast(seed_app: Any) -> None:
    async with serve(seed_app, "rawws") as served:
        api = f"http://127.0.0.1:{served.port}"
        async with httpx.AsyncClient() as http:
            # Carol is offline: the notification is queued for her.
            answer = await http.post(f"{api}/api/notify/carol", json={"title": "queued"})
            assert answer.status_code == 200 and answer.json() == {"status": "sent"}

            carol = await connect(f"{served.url}/ws/notifications?user_id=carol")
            event = await recv_json(carol)
            assert event["title"] == "queued" and "timestamp" in event

            await carol.send("ping")
            assert await recv_json(carol) == {"type": "pong"}

            answer = await http.post(f"{api}/api/notify/carol", json={"title": "live"})
            assert answer.json() == {"status": "sent"}
            assert (await recv_json(carol))["title"] == "live"

            dan = await connect(f"{served.url}/ws/notifications?user_id=dan")
            answer = await http.post(f"{api}/api/broadcast", json={"title": "everyone"})
            assert answer.status_code == 200 and answer.json() == {"status": "broadcast"}
            for ws in (carol, dan):
                assert (await recv_json(ws))["title"] == "everyone"
            await carol.close()
            await dan.close()


def token(payload: dict[str, Any]) -> str:
    return str(jwt.encode(payload, SECRET, algorithm="HS256"))


async def test_authenticated_socket(seed_app: Any) -> None:
    async with serve(seed_app, "rawws") as served:
        url = f"{served.url}/ws/authenticated"
        good = token({"user_id": "erin", "exp": int(time.time()) + 600})
        async with connect(f"{url}?token={good}") as ws:
            await ws.send("hello")
            assert await recv_json(ws) == {"user": "erin", "message": "hello"}
        # The tutorial closes with 4001 / 4002 before accepting: per the ASGI spec that is an
        # HTTP 403 (the close codes never reach a client), with rawws as with uvicorn's own.
        expired = token({"user_id": "erin", "exp": int(time.time()) - 600})
        for bad in (expired, "not-a-jwt"):
            with pytest.raises(websockets.InvalidStatus) as caught:
                await connect(f"{url}?token={bad}")
            assert caught.value.response.status_code == 403
