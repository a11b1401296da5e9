"""End to end: every way to present a token, every way a token fails, grants, expiry."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path

import pytest

import rawws
from rawws.chat.auth import encode_jwt

from .e2e import Limits, closed, connect, http, recv, request, running, send, wall

SECRET = "e2e-secret"


def token(**claims: object) -> str:
    return encode_jwt({"sub": "alice", **claims}, SECRET)


async def test_token_in_authorization_header() -> None:
    async with running(jwt_secret=SECRET) as server:
        ws = await connect(server, "/ws?user_id=mallory",
                           headers=[("Authorization", f"Bearer {token()}")])
        welcome = await recv(ws)
        assert welcome["user_id"] == "alice"  # user_id is ignored when auth is on
        await ws.close()


async def test_token_in_query_and_cookie() -> None:
    async with running(jwt_secret=SECRET) as server:
        ws = await connect(server, f"/ws?token={token()}")
        assert (await recv(ws))["user_id"] == "alice"
        await ws.close()
        ws = await connect(server, "/ws/notifications",
                           headers=[("Cookie", f"theme=dark; rawws_token={token(sub='bob')}")])
        assert (await recv(ws))["user_id"] == "bob"
        await ws.close()


async def test_token_in_first_message() -> None:
    async with running(jwt_secret=SECRET) as server:
        ws = await connect(server, "/ws")
        reply = await request(ws, {"type": "auth", "token": token(), "id": "a"})
        assert reply["type"] == "welcome" and reply["user_id"] == "alice" and reply["id"] == "a"
        assert await request(ws, {"type": "ping"}) == {"type": "pong"}
        await ws.close()
        # The tutorial's form: {"token": ...} without a type.
        ws = await connect(server, "/ws/chat/lobby")
        await send(ws, {"token": token()})
        assert (await recv(ws))["type"] == "welcome"
        assert (await recv(ws))["type"] == "joined"
        await ws.close()


def forge(header: dict[str, object], claims: dict[str, object], signature: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()),
                     b64(signature)])


FAILURES = {
    "expired": (token(exp=time.time() - 3600), 4001),
    "not yet valid": (token(nbf=time.time() + 3600), 4002),
    "bad signature": (encode_jwt({"sub": "alice"}, "not-the-secret"), 4002),
    "alg none": (forge({"alg": "none", "typ": "JWT"}, {"sub": "alice"}, b""), 4002),
    "wrong algorithm": (encode_jwt({"sub": "alice"}, SECRET, alg="HS512"), 4002),
    "RS256": (encode_jwt({"sub": "alice"}, SECRET, alg="RS256"), 4002),
    "garbage": ("not.a.jwt", 4002),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
@pytest.mark.parametrize("where", ["header", "query", "message"])
async def test_bad_tokens_close_with_4001_or_4002(case: str, where: str) -> None:
    bad, code = FAILURES[case]
    # HS512 is "wrong" only because this server accepts HS256 alone.
    async with running(jwt_secret=SECRET, jwt_algorithms=("HS256",)) as server:
        if where == "header":
            ws = await connect(server, "/ws", headers=[("Authorization", f"Bearer {bad}")])
        elif where == "query":
            ws = await connect(server, f"/ws?token={bad}")
        else:
            ws = await connect(server, "/ws")
            await send(ws, {"type": "auth", "token": bad})
        got, reason = await closed(ws)
        assert got == code
        assert reason and SECRET not in reason and bad not in reason
        assert server.metrics.closes[code] == 1
        assert server.router.sessions == {}


def signed(payload: bytes) -> str:
    """A JWT correctly signed with SECRET whose payload part is ``payload`` as given."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256"}') + "." + b64(payload)
    digest = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(digest)}"


