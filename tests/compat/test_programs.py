"""Small websockets programs, run with websockets and with rawws: same observable behaviour.

Every test takes ``lib`` (the fixture in conftest.py), uses only websockets' documented API
through it, and runs once per library. Where rawws differs on purpose the test says so and
docs/websockets-compat.md has the row.
"""

from __future__ import annotations

import asyncio
import base64
import http
import os
import tempfile
import types
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

HOST = "127.0.0.1"


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


def client(lib: types.ModuleType, port: int, path: str = "/", **kwargs: Any) -> Any:
    if lib.__name__ == "websockets":
        kwargs.setdefault("proxy", None)  # no proxy lookup from the environment
    return lib.connect(f"ws://{HOST}:{port}{path}", **kwargs)


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


# --- exceptions and close codes -------------------------------------------------------------


async def test_close_code_and_reason_reach_both_sides(lib: types.ModuleType) -> None:
    seen: list[Any] = []

    async def handler(ws: Any) -> None:
        try:
            await ws.recv()
        except lib.ConnectionClosed as exc:
            seen.append(exc)

    async with lib.serve(handler, HOST, 0) as server, client(lib, port_of(server)) as ws:
        await ws.close(4001, "bye now")
        assert (ws.close_code, ws.close_reason) == (4001, "bye now")
        assert ws.state is lib.State.CLOSED
    (exc,) = seen
    assert isinstance(exc, lib.ConnectionClosedError)  # 4001 is not a normal closure
    assert (exc.rcvd.code, exc.rcvd.reason) == (4001, "bye now")
    assert (exc.sent.code, exc.sent.reason) == (4001, "bye now")
    assert exc.rcvd_then_sent is True


async def test_normal_close_ends_async_for_and_sets_ok(lib: types.ModuleType) -> None:
    seen: list[Any] = []

    async def handler(ws: Any) -> None:
        seen.extend([message async for message in ws])
        try:
            await ws.recv()
        except lib.ConnectionClosedOK as exc:
            seen.append((exc.rcvd.code, exc.sent.code))

    async with lib.serve(handler, HOST, 0) as server, client(lib, port_of(server)) as ws:
        await ws.send("one")
        await ws.send(b"two")
    # Leaving serve() waited for the handler.
    assert seen == ["one", b"two", (1000, 1000)]


async def test_rejection_in_process_request(lib: types.ModuleType) -> None:
    def process_request(connection: Any, request: Any) -> Any:
        token = parse_qs(urlparse(request.path).query).get("token")
        if token != ["s3cret"]:
            return connection.respond(http.HTTPStatus.FORBIDDEN, "bad token\n")
        return None

    async with lib.serve(echo, HOST, 0, process_request=process_request) as server:
        with pytest.raises(lib.InvalidStatus) as info:
            async with client(lib, port_of(server), "/chat?token=nope"):
                pass
        assert info.value.response.status_code == 403
        assert info.value.response.body == b"bad token\n"
        assert isinstance(info.value, lib.InvalidHandshake)
        assert isinstance(info.value, lib.exceptions.WebSocketException)
        async with client(lib, port_of(server), "/chat?token=s3cret") as ws:
            await ws.send("in")
            assert await ws.recv() == "in"


async def test_basic_auth_sets_username(lib: types.ModuleType) -> None:
    names: list[str] = []

    async def handler(ws: Any) -> None:
        names.append(ws.username)
        await ws.send(f"hello {ws.username}")

    auth = lib.asyncio.server.basic_auth(realm="test", credentials=("alice", "pw"))
    async with lib.serve(handler, HOST, 0, process_request=auth) as server:
        port = port_of(server)
        with pytest.raises(lib.InvalidStatus) as info:
            async with client(lib, port):
                pass
        assert info.value.response.status_code == 401
        assert info.value.response.headers["WWW-Authenticate"].startswith('Basic realm="test"')
        bad = base64.b64encode(b"alice:wrong").decode()
        with pytest.raises(lib.InvalidStatus) as info:
            async with client(lib, port, additional_headers={"Authorization": f"Basic {bad}"}):
                pass
        assert info.value.response.status_code == 401
        good = base64.b64encode(b"alice:pw").decode()
        async with client(lib, port, additional_headers={"Authorization": f"Basic {good}"}) as ws:
            assert await ws.recv() == "hello alice"
        async with lib.connect(f"ws://alice:pw@{HOST}:{port}/",
                               **({"proxy": None} if lib.__name__ == "websockets" else {})) as ws:
            assert await ws.recv() == "hello alice"
    assert names == ["alice", "alice"]


