"""End to end: every HTTP endpoint and every status it can answer, on the WebSocket port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rawws.chat.httpapi import client_key
from rawws.chat.server import ChatConfig, ChatServer

from .e2e import Limits, http, http_json, recv, request, running, send, user

KEY = "api-key-for-tests"
AUTH = [("Authorization", f"Bearer {KEY}")]


async def test_notify_sent_and_queued() -> None:
    async with running() as server:
        a1 = await user(server, "alice")
        a2 = await user(server, "alice", "/ws/notifications")
        status, body = await http_json(server, "POST", "/api/notify/alice",
                                       {"message": {"title": "build", "ok": True}})
        assert (status, body) == (200, {"status": "sent", "recipients": 2})
        for ws in (a1, a2):
            note = await recv(ws)
            assert note["type"] == "notification"
            assert note["message"] == {"title": "build", "ok": True}
        # Any other JSON body is the message itself (the tutorial posts plain objects).
        status, body = await http_json(server, "POST", "/api/notify/alice",
                                       {"title": "t", "body": "b"})
        assert (await recv(a1))["message"] == {"title": "t", "body": "b"}
        await recv(a2)
        status, body = await http_json(server, "POST", "/api/notify/bob", '"hello"')
        assert status == 200 and body["status"] == "queued" and body["recipients"] == 0
        bob = await user(server, "bob")
        item = await recv(bob)
        assert item["message"] == "hello" and item["message_id"] == body["message_id"]
        for ws in (a1, a2, bob):
            await ws.close()


async def test_broadcast_publish_and_room_post() -> None:
    async with running() as server:
        alice = await user(server, "alice")
        bob = await user(server, "bob", "/ws/notifications")
        status, body = await http_json(server, "POST", "/api/broadcast", {"message": "all"})
        assert (status, body) == (200, {"status": "sent", "recipients": 2})
        for ws in (alice, bob):
            assert (await recv(ws))["message"] == "all"
        await request(alice, {"type": "subscribe", "topics": ["ci.*"]})
        status, body = await http_json(server, "POST", "/api/publish/ci.main", {"message": 7})
        assert (status, body) == (200, {"status": "sent", "topic": "ci.main", "recipients": 1})
        note = await recv(alice)
        assert (note["topic"], note["message"], note["seq"]) == ("ci.main", 7, 1)
        await request(alice, {"type": "join", "room": "ops"})
        status, body = await http_json(server, "POST", "/api/rooms/ops/messages",
                                       {"content": "deploying", "user_id": "ci-bot"})
        posted = await recv(alice)
        assert (status, body) == (200, {"status": "sent", "room": "ops", "seq": 1,
                                        "message_id": posted["message_id"], "recipients": 1})
        assert (posted["user_id"], posted["content"], posted["seq"]) == ("ci-bot", "deploying", 1)
        status, body = await http_json(server, "POST", "/api/rooms/empty/messages",
                                       {"content": "first"})
        assert body["recipients"] == 0 and body["seq"] == 1
        for ws in (alice, bob):
            await ws.close()


async def test_read_endpoints() -> None:
    async with running() as server:
        alice = await user(server, "alice", "/ws/chat/lobby")
        await recv(alice)
        await send(alice, {"type": "message", "content": "hi"})
        message = await recv(alice)
        status, body = await http_json(server, "GET", "/api/rooms")
        assert (status, body) == (200, {"rooms": [{"room": "lobby", "user_count": 1, "seq": 1}]})
        status, body = await http_json(server, "GET", "/api/rooms/lobby")
        assert (status, body) == (200, {"room": "lobby", "users": ["alice"], "history": [message],
                                        "seq": 1, "epoch": message["epoch"]})
        status, body = await http_json(server, "GET", "/api/rooms/unknown")
        assert status == 404 and body["error"] == "not_found"
        status, body = await http_json(server, "GET", "/api/users/online")
        assert (status, body) == (200, {"users": ["alice"], "count": 1})
        status, body = await http_json(server, "GET", "/healthz")
        assert status == 200 and body["status"] == "ok"
        await alice.close()


@pytest.mark.parametrize(("method", "target", "body", "status", "error"), [
    ("GET", "/nope", None, 404, "not_found"),
    ("GET", "/api", None, 404, "not_found"),
    ("GET", "/api/notify/alice", None, 405, "method_not_allowed"),
    ("DELETE", "/api/rooms", None, 405, "method_not_allowed"),
    ("POST", "/healthz", "{}", 405, "method_not_allowed"),
    ("POST", "/api/notify/alice", None, 400, "bad_request"),
    ("POST", "/api/notify/alice", "", 400, "bad_request"),
    ("POST", "/api/notify/alice", "{nope", 400, "bad_json"),
    ("POST", "/api/notify/alice", b"\xff\xfe", 400, "bad_json"),
    ("POST", "/api/notify/alice", '{"a":NaN}', 400, "bad_json"),
    ("POST", "/api/notify/alice", "[" * 100 + "]" * 100, 400, "too_large"),
    ("POST", "/api/notify/bad%20name", "{}", 400, "bad_request"),
    ("POST", "/api/publish/a.*", "{}", 400, "bad_request"),
    ("POST", "/api/rooms/r/messages", "[1]", 400, "bad_request"),
    ("POST", "/api/rooms/r/messages", '{"text":"x"}', 400, "bad_request"),
    ("POST", "/api/rooms/r/messages", '{"content":"x","user_id":"a b"}', 400, "bad_request"),
    ("GET", "/api/rooms/bad%20room", None, 400, "bad_request"),
    ("POST", "/api/notify/alice", '{"message":"' + "x" * 20000 + '"}', 413, "too_large"),
    # Out-of-range numbers (issue 11 item 13), on every endpoint that reads a body: 400,
    # never a 500 when the value is encoded again.
    *[("POST", target, body.replace("N", number), 400, "bad_json")
      for number in ("1e400", "-1e400", "NaN", "Infinity", "-Infinity")
      for target, body in (("/api/notify/alice", '{"message":N}'),
                           ("/api/notify/alice", "N"),
                           ("/api/broadcast", '{"message":{"x":[N]}}'),
                           ("/api/publish/t", '{"message":N}'),
                           ("/api/rooms/r/messages", '{"content":N}'))],
])
async def test_http_errors(method: str, target: str, body: str | bytes | None, status: int,
                           error: str) -> None:
    async with running() as server:
        got_status, headers, payload = await http(server, method, target, body)
        assert got_status == status
        assert headers["content-type"] == "application/json"
        assert headers["x-content-type-options"] == "nosniff"
        assert b"Traceback" not in payload
        found = json.loads(payload)
        assert found["error"] == error and isinstance(found["message"], str)
        if status == 405:
            assert headers["allow"] in ("GET", "POST")


async def test_body_over_the_limit_is_413() -> None:
    async with running(limits=Limits(max_body_size=1000)) as server:
        # Refused from its Content-Length, before the body is read (documented: plain text).
        status, headers, payload = await http(server, "POST", "/api/broadcast", "x" * 5000)
        assert status == 413
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert payload == b"request body of 5000 bytes over 1000\n"
        assert server.metrics.http_requests[413] == 0  # the API never saw it


async def test_api_key() -> None:
    async with running(api_key=KEY) as server:
        status, headers, _ = await http(server, "POST", "/api/broadcast", '"x"')
        assert status == 401 and headers["www-authenticate"].startswith("Bearer")
        status, _, _ = await http(server, "GET", "/api/rooms", headers=[("Authorization",
                                                                         "Basic abc")])
        assert status == 401
        status, body = await http_json(server, "POST", "/api/broadcast", '"x"',
                                       [("Authorization", "Bearer wrong")])
        assert (status, body["error"]) == (403, "forbidden")
        status, body = await http_json(server, "POST", "/api/broadcast", '"x"', AUTH)
        assert (status, body) == (200, {"status": "sent", "recipients": 0})
        status, body = await http_json(server, "GET", "/api/users/online", headers=AUTH)
        assert status == 200
        # Health and metrics stay open for probes and scrapers.
        assert (await http(server, "GET", "/healthz"))[0] == 200
        assert (await http(server, "GET", "/metrics"))[0] == 200


async def test_static_files_and_headers(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>demo</title>")
    (tmp_path / "app.js").write_text("console.log(1)")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "style.css").write_text("body{}")
    (tmp_path.parent / "secret.txt").write_text("secret")
    async with running(static_dir=tmp_path) as server:
        status, headers, body = await http(server, "GET", "/")
        assert status == 200 and body == b"<!doctype html><title>demo</title>"
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert headers["x-content-type-options"] == "nosniff"
        csp = headers["content-security-policy"]
        host = f"127.0.0.1:{server.port}"
        assert f"connect-src 'self' ws://{host} wss://{host}" in csp
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        status, headers, body = await http(server, "GET", "/static/app.js")
        assert (status, body) == (200, b"console.log(1)")
        assert headers["content-type"] == "text/javascript; charset=utf-8"
        status, headers, _ = await http(server, "GET", "/static/sub/style.css")
        assert status == 200 and headers["content-type"] == "text/css; charset=utf-8"
        for target in ("/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/.hidden",
                       "/static/nope.js", "/static/sub", "/static/..%2fsecret.txt"):
            status, _, body = await http(server, "GET", target)
            assert status == 404, target
            assert b"secret" not in body
        assert (await http(server, "POST", "/static/app.js", "{}"))[0] == 405


async def test_a_static_file_over_4_mib_is_not_served(tmp_path: Path) -> None:
    from rawws.chat.httpapi import MAX_STATIC_SIZE
    (tmp_path / "big.js").write_bytes(b"x" * (MAX_STATIC_SIZE + 1))
    (tmp_path / "fits.js").write_bytes(b"x" * MAX_STATIC_SIZE)
    async with running(static_dir=tmp_path) as server:
        status, _, body = await http(server, "GET", "/static/big.js")
        assert status == 404 and len(body) < 1000  # never read into memory, never sent
        status, _, body = await http(server, "GET", "/static/fits.js")
        assert status == 200 and len(body) == MAX_STATIC_SIZE


async def test_index_without_a_page(tmp_path: Path) -> None:
    async with running(static_dir=tmp_path / "missing") as server:
        status, headers, body = await http(server, "GET", "/")
        assert status == 200 and headers["content-type"] == "text/plain; charset=utf-8"
        assert b"/ws/notifications" in body
        assert (await http(server, "GET", "/static/app.js"))[0] == 404


# --- per-address rate limit of the API ------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_api_requests_are_rate_limited_per_address() -> None:
    clock = FakeClock()
    limits = Limits(http_rate=0.25, http_burst=3.0)
    async with ChatServer(ChatConfig(port=0, ping_interval=None, api_key=KEY, limits=limits),
                          clock=clock) as server:
        for _ in range(3):
            status, _ = await http_json(server, "GET", "/api/users/online", headers=AUTH)
            assert status == 200
        status, headers, payload = await http(server, "POST", "/api/broadcast", '"x"', AUTH)
        assert status == 429
        assert headers["content-type"] == "application/json"
        assert headers["retry-after"] == "4"  # one token at 0.25 per second
        assert json.loads(payload)["error"] == "rate_limited"
        # Checked before the key, so guessing keys is limited too.
        status, _, _ = await http(server, "POST", "/api/broadcast", '"x"',
                                  [("Authorization", "Bearer guess")])
        assert status == 429
        # Unknown paths under /api/ count as API requests; the rest of the port does not.
        assert (await http(server, "GET", "/api/nope"))[0] == 429
        for target in ("/healthz", "/metrics", "/", "/static/app.js"):
            assert (await http(server, "GET", target))[0] == 200, target
        # In-process callers (no client address) are not limited.
        assert server.api.handle("GET", "/api/users/online", {"Authorization": f"Bearer {KEY}"},
                                 b"").status == 200
        clock.now += 4.0  # one token refilled
        assert (await http(server, "GET", "/api/rooms", headers=AUTH))[0] == 200
        assert (await http(server, "GET", "/api/rooms", headers=AUTH))[0] == 429
        assert server.metrics.http_rate_limited == 4
        assert server.metrics.http_requests[429] == 4
        metrics = (await http(server, "GET", "/metrics"))[2].decode()
        assert "rawws_http_rate_limited_total 4" in metrics.splitlines()
        assert "rawws_http_clients 1" in metrics.splitlines()


async def test_api_rate_limit_table_is_bounded_and_can_be_turned_off() -> None:
    limits = Limits(http_rate=1.0, http_burst=1.0, http_max_clients=5)
    async with running(limits=limits) as server:
        api = server.api
        for i in range(20):  # twenty addresses seen: only the last five are remembered
            assert api.handle("GET", "/api/rooms", {}, b"", client=f"10.0.0.{i}").status == 200
        assert api.buckets is not None and len(api.buckets) == 5
        assert api.handle("GET", "/api/rooms", {}, b"", client="10.0.0.19").status == 429
        assert api.handle("GET", "/api/rooms", {}, b"", client="10.0.0.0").status == 200
        # One IPv6 /64 is one client; an IPv4-mapped address is its IPv4 address.
        assert api.handle("GET", "/api/rooms", {}, b"", client="2001:db8::1").status == 200
        assert api.handle("GET", "/api/rooms", {}, b"",
                          client="2001:db8::ffff:2").status == 429
        assert api.handle("GET", "/api/rooms", {}, b"",
                          client="::ffff:10.0.0.19").status == 429
    async with running(limits=Limits(http_rate=None)) as server:
        assert server.api.buckets is None
        for _ in range(50):
            assert (await http(server, "GET", "/api/rooms"))[0] == 200


@pytest.mark.parametrize(("address", "key"), [
    ("127.0.0.1", "127.0.0.1"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("", ""),
    ("not an address", "not an address"),
])
def test_client_key(address: str, key: str) -> None:
    assert client_key(address) == key