NON_ASCII = ["é.é.é", "eyJhbGciOiJIUzI1NiJ9.é.AAAA", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.ÿ"]
UNDECODABLE = [
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.A",  # a signature whose base64url cannot decode
    signed(b"\xff\xfe"),  # payload not UTF-8, correctly signed
    signed(b'{"sub":"alice","exp":1e400}'),
    signed(b'{"sub":"alice","exp":NaN}'),
]
CASES = [
    *[(where, bad) for where in ("header", "cookie", "message") for bad in NON_ASCII + UNDECODABLE],
    *[("query", bad) for bad in UNDECODABLE],
    ("query", "%C3%A9.%C3%A9.%C3%A9"),
    ("query", "eyJhbGciOiJIUzI1NiJ9.%C3%A9.AAAA"),
    ("query", "eyJhbGciOiJIUzI1NiJ9.%FF%FE.AAAA"),  # not UTF-8 once unquoted
]


@pytest.mark.parametrize(("where", "bad"), CASES)
async def test_undecodable_tokens_close_with_4002_not_1011(where: str, bad: str) -> None:
    """Issue 11 item 5: a JWT that is not ASCII or not decodable in any part is refused like
    any bad token (4002); it used to escape the verifier as an exception (1011)."""
    async with running(jwt_secret=SECRET) as server:
        if where == "header":
            ws = await connect(server, "/ws", headers=[("Authorization", f"Bearer {bad}")])
        elif where == "cookie":
            ws = await connect(server, "/ws", headers=[("Cookie", f"rawws_token={bad}")])
        elif where == "query":
            ws = await connect(server, f"/ws?token={bad}")
        else:
            ws = await connect(server, "/ws")
            await send(ws, {"type": "auth", "token": bad})
        got, reason = await closed(ws)
        assert got == 4002 and reason
        assert server.metrics.closes[4002] == 1 and server.metrics.closes[1011] == 0


async def test_a_first_message_with_out_of_range_numbers_is_1008_not_1011() -> None:
    async with running(jwt_secret=SECRET) as server:
        for text in ('{"type":"auth","token":1e400}', '{"type":"auth","token":"x","id":NaN}'):
            ws = await connect(server, "/ws")
            await send(ws, text)
            assert (await closed(ws))[0] == 1008  # not an auth message: policy violation
        assert server.metrics.closes[1011] == 0


@pytest.mark.virtual_clock
@pytest.mark.parametrize("auth_timeout", [Limits().auth_timeout, 60.0])
async def test_missing_token_times_out_with_1008(auth_timeout: float) -> None:
    loop = asyncio.get_running_loop()
    async with running(jwt_secret=SECRET, limits=Limits(auth_timeout=auth_timeout)) as server:
        ws = await connect(server, "/ws")
        opened = loop.time()
        assert await closed(ws) == (1008, "authentication timeout")
        assert loop.time() == opened + auth_timeout


@pytest.mark.parametrize("first", ['{"type":"ping"}', "ping", "not json", '{"type":"auth"}'])
async def test_anything_but_a_token_first_closes_1008(first: str) -> None:
    async with running(jwt_secret=SECRET) as server:
        ws = await connect(server, "/ws")
        await send(ws, first)
        assert await closed(ws) == (1008, "authentication required")


async def test_static_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text("# demo tokens\nsecret-carol carol\n", encoding="utf-8")
    async with running(tokens_file=str(path)) as server:
        ws = await connect(server, "/ws", headers=[("Authorization", "Bearer secret-carol")])
        assert (await recv(ws))["user_id"] == "carol"
        await ws.close()
        ws = await connect(server, "/ws", headers=[("Authorization", "Bearer secret-carox")])
        assert (await closed(ws))[0] == 4002


async def test_claims_restrict_rooms_topics_publish() -> None:
    limited = token(rooms=["team.*"], topics=["stock.*"], publish=["stock.AAPL"])
    async with running(jwt_secret=SECRET) as server:
        ws = await connect(server, "/ws", headers=[("Authorization", f"Bearer {limited}")])
        await recv(ws)
        assert (await request(ws, {"type": "join", "room": "team.red"}))["type"] == "joined"
        assert (await request(ws, {"type": "join", "room": "hq"}))["code"] == "forbidden"
        assert (await request(ws, {"type": "subscribe", "topics": ["stock.X"]}))["type"] == (
            "subscribed")
        assert (await request(ws, {"type": "subscribe", "topics": ["news"]}))["code"] == (
            "forbidden")
        reply = await request(ws, {"type": "publish", "topic": "stock.AAPL", "message": 1})
        assert reply == {"type": "published", "topic": "stock.AAPL", "recipients": 0}
        reply = await request(ws, {"type": "publish", "topic": "stock.MSFT", "message": 1})
        assert reply["code"] == "forbidden"
        await ws.close()


@pytest.mark.virtual_clock
@pytest.mark.parametrize("leeway", [0.0, 30.0])
async def test_token_expiring_during_the_session_closes_4001(leeway: float) -> None:
    async with running(jwt_secret=SECRET, jwt_leeway=leeway) as server:
        expires = int(wall()) + 3600  # an hour from now (JWT times are whole seconds)
        ws = await connect(server, "/ws",
                           headers=[("Authorization", f"Bearer {token(exp=expires)}")])
        assert (await recv(ws))["type"] == "welcome"
        await asyncio.sleep(expires + leeway - 1 - wall())
        await ws.send('{"type":"ping"}')
        assert (await recv(ws)) == {"type": "pong"}  # a second before the end: still in
        assert await closed(ws) == (4001, "token expired")
        assert wall() - expires == pytest.approx(leeway, abs=1e-6)  # exp, plus the leeway


async def test_auth_off_ignores_tokens() -> None:
    async with running() as server:
        ws = await connect(server, "/ws?user_id=zed&token=whatever")
        assert (await recv(ws))["user_id"] == "zed"
        error = await request(ws, {"type": "auth", "token": "x"})
        assert error["code"] == "bad_request"
        await ws.close()


async def test_tokens_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret_token = token()
    with caplog.at_level(logging.DEBUG):
        async with running(jwt_secret=SECRET) as server:
            ws = await connect(server, f"/ws?token={secret_token}")
            await recv(ws)
            await ws.close()
            ws = await connect(server, "/ws?token=bogus-token-value")
            await closed(ws)
            await http(server, "GET", f"/api/rooms?token={secret_token}")
    # The server's records (the chat layer's own and rawws's transcript, which the chat
    # server routes through its redacting logger). The test's client logs are not the server's.
    server_records = [r for r in caplog.records if r.name.startswith("rawws.chat")]
    assert any("HTTP 101 to /ws?" in r.getMessage() for r in server_records)
    text = "\n".join(r.getMessage() for r in server_records)
    assert secret_token not in text and "bogus-token-value" not in text
    assert SECRET not in text
    assert "/api/rooms?token=***" in text


async def test_invalid_status_for_missing_endpoint_even_with_auth() -> None:
    async with running(jwt_secret=SECRET) as server:
        with pytest.raises(rawws.InvalidStatus) as info:
            await connect(server, f"/elsewhere?token={token()}")
        assert info.value.status_code == 404
