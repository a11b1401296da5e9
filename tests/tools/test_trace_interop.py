"""``rawws trace`` between real peers: rawws, websockets and aiohttp as client and as server, in
every combination, over real sockets on 127.0.0.1.

For each pair the same conversation goes through the proxy (a short text, a compressible text,
a binary message, a ping, the close) and the trace must describe the wire exactly: forwarded
bytes equal received bytes, each frame serialized again from its event gives back the bytes
that crossed, data (inflated when compressed) equals what the application sent, and no
violation is reported, since all three peers follow the RFC.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import rawws

from .helpers import BOUND, HOST, check_describes_the_wire, frames, tracing, violations

websockets = pytest.importorskip("websockets")
aiohttp = pytest.importorskip("aiohttp")
from aiohttp import WSMsgType, web  # noqa: E402
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.asyncio.server import serve as ws_serve  # noqa: E402

SHORT = "Hello"
LONG = "compress me " * 40  # 480 bytes: over every peer's compression threshold
BINARY = bytes(range(7))
PING = b"ping?"

# --- servers: echo, each on a free port --------------------------------------------------------


@contextlib.asynccontextmanager
async def rawws_server() -> AsyncIterator[int]:
    async def echo(ws: rawws.ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with rawws.serve(echo, HOST, 0) as server:
        yield server.port


@contextlib.asynccontextmanager
async def websockets_server() -> AsyncIterator[int]:
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with ws_serve(echo, HOST, 0) as server:
        yield next(iter(server.sockets)).getsockname()[1]


@contextlib.asynccontextmanager
async def aiohttp_server() -> AsyncIterator[int]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # compress=True: permessage-deflate when offered
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


SERVERS = {"rawws": rawws_server, "websockets": websockets_server, "aiohttp": aiohttp_server}

# --- clients: the conversation -----------------------------------------------------------------


async def rawws_client(port: int) -> None:
    async with rawws.connect(f"ws://{HOST}:{port}/") as ws:
        for message in (SHORT, LONG, BINARY):
            await ws.send(message)
            assert await ws.recv() == message
        await (await ws.ping(PING))


async def websockets_client(port: int) -> None:
    async with ws_connect(f"ws://{HOST}:{port}/") as ws:
        for message in (SHORT, LONG, BINARY):
            await ws.send(message)
            assert await ws.recv() == message
        await (await ws.ping(PING))


async def aiohttp_client(port: int) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"ws://{HOST}:{port}/", compress=15, autoping=False) as ws:
        for message in (SHORT, LONG, BINARY):
            if isinstance(message, str):
                await ws.send_str(message)
            else:
                await ws.send_bytes(message)
            got = await ws.receive()
            assert got.data == message
        await ws.ping(PING)
        pong = await ws.receive()  # without autoping, pongs come as messages
        assert (pong.type, pong.data) == (WSMsgType.PONG, PING)


CLIENTS: dict[str, Callable[[int], Awaitable[None]]] = {
    "rawws": rawws_client, "websockets": websockets_client, "aiohttp": aiohttp_client}


@pytest.mark.parametrize("server_name", list(SERVERS))
@pytest.mark.parametrize("client_name", list(CLIENTS))
async def test_trace_between_real_peers(client_name: str, server_name: str) -> None:
    async with SERVERS[server_name]() as port, tracing(port) as (proxy, writer):
        async with asyncio.timeout(BOUND):
            await CLIENTS[client_name](proxy.port_listening)
            await proxy.drain()
    events = writer.events
    assert violations(events) == []
    check_describes_the_wire(proxy, events)

    client = frames(events, "c2s")
    server = frames(events, "s2c")
    assert all(f.masked and f.mask is not None and len(f.mask) == 4 for f in client)
    assert all(not f.masked and f.mask is None for f in server)
    # The conversation, in order, as the applications sent it (inflated where compressed).
    for side in (client, server):
        kinds = [f.opcode for f in side]
        assert kinds[:3] == ["TEXT", "TEXT", "BINARY"], kinds
        assert [f.data for f in side[:3]] == [SHORT.encode(), LONG.encode(), BINARY]
        assert [f.text for f in side[:3]] == [SHORT, LONG, None]
        assert all(f.fin for f in side)
        assert side[-1].opcode == "CLOSE" and side[-1].code == 1000
    assert [(f.opcode, f.data) for f in client if f.opcode == "PING"] == [("PING", PING)]
    assert [(f.opcode, f.data) for f in server if f.opcode == "PONG"] == [("PONG", PING)]

    # permessage-deflate: every pair here negotiates it, and the long message goes compressed
    # both ways; the trace shows the compressed length and the inflated text.
    response = next(e for e in events if getattr(e, "line", "").startswith("HTTP/1.1 101"))
    assert any(name.lower() == "sec-websocket-extensions" and "permessage-deflate" in value
               for name, value in response.headers)  # type: ignore[attr-defined]
    for side in (client, server):
        long_frame = side[1]
        assert long_frame.compressed and long_frame.rsv1
        assert long_frame.length < len(LONG) and long_frame.inflated == LONG.encode()
