"""rawws.sync against aiohttp over real sockets, both directions, with and without
permessage-deflate: messages of every size class, fragments (rawws -> aiohttp; aiohttp cannot
send them), pings, close codes and reasons, rejections."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import rawws
import rawws.sync.client
import rawws.sync.server

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import WSMsgType, web  # noqa: E402

HOST = "127.0.0.1"
MESSAGES = ["hello", "", "é∑🌍" * 100, b"\x00\xff", b"", b"x" * 70000, "y" * 200_000]
COMPRESSION = pytest.mark.parametrize("compression", ["deflate", None],
                                      ids=["deflate", "plain"])


@contextmanager
def sync_server(handler: Any, **kwargs: Any) -> Iterator[int]:
    server = rawws.sync.server.serve(handler, HOST, 0, **kwargs)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server.socket.getsockname()[1]
    finally:
        server.shutdown()
        thread.join(30)


def echo_or_command(ws: Any) -> None:
    for message in ws:
        if message == "fragments":
            ws.send(["frag", "ments"])
        elif message == "ping":
            assert ws.ping(b"sync ping").wait(10)
            ws.send("pong received")
        elif isinstance(message, str) and message.startswith("close "):
            _, code, reason = message.split(" ", 2)
            ws.close(int(code), reason)
        else:
            ws.send(message)


@COMPRESSION
async def test_aiohttp_client_against_rawws_sync_server(compression: str | None) -> None:
    with sync_server(echo_or_command, compression=compression) as port:
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"ws://{HOST}:{port}/", max_msg_size=2**20, compress=15) as ws:
            assert bool(ws.compress) is (compression is not None)  # offered: accepted?
            for message in MESSAGES:
                await (ws.send_str(message) if isinstance(message, str)
                       else ws.send_bytes(message))
                reply = await ws.receive()
                assert reply.data == message
            await ws.send_str("fragments")
            assert (await ws.receive()).data == "fragments"
            await ws.send_str("ping")
            assert (await ws.receive()).data == "pong received"
            await ws.send_str("close 4001 done here")
            closing = await ws.receive()
            assert closing.type is WSMsgType.CLOSE
            assert (closing.data, closing.extra) == (4001, "done here")


@COMPRESSION
async def test_rawws_sync_client_against_aiohttp_server(compression: str | None) -> None:
    async def handle(request: web.Request) -> web.WebSocketResponse:
        if request.headers.get("Authorization") != "Bearer ok":
            raise web.HTTPForbidden(text="no entry")
        ws = web.WebSocketResponse(max_msg_size=2**20)
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT and message.data.startswith("close "):
                _, code, reason = message.data.split(" ", 2)
                await ws.close(code=int(code), message=reason.encode())
            elif message.type is WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def client() -> None:
        with pytest.raises(rawws.InvalidStatus) as info:
            rawws.sync.client.connect(f"ws://{HOST}:{port}/", compression=compression)
        assert info.value.response.status_code == 403
        with rawws.sync.client.connect(f"ws://{HOST}:{port}/", compression=compression,
                                       additional_headers={"Authorization": "Bearer ok"}
                                       ) as ws:
            assert bool(ws.protocol.extensions) is (compression is not None)
            for message in MESSAGES:
                ws.send(message)
                assert ws.recv(timeout=10) == message
            ws.send(["frag", "mented"])  # aiohttp reassembles
            assert ws.recv(timeout=10) == "fragmented"
            assert ws.ping(b"hello aiohttp").wait(10)
            ws.send("close 4002 bye")
            with pytest.raises(rawws.ConnectionClosedError) as closed:
                ws.recv(timeout=10)
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4002, "bye")

    try:
        await asyncio.to_thread(client)
    finally:
        await runner.cleanup()
