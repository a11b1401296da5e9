"""Interop with the ``websockets`` library over real sockets, both directions.

Compression is parametrized on the websockets side: rawws offers / accepts permessage-deflate
only when ``rawws.sansio.deflate`` exists, and the tests expect exactly that.
"""

from __future__ import annotations

from typing import Any

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

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.asyncio.server import ServerConnection as WsServerConnection  # noqa: E402
from websockets.asyncio.server import serve as ws_serve  # noqa: E402
from websockets.exceptions import ConnectionClosed as WsConnectionClosed  # noqa: E402

COMPRESSION = pytest.mark.parametrize("peer_compression", [True, False],
                                      ids=["peer-deflate", "peer-plain"])


def ws_client(port: int, peer_compression: bool, **kwargs: Any) -> Any:
    return ws_connect(f"ws://{HOST}:{port}/", compression="deflate" if peer_compression else None,
                      proxy=None, ping_interval=None, max_size=2 * MIB, **kwargs)


# --- rawws server, websockets client -------------------------------------------------------------


@COMPRESSION
async def test_rawws_server_websockets_client_messages(peer_compression: bool) -> None:
    handler = RawwsCommandServer()
    async with (rawws.serve(handler, HOST, 0, max_size=2 * MIB) as server,
                ws_client(server.port, peer_compression) as ws):
        await ws.send("cmd:ext")
        extensions = await ws.recv()
        assert (extensions.split(",") if extensions else []) == expected_extensions(
            True, peer_compression)
        assert [e.name for e in ws.protocol.extensions] == expected_extensions(
            True, peer_compression)
        for message in MESSAGES:
            await ws.send(message)
            assert await ws.recv() == message


@COMPRESSION
async def test_rawws_server_websockets_client_fragments(peer_compression: bool) -> None:
    async with (rawws.serve(RawwsCommandServer(), HOST, 0) as server,
                ws_client(server.port, peer_compression) as ws):
        await ws.send(["frag", "mented ", "by websockets"])
        assert await ws.recv() == "fragmented by websockets"
        await ws.send([b"\x01", b"\x02\x03"])
        assert await ws.recv() == b"\x01\x02\x03"
        await ws.send("cmd:fragments")
        assert await ws.recv() == "".join(FRAGMENTED_TEXT)
        assert await ws.recv() == b"".join(FRAGMENTED_BINARY)
        # websockets can hand over the fragments themselves.
        await ws.send("cmd:fragments")
        assert [f async for f in ws.recv_streaming()] == FRAGMENTED_TEXT
        assert [f async for f in ws.recv_streaming()] == FRAGMENTED_BINARY


@COMPRESSION
async def test_rawws_server_websockets_client_one_mib(peer_compression: bool) -> None:
    async with (rawws.serve(RawwsCommandServer(), HOST, 0) as server,
                ws_client(server.port, peer_compression) as ws):
        await ws.send(BIG_TEXT)  # exactly rawws's default max_size
        assert await ws.recv() == BIG_TEXT
        await ws.send(BIG_BINARY)
        assert await ws.recv() == BIG_BINARY
        await ws.send("cmd:big")
        assert await ws.recv() == BIG_TEXT
        assert await ws.recv() == BIG_BINARY


@COMPRESSION
async def test_rawws_server_websockets_client_ping(peer_compression: bool) -> None:
    async with (rawws.serve(RawwsCommandServer(), HOST, 0) as server,
                ws_client(server.port, peer_compression) as ws):
        pong_waiter = await ws.ping(b"websockets-ping")
        assert await pong_waiter >= 0.0
        await ws.send("cmd:ping")
        assert await ws.recv() == "pong received"


@pytest.mark.parametrize("code, reason", [(1000, ""), (1001, "going"), (3000, "x"),
                                          (4000, "client bye ✓")])
async def test_rawws_server_websockets_client_closes(code: int, reason: str) -> None:
    handler = RawwsCommandServer()
    async with rawws.serve(handler, HOST, 0) as server:
        async with ws_client(server.port, True) as ws:
            await ws.close(code, reason)
        assert (ws.close_code, ws.close_reason) == (code, reason)  # rawws echoed it
        await server_closed(server)
    assert handler.closes == [(code, reason)]


@pytest.mark.parametrize("code, reason", [(1000, "done"), (1001, ""), (3000, "registered"),
                                          (4999, "server bye ✓")])