async def test_application_attributes_on_connections(lib: types.ModuleType) -> None:
    def process_request(connection: Any, request: Any) -> None:
        connection.user = request.headers.get("X-User")

    async def handler(ws: Any) -> None:
        await ws.send(ws.user)

    async with (lib.serve(handler, HOST, 0, process_request=process_request) as server,
                client(lib, port_of(server), additional_headers=[("X-User", "bob")]) as ws):
        assert await ws.recv() == "bob"


async def test_unix_socket(lib: types.ModuleType) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "ws.sock")
        async with (lib.asyncio.server.unix_serve(echo, path),
                    lib.asyncio.client.unix_connect(path) as ws):
            await ws.send("over unix")
            assert await ws.recv() == "over unix"


# --- the connection API ------------------------------------------------------------------------


async def test_send_refuses_a_dict_before_sending(lib: types.ModuleType) -> None:
    async with lib.serve(echo, HOST, 0) as server, client(lib, port_of(server)) as ws:
        with pytest.raises(TypeError):
            await ws.send({"type": "chat", "text": "hi"})
        with pytest.raises(TypeError):
            await ws.send(42)
        await ws.send({"type": "keys"}.keys())  # explicitly the keys: one fragmented message
        assert await ws.recv() == "type"
        await ws.send(["frag", "mented"])
        assert await ws.recv() == "fragmented"


async def test_ping_returns_a_pong_waiter_with_the_latency(lib: types.ModuleType) -> None:
    async with lib.serve(echo, HOST, 0) as server, client(lib, port_of(server)) as ws:
        assert ws.latency == 0.0
        pong_waiter = await ws.ping()
        latency = await pong_waiter
        assert isinstance(latency, float) and latency >= 0.0
        assert ws.latency == latency
        waiter = await ws.ping(b"payload")
        with pytest.raises(lib.ConcurrencyError):
            await ws.ping(b"payload")
        assert await waiter >= 0.0


async def test_request_path_carries_the_query_string(lib: types.ModuleType) -> None:
    seen: list[Any] = []

    async def handler(ws: Any) -> None:
        seen.append(ws.request.path)
        seen.append(parse_qs(urlparse(ws.request.path).query))
        await ws.send(ws.request.headers["X-Token"])

    async with (lib.serve(handler, HOST, 0) as server,
                client(lib, port_of(server), "/room?token=abc&x=1",
                       additional_headers={"X-Token": "t"}) as ws):
        assert await ws.recv() == "t"
        assert ws.response.status_code == 101
        assert ws.request.path == "/room?token=abc&x=1"
    assert seen == ["/room?token=abc&x=1", {"token": ["abc"], "x": ["1"]}]


async def test_connection_attributes(lib: types.ModuleType) -> None:
    import uuid
    seen: list[Any] = []

    async def handler(ws: Any) -> None:
        seen.append((ws.id, ws.remote_address, ws.local_address, ws.state, ws.subprotocol,
                     ws.close_code, ws.close_reason))
        await ws.send("x")
        await ws.wait_closed()

    async with lib.serve(handler, HOST, 0) as server:
        port = port_of(server)
        async with client(lib, port) as ws:
            assert await ws.recv() == "x"
            assert isinstance(ws.id, uuid.UUID)
            assert ws.remote_address == (HOST, port_of(server))
            assert ws.local_address[0] == HOST
            assert ws.state is lib.State.OPEN
        assert ws.state is lib.State.CLOSED
    ((conn_id, remote, local, state, subprotocol, code, reason),) = seen
    assert isinstance(conn_id, uuid.UUID) and conn_id != ws.id
    assert remote[0] == HOST and local == (HOST, port)
    assert (state, subprotocol, code, reason) == (lib.State.OPEN, None, None, None)


