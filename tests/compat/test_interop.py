"""rawws and websockets talking to each other, every pairing: the server from one library, the
client from the other (and each with itself, as the reference), over real sockets.

Each test is written once against websockets' API and runs four times:
server x client in {websockets, rawws}.
"""

from __future__ import annotations

import http
import types
from typing import Any

import pytest
import websockets

import rawws

HOST = "127.0.0.1"
LIBS = {"websockets": websockets, "rawws": rawws}
PAIRS = [(s, c) for s in sorted(LIBS) for c in sorted(LIBS)]


@pytest.fixture(params=PAIRS, ids=[f"{s}-server-{c}-client" for s, c in PAIRS])
def pair(request: pytest.FixtureRequest) -> tuple[types.ModuleType, types.ModuleType]:
    server, client = request.param
    return LIBS[server], LIBS[client]


def connect(lib: types.ModuleType, port: int, path: str = "/", **kwargs: Any) -> Any:
    if lib is websockets:
        kwargs.setdefault("proxy", None)
    return lib.connect(f"ws://{HOST}:{port}{path}", **kwargs)


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


async def test_fragmented_messages_both_ways(pair: tuple[Any, Any]) -> None:
    server_lib, client_lib = pair

    async def handler(ws: Any) -> None:
        async for message in ws:
            if message == "send fragments":
                await ws.send(["frag", "men", "ted"])
                await ws.send([b"\x00\x01", b"\x02"])
            else:
                await ws.send(message)

    async with (server_lib.serve(handler, HOST, 0) as server,
                connect(client_lib, port_of(server)) as ws):
        await ws.send(["he", "llo", " ", "world"])
        assert await ws.recv() == "hello world"
        await ws.send(iter([b"a" * 70000, b"b" * 3]))
        assert await ws.recv() == b"a" * 70000 + b"bbb"

        async def chunks() -> Any:
            for part in ("as", "ync"):
                yield part
        await ws.send(chunks())
        assert await ws.recv() == "async"
        await ws.send("send fragments")
        assert await ws.recv() == "fragmented"
        assert await ws.recv() == b"\x00\x01\x02"


async def test_ping_pong_waiters_both_ways(pair: tuple[Any, Any]) -> None:
    server_lib, client_lib = pair
    server_latencies: list[float] = []

    async def handler(ws: Any) -> None:
        async for message in ws:
            waiter = await ws.ping(message)
            server_latencies.append(await waiter)
            await ws.send("pong came back")

    async with (server_lib.serve(handler, HOST, 0) as server,
                connect(client_lib, port_of(server)) as ws):
        waiter = await ws.ping(b"from the client")
        assert await waiter >= 0.0
        await ws.send("from the server")
        assert await ws.recv() == "pong came back"
    assert len(server_latencies) == 1 and server_latencies[0] >= 0.0


@pytest.mark.parametrize("code, reason", [(1000, ""), (1001, "going"), (4000, "app-defined"),
                                          (1011, "oops"), (3000, "é" * 40)])
async def test_close_codes_and_reasons_both_ways(pair: tuple[Any, Any], code: int,
                                                 reason: str) -> None:
    server_lib, client_lib = pair
    seen: list[Any] = []

    async def handler(ws: Any) -> None:
        message = await ws.recv()
        if message == "close me":
            await ws.close(code, reason)
        else:
            await ws.wait_closed()
        seen.append((ws.close_code, ws.close_reason))

    async with server_lib.serve(handler, HOST, 0) as server:
        async with connect(client_lib, port_of(server)) as ws:  # the server closes
            await ws.send("close me")
            with pytest.raises(client_lib.ConnectionClosed) as info:
                await ws.recv()
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (code, reason)
            ok = code in (1000, 1001)
            assert isinstance(info.value, client_lib.ConnectionClosedOK) is ok
        async with connect(client_lib, port_of(server)) as ws:  # the client closes
            await ws.send("wait")
            await ws.close(code, reason)
            assert (ws.close_code, ws.close_reason) == (code, reason)
    assert seen == [(code, reason), (code, reason)]


async def test_subprotocols(pair: tuple[Any, Any]) -> None:
    server_lib, client_lib = pair

    async def handler(ws: Any) -> None:
        await ws.send(f"server chose {ws.subprotocol}")

    async with server_lib.serve(handler, HOST, 0, subprotocols=["v2", "v1"]) as server:
        async with connect(client_lib, port_of(server), subprotocols=["v1", "v2"]) as ws:
            assert ws.subprotocol == "v2"
            assert await ws.recv() == "server chose v2"
        with pytest.raises(client_lib.InvalidStatus) as info:
            async with connect(client_lib, port_of(server), subprotocols=["v3"]):
                pass
        assert info.value.response.status_code == 400


async def test_rejection_in_process_request(pair: tuple[Any, Any]) -> None:
    server_lib, client_lib = pair

    def process_request(connection: Any, request: Any) -> Any:
        if request.headers.get("Authorization") != "Bearer good":
            response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "who are you?\n")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return None

    async with server_lib.serve(echo, HOST, 0, process_request=process_request) as server:
        with pytest.raises(client_lib.InvalidStatus) as info:
            async with connect(client_lib, port_of(server)):
                pass
        response = info.value.response
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.body == b"who are you?\n"
        async with connect(client_lib, port_of(server),
                           additional_headers={"Authorization": "Bearer good"}) as ws:
            await ws.send("in")
            assert await ws.recv() == "in"
