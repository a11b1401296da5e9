"""Interop with ``aiohttp`` over real sockets, both directions.

aiohttp cannot send a fragmented message, so fragments are checked in the direction rawws ->
aiohttp only. Compression is parametrized on the aiohttp side; permessage-deflate is expected only
when ``rawws.sansio.deflate`` exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

import rawws

from ..aio.peers import until
from .scenarios import (
    BIG_BINARY,
    BIG_TEXT,
    FRAGMENTED_BINARY,
    FRAGMENTED_TEXT,
    HOST,
    MESSAGES,
    MIB,
    RawwsCommandServer,
    drive_rawws_client,
    expected_extensions,
    parse_close_command,
)

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import WSMsgType, web  # noqa: E402

COMPRESSION = pytest.mark.parametrize("peer_compression", [True, False],
                                      ids=["peer-deflate", "peer-plain"])


@asynccontextmanager
async def aiohttp_client(port: int, peer_compression: bool,
                         **kwargs: object) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as session, session.ws_connect(
        f"ws://{HOST}:{port}/", compress=15 if peer_compression else 0,
        max_msg_size=2 * MIB, **kwargs,
    ) as ws:
        yield ws


async def receive(ws: aiohttp.ClientWebSocketResponse | web.WebSocketResponse) -> str | bytes:
    message = await ws.receive()
    assert message.type in (WSMsgType.TEXT, WSMsgType.BINARY), message
    return message.data  # type: ignore[no-any-return]


async def send(ws: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
               message: str | bytes) -> None:
    if isinstance(message, str):
        await ws.send_str(message)
    else:
        await ws.send_bytes(message)


# --- rawws server, aiohttp client ----------------------------------------------------------------


@COMPRESSION
async def test_rawws_server_aiohttp_client_messages(peer_compression: bool) -> None:
    async with (rawws.serve(RawwsCommandServer(), HOST, 0) as server,
                aiohttp_client(server.port, peer_compression) as ws):
        await ws.send_str("cmd:ext")
        names = await receive(ws)
        assert isinstance(names, str)
        assert (names.split(",") if names else []) == expected_extensions(True, peer_compression)
        assert bool(ws.compress) is bool(expected_extensions(True, peer_compression))
        for message in MESSAGES:
            await send(ws, message)
            assert await receive(ws) == message


@COMPRESSION
async def test_rawws_server_aiohttp_client_fragments_and_one_mib(peer_compression: bool) -> None:
    async with (rawws.serve(RawwsCommandServer(), HOST, 0) as server,
                aiohttp_client(server.port, peer_compression) as ws):
        await ws.send_str("cmd:fragments")
        assert await receive(ws) == "".join(FRAGMENTED_TEXT)
        assert await receive(ws) == b"".join(FRAGMENTED_BINARY)
        await ws.send_str(BIG_TEXT)
        assert await receive(ws) == BIG_TEXT
        await ws.send_bytes(BIG_BINARY)
        assert await receive(ws) == BIG_BINARY
        await ws.send_str("cmd:big")
        assert await receive(ws) == BIG_TEXT
        assert await receive(ws) == BIG_BINARY


async def test_rawws_server_aiohttp_client_ping_both_ways() -> None:
    async with (rawws.serve(RawwsCommandServer(), HOST, 0) as server,
                aiohttp_client(server.port, True, autoping=False) as ws):
        await ws.ping(b"aiohttp-ping")
        message = await ws.receive()
        assert (message.type, message.data) == (WSMsgType.PONG, b"aiohttp-ping")
        await ws.send_str("cmd:ping")
        message = await ws.receive()
        assert (message.type, message.data) == (WSMsgType.PING, b"server-ping")
        await ws.pong(message.data)
        assert await receive(ws) == "pong received"


@pytest.mark.parametrize("code, reason", [(1000, ""), (1001, "going"), (3000, "x"),
                                          (4000, "client bye ✓")])
async def test_rawws_server_aiohttp_client_closes(code: int, reason: str) -> None:
    handler = RawwsCommandServer()
    async with rawws.serve(handler, HOST, 0) as server:
        async with aiohttp_client(server.port, True) as ws:
            await ws.close(code=code, message=reason.encode())
            assert ws.close_code == code
        await until(lambda: not server.connections)
    assert handler.closes == [(code, reason)]


@pytest.mark.parametrize("code, reason", [(1000, "done"), (1001, ""), (3000, "registered"),
                                          (4999, "server bye ✓")])
async def test_rawws_server_closes_aiohttp_client(code: int, reason: str) -> None:
    async with (rawws.serve(RawwsCommandServer(), HOST, 0) as server,
                aiohttp_client(server.port, True) as ws):
        await ws.send_str(f"cmd:close {code} {reason}")
        message = await ws.receive()
        assert (message.type, message.data, message.extra) == (WSMsgType.CLOSE, code, reason)
        assert ws.close_code == code


# --- aiohttp server, rawws client ----------------------------------------------------------------


class AiohttpCommandServer:
    """The command language on an aiohttp server (autoping off, to see the pong arrive)."""

    def __init__(self, compress: bool) -> None:
        self.compress = compress
        self.closes: list[tuple[int, str]] = []

    async def __call__(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=self.compress, autoping=False,
                                   max_msg_size=2 * MIB)
        await ws.prepare(request)
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.CLOSE:
                self.closes.append((message.data, message.extra or ""))
                await ws.close()
                break
            if message.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
            if message.type is WSMsgType.PING:
                await ws.pong(message.data)
            elif message.type is WSMsgType.PONG:
                if message.data == b"server-ping":
                    await ws.send_str("pong received")
            elif message.data == "cmd:fragments":
                # aiohttp cannot fragment: the same messages, whole.
                await ws.send_str("".join(FRAGMENTED_TEXT))
                await ws.send_bytes(b"".join(FRAGMENTED_BINARY))
            elif message.data == "cmd:big":
                await ws.send_str(BIG_TEXT)
                await ws.send_bytes(BIG_BINARY)
            elif message.data == "cmd:ping":
                await ws.ping(b"server-ping")
            elif message.data == "cmd:ext":
                await ws.send_str("permessage-deflate" if ws.compress else "")
            elif message.type is WSMsgType.TEXT and message.data.startswith("cmd:close "):
                code, reason = parse_close_command(message.data)
                await ws.close(code=code, message=reason.encode())
                break
            else:
                await send(ws, message.data)
        return ws


@asynccontextmanager
async def aiohttp_server(handler: AiohttpCommandServer) -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/", handler.__call__)  # a coroutine function, as aiohttp wants
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@COMPRESSION
@pytest.mark.parametrize("rawws_compression", [True, False], ids=["rawws-deflate", "rawws-plain"])
async def test_aiohttp_server_rawws_client(peer_compression: bool,
                                           rawws_compression: bool) -> None:
    handler = AiohttpCommandServer(peer_compression)
    async with aiohttp_server(handler) as port:
        await drive_rawws_client(f"ws://{HOST}:{port}/", compression=rawws_compression,
                                 peer_compression=peer_compression)
        async with rawws.connect(f"ws://{HOST}:{port}/",
                                 compression="deflate" if rawws_compression else None) as ws:
            await ws.send("cmd:ext")
            names = await ws.recv()
            assert isinstance(names, str)
            assert (names.split(",") if names else []) == expected_extensions(
                rawws_compression, peer_compression)
    assert handler.closes == [(1000, ""), (1000, "")]


@pytest.mark.parametrize("code, reason", [(1000, "bye"), (1001, ""), (3000, "a"),
                                          (4000, "rawws bye ✓")])
async def test_rawws_client_closes_aiohttp_server(code: int, reason: str) -> None:
    handler = AiohttpCommandServer(True)
    async with aiohttp_server(handler) as port:
        ws = await rawws.connect(f"ws://{HOST}:{port}/")
        await ws.close(code, reason)
        assert ws.state is rawws.State.CLOSED
        # aiohttp answers every close with 1000 rather than echoing the code (§5.5.1 only says
        # an endpoint "typically" echoes it).
        assert ws.close_code == 1000
    assert handler.closes == [(code, reason)]


@pytest.mark.parametrize("code, reason, ok", [(1000, "done", True), (1001, "", True),
                                              (3000, "registered", False),
                                              (4999, "server bye", False)])
async def test_aiohttp_server_closes_rawws_client(code: int, reason: str, ok: bool) -> None:
    async with aiohttp_server(AiohttpCommandServer(True)) as port:
        ws = await rawws.connect(f"ws://{HOST}:{port}/")
        await ws.send(f"cmd:close {code} {reason}")
        error = rawws.ConnectionClosedOK if ok else rawws.ConnectionClosedError
        with pytest.raises(error) as info:
            await ws.recv()
        assert (info.value.code, info.value.reason) == (code, reason)
        await ws.wait_closed()
        assert (ws.close_code, ws.close_reason) == (code, reason)