async def test_recv_decode_and_streaming(lib: types.ModuleType) -> None:
    async with lib.serve(echo, HOST, 0) as server, client(lib, port_of(server)) as ws:
        await ws.send("té")
        assert await ws.recv(decode=False) == "té".encode()
        await ws.send("té".encode())
        assert await ws.recv(decode=True) == "té"
        await ws.send(b"whole")
        parts = [part async for part in ws.recv_streaming()]
        assert b"".join(parts) == b"whole"


async def test_send_text_flag(lib: types.ModuleType) -> None:
    async with lib.serve(echo, HOST, 0) as server, client(lib, port_of(server)) as ws:
        await ws.send(b'{"json": true}', text=True)
        assert await ws.recv() == '{"json": true}'
        await ws.send("as binary", text=False)
        assert await ws.recv() == b"as binary"


# --- the server --------------------------------------------------------------------------------


async def test_two_argument_select_subprotocol(lib: types.ModuleType) -> None:
    seen: list[Any] = []

    def select_subprotocol(connection: Any, subprotocols: Any) -> str | None:
        seen.append((type(connection).__name__, list(subprotocols)))
        return "b" if "b" in subprotocols else None

    async def handler(ws: Any) -> None:
        await ws.send(ws.subprotocol or "none")

    async with lib.serve(handler, HOST, 0, select_subprotocol=select_subprotocol) as server:
        async with client(lib, port_of(server), subprotocols=["a", "b"]) as ws:
            assert ws.subprotocol == "b"
            assert await ws.recv() == "b"
        async with client(lib, port_of(server), subprotocols=["a"]) as ws:
            assert ws.subprotocol is None
            assert await ws.recv() == "none"
    assert seen == [("ServerConnection", ["a", "b"]), ("ServerConnection", ["a"])]


async def test_subprotocols_negotiation(lib: types.ModuleType) -> None:
    async def handler(ws: Any) -> None:
        await ws.send(ws.subprotocol)

    async with lib.serve(handler, HOST, 0, subprotocols=["chat", "superchat"]) as server:
        async with client(lib, port_of(server), subprotocols=["superchat", "chat"]) as ws:
            assert ws.subprotocol == "chat"  # the server's order of preference
            assert await ws.recv() == "chat"
        for offered in (["other"], None):
            with pytest.raises(lib.InvalidStatus) as info:
                async with client(lib, port_of(server), subprotocols=offered):
                    pass
            assert info.value.response.status_code == 400


async def test_process_response_may_replace_or_add_headers(lib: types.ModuleType) -> None:
    def process_response(connection: Any, request: Any, response: Any) -> None:
        response.headers["X-Extra"] = "yes"

    async with (lib.serve(echo, HOST, 0, process_response=process_response) as server,
                client(lib, port_of(server)) as ws):
        assert ws.response.headers["X-Extra"] == "yes"


async def test_process_request_exception_is_500(lib: types.ModuleType) -> None:
    def process_request(connection: Any, request: Any) -> None:
        raise RuntimeError("bug in the hook")

    async with lib.serve(echo, HOST, 0, process_request=process_request) as server:
        with pytest.raises(lib.InvalidStatus) as info:
            async with client(lib, port_of(server)):
                pass
        assert info.value.response.status_code == 500


async def test_serve_forever_ends_with_close(lib: types.ModuleType) -> None:
    server = await lib.serve(echo, HOST, 0)
    serving = asyncio.ensure_future(server.serve_forever())
    async with client(lib, port_of(server)) as ws:
        await ws.send("x")
        assert await ws.recv() == "x"
        server.close()
        await serving  # returns once the server and its connections are closed
        assert ws.close_code == 1001


async def test_cancelling_serve_forever_closes_the_server(lib: types.ModuleType) -> None:
    server = await lib.serve(echo, HOST, 0)
    serving = asyncio.ensure_future(server.serve_forever())
    async with client(lib, port_of(server)) as ws:
        await ws.send("x")
        assert await ws.recv() == "x"
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
        await ws.wait_closed()
        assert ws.close_code == 1001
    assert not server.is_serving()