async def test_rawws_server_closes_websockets_client(code: int, reason: str) -> None:
    async with (rawws.serve(RawwsCommandServer(), HOST, 0) as server,
                ws_client(server.port, True) as ws):
        await ws.send(f"cmd:close {code} {reason}")
        with pytest.raises(WsConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (code, reason)


async def test_rawws_server_fails_websockets_client_message_too_big() -> None:
    async with (rawws.serve(RawwsCommandServer(), HOST, 0, max_size=1000) as server,
                ws_client(server.port, False) as ws):
        await ws.send("x" * 1001)
        with pytest.raises(WsConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def server_closed(server: rawws.Server) -> None:
    await until(lambda: not server.connections)


# --- websockets server, rawws client -------------------------------------------------------------


class WebsocketsCommandServer:
    def __init__(self) -> None:
        self.closes: list[tuple[int, str]] = []

    async def __call__(self, ws: WsServerConnection) -> None:
        try:
            async for message in ws:
                if message == "cmd:fragments":
                    await ws.send(FRAGMENTED_TEXT)
                    await ws.send(FRAGMENTED_BINARY)
                elif message == "cmd:big":
                    await ws.send(BIG_TEXT)
                    await ws.send(BIG_BINARY)
                elif message == "cmd:ping":
                    await (await ws.ping(b"server-ping"))
                    await ws.send("pong received")
                elif message == "cmd:ext":
                    await ws.send(",".join(e.name for e in ws.protocol.extensions))
                elif isinstance(message, str) and message.startswith("cmd:close "):
                    await ws.close(*parse_close_command(message))
                else:
                    await ws.send(message)
        except WsConnectionClosed:
            pass
        await ws.wait_closed()
        if ws.close_code is not None:
            self.closes.append((ws.close_code, ws.close_reason or ""))


def ws_server(handler: WebsocketsCommandServer, peer_compression: bool) -> Any:
    return ws_serve(handler, HOST, 0, compression="deflate" if peer_compression else None,
                    ping_interval=None, max_size=2 * MIB)


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


@COMPRESSION
@pytest.mark.parametrize("rawws_compression", [True, False], ids=["rawws-deflate", "rawws-plain"])
async def test_websockets_server_rawws_client(peer_compression: bool,
                                              rawws_compression: bool) -> None:
    handler = WebsocketsCommandServer()
    async with ws_server(handler, peer_compression) as server:
        await drive_rawws_client(f"ws://{HOST}:{port_of(server)}/",
                                 compression=rawws_compression,
                                 peer_compression=peer_compression)
    assert handler.closes == [(1000, "")]


@pytest.mark.parametrize("code, reason", [(1000, "bye"), (1001, ""), (3000, "a"),
                                          (4000, "rawws bye ✓")])
async def test_rawws_client_closes_websockets_server(code: int, reason: str) -> None:
    handler = WebsocketsCommandServer()
    async with ws_server(handler, True) as server:
        ws = await rawws.connect(f"ws://{HOST}:{port_of(server)}/")
        await ws.close(code, reason)
        assert (ws.close_code, ws.close_reason) == (code, reason)
        assert ws.state is rawws.State.CLOSED
    assert handler.closes == [(code, reason)]


@pytest.mark.parametrize("code, reason, ok", [(1000, "done", True), (1001, "", True),
                                              (3000, "registered", False),
                                              (4999, "server bye", False)])
async def test_websockets_server_closes_rawws_client(code: int, reason: str, ok: bool) -> None:
    async with ws_server(WebsocketsCommandServer(), True) as server:
        ws = await rawws.connect(f"ws://{HOST}:{port_of(server)}/")
        await ws.send(f"cmd:close {code} {reason}")
        error = rawws.ConnectionClosedOK if ok else rawws.ConnectionClosedError
        with pytest.raises(error) as info:
            await ws.recv()
        assert (info.value.code, info.value.reason) == (code, reason)
        await ws.wait_closed()
        assert (ws.close_code, ws.close_reason) == (code, reason)


async def test_websockets_server_pings_rawws_client_keepalive() -> None:
    """websockets' own keepalive against rawws: its pings get answered, nothing closes."""
    async with (ws_serve(WebsocketsCommandServer(), HOST, 0, ping_interval=0.02,
                         ping_timeout=5) as server,
                rawws.connect(f"ws://{HOST}:{port_of(server)}/") as ws):
        for _ in range(5):
            await ws.send("cmd:ping")
            assert await ws.recv() == "pong received"
        connection = next(iter(server.connections))
        await until(lambda: connection.latency > 0.0)
        assert ws.state is rawws.State.OPEN