async def test_server_close_code_and_reason(lib: types.ModuleType) -> None:
    async with lib.serve(echo, HOST, 0) as server, client(lib, port_of(server)) as ws:
        server.close(True, 1012, "restarting")
        with pytest.raises(lib.ConnectionClosedError) as info:
            await ws.recv()
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (1012, "restarting")
        await server.wait_closed()


async def test_origins_with_patterns(lib: types.ModuleType) -> None:
    import re
    origins = ["https://exact.example", re.compile(r"https://[a-z]+\.allowed\.example"), None]
    async with lib.serve(echo, HOST, 0, origins=origins) as server:
        for origin in ("https://exact.example", "https://app.allowed.example", None):
            async with client(lib, port_of(server), origin=origin) as ws:
                await ws.send("ok")
                assert await ws.recv() == "ok"
        for origin in ("https://evil.example", "https://app.allowed.example.evil"):
            with pytest.raises(lib.InvalidStatus) as info:
                async with client(lib, port_of(server), origin=origin):
                    pass
            assert info.value.response.status_code == 403


async def test_handler_exception_closes_1011(lib: types.ModuleType) -> None:
    async def handler(ws: Any) -> None:
        raise RuntimeError("handler bug")

    async with lib.serve(handler, HOST, 0) as server, client(lib, port_of(server)) as ws:
        with pytest.raises(lib.ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.rcvd.code == 1011


# --- the client --------------------------------------------------------------------------------


async def test_redirects_are_followed(lib: types.ModuleType) -> None:
    def process_request(connection: Any, request: Any) -> Any:
        if request.path == "/old":
            response = connection.respond(http.HTTPStatus.FOUND, "moved\n")
            response.headers["Location"] = "/new?x=1"
            return response
        return None

    async def handler(ws: Any) -> None:
        await ws.send(ws.request.path)

    async with (lib.serve(handler, HOST, 0, process_request=process_request) as server,
                client(lib, port_of(server), "/old") as ws):
        assert await ws.recv() == "/new?x=1"


async def test_async_for_reconnects_and_process_exception_decides(
        lib: types.ModuleType) -> None:
    attempts: list[str] = []

    def process_request(connection: Any, request: Any) -> Any:
        attempts.append(request.path)
        if len(attempts) == 1:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "busy\n")
        if len(attempts) == 3:
            return connection.respond(http.HTTPStatus.FORBIDDEN, "go away\n")
        return None

    async def handler(ws: Any) -> None:
        await ws.send("welcome")

    async with lib.serve(handler, HOST, 0, process_request=process_request) as server:
        received: list[str] = []
        with pytest.raises(lib.InvalidStatus) as info:
            async for ws in _fast_reconnect(lib, port_of(server)):
                received.append(await ws.recv())
        assert info.value.response.status_code == 403  # fatal: not retried
    assert received == ["welcome"]
    assert len(attempts) == 3  # 503 retried, 101, then 403 raised


def _fast_reconnect(lib: types.ModuleType, port: int) -> Any:
    """``async for`` with no delay between attempts (``reconnect_delays``)."""
    def no_delay() -> Any:
        while True:
            yield 0.0
    return client(lib, port, reconnect_delays=no_delay)


async def test_open_timeout(lib: types.ModuleType) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers the handshake

    server = await asyncio.start_server(silent, HOST, 0)
    try:
        with pytest.raises(TimeoutError):
            await client(lib, server.sockets[0].getsockname()[1], open_timeout=0.2)
    finally:
        server.close()


async def test_user_agent_and_limits(lib: types.ModuleType) -> None:
    agents: list[str | None] = []

    async def handler(ws: Any) -> None:
        agents.append(ws.request.headers.get("User-Agent"))
        async for message in ws:
            await ws.send(message)

    async with lib.serve(handler, HOST, 0, max_size=(1000, 1000)) as server:
        async with client(lib, port_of(server), user_agent_header="probe/1.0",
                          max_size=2**16, max_queue=(8, 2), write_limit=(2**15, 2**13)) as ws:
            await ws.send("x" * 1000)
            assert await ws.recv() == "x" * 1000
            await ws.send("y" * 1001)
            with pytest.raises(lib.ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.rcvd.code == 1009
        async with client(lib, port_of(server), user_agent_header=None) as ws:
            pass
    assert agents == ["probe/1.0", None]
