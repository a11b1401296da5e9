"""Keepalive, size limits, deflate, flow control, closing and shutdown under real uvicorn
servers, for rawws' class and uvicorn's two (per-class expectations where they differ)."""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect

from rawws.sansio.codes import Opcode
from rawws.sansio.frames import RSV1
from tests.aio.peers import RawClient, until, upgrade_request

from .harness import serve  # skips the module without uvicorn

Receive = Any
Send = Any


def recorder() -> Any:
    """Accept; echo text and bytes; record every event; return at the disconnect."""
    events: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        while True:
            event = await receive()
            events.append(event)
            if event["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif event["type"] == "websocket.receive":
                key = "text" if event.get("text") is not None else "bytes"
                await send({"type": "websocket.send", key: event[key]})
            else:
                return

    app.events = events  # type: ignore[attr-defined]
    return app


async def test_keepalive_ping_timeout_closes_with_1011(ws: str) -> None:
    app = recorder()
    async with serve(app, ws, ws_ping_interval=0.05, ws_ping_timeout=0.05) as served:
        client = await RawClient.connect(served.port)
        # Never answer the pings: read frames until the server gives up.
        (code, reason), frames = await client.read_until_close()
        await asyncio.gather(*served.server.server_state.tasks)
    assert {opcode for _, opcode, _ in frames} <= {Opcode.PING}
    assert frames, "at least one keepalive ping"
    assert (code, reason) == (1011, "keepalive ping timeout")
    if ws == "rawws":
        assert app.events[-1] == {"type": "websocket.disconnect", "code": 1011,
                                  "reason": "keepalive ping timeout"}
    else:
        assert app.events[-1]["type"] == "websocket.disconnect"


async def test_keepalive_answered_keeps_the_connection(ws: str) -> None:
    async with serve(recorder(), ws, ws_ping_interval=0.02, ws_ping_timeout=5.0) as served:
        client = await RawClient.connect(served.port)
        for _ in range(3):
            _, opcode, payload = await client.read_frame()
            assert opcode == Opcode.PING and len(payload) == 4
            client.send_frame(Opcode.PONG, payload)
        client.send_frame(Opcode.TEXT, b"still here")
        frame = await client.read_frame()
        while frame[1] == Opcode.PING:
            frame = await client.read_frame()
        assert frame == (True, Opcode.TEXT, b"still here")


async def test_keepalive_disabled(ws: str) -> None:
    async with (serve(recorder(), ws, ws_ping_interval=None) as served,
                connect(served.url, ping_interval=None) as client):
        await client.send("x")
        assert await client.recv() == "x"
        assert served.connection().ping_timer is None


@pytest.mark.parametrize("fragmented", [False, True], ids=["one-frame", "fragments"])
async def test_max_size_is_1009(ws: str, fragmented: bool) -> None:
    app = recorder()
    async with serve(app, ws, ws_max_size=1000, ws_per_message_deflate=False) as served:
        client = await RawClient.connect(served.port)
        client.send_frame(Opcode.BINARY, b"a" * 1000)
        assert await client.read_frame() == (True, Opcode.BINARY, b"a" * 1000)
        if fragmented:
            client.send_frame(Opcode.BINARY, b"b" * 600, fin=False)
            client.send_frame(Opcode.CONTINUATION, b"b" * 401)
        else:
            client.send_frame(Opcode.BINARY, b"b" * 1001)
        (code, _), frames = await client.read_until_close()
        await asyncio.gather(*served.server.server_state.tasks)
    assert frames == []
    assert code == 1009
    assert app.events[-1]["type"] == "websocket.disconnect"
    assert app.events[-1]["code"] == 1009


#: A text message that is not UTF-8: 1007 (RFC 6455 §8.1); uvicorn's wsproto class drops TCP.
BAD_UTF8 = {"rawws": 1007, "websockets-sansio": 1007, "wsproto": None}


async def test_invalid_utf8_is_1007(ws: str) -> None:
    async with serve(recorder(), ws) as served:
        client = await RawClient.connect(served.port)
        client.send_frame(Opcode.TEXT, b"caf\xc3")
        try:
            (code, _), _ = await client.read_until_close()
        except asyncio.IncompleteReadError:
            code = None
    assert code == BAD_UTF8[ws]


async def test_permessage_deflate(ws: str) -> None:
    async with (serve(recorder(), ws) as served,
                connect(served.url, compression="deflate") as client):
        (extension,) = client.protocol.extensions
        assert extension.name == "permessage-deflate"
        message = "compressible " * 500
        await client.send(message)
        assert await client.recv() == message
    # And refused when the server is configured without it.
    async with (serve(recorder(), ws, ws_per_message_deflate=False) as served,
                connect(served.url, compression="deflate") as client):
        assert client.protocol.extensions == []


async def test_deflate_frames_are_compressed_on_the_wire(ws: str) -> None:
    """A raw client offers deflate without context takeover and reads the server's frame."""
    async with serve(recorder(), ws) as served:
        client = await RawClient.open(served.port)
        offer = ("Sec-WebSocket-Extensions",
                 "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        client.write(upgrade_request(extra=[offer])[0])
        status, headers, _ = await client.read_response(body=False)
        assert status == 101
        assert headers["sec-websocket-extensions"].startswith("permessage-deflate")
        text = b"x" * 2000
        compressor = zlib.compressobj(wbits=-12)
        payload = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)
        client.send_frame(Opcode.TEXT, payload[:-4], rsv=RSV1)
        frame = await client.reader.readexactly(2)
        assert frame[0] == 0x80 | RSV1 | Opcode.TEXT  # FIN, RSV1: compressed
        body = await client.reader.readexactly(frame[1] & 0x7F)
        assert len(body) < 100
        assert zlib.decompressobj(wbits=-15).decompress(body + b"\x00\x00\xff\xff") == text


async def test_graceful_shutdown_sends_1012(ws: str) -> None:
    app = recorder()
    async with serve(app, ws) as served:
        client = await connect(served.url)
        await client.send("x")
        assert await client.recv() == "x"
        await served.server.shutdown()
        with pytest.raises(websockets.ConnectionClosed):
            await client.recv()
    assert client.close_code == 1012
    assert app.events[-1] == {"type": "websocket.disconnect", "code": 1012}


async def test_shutdown_before_accept_is_500(ws: str) -> None:
    decided = asyncio.Event()
    events: list[Any] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        events.append(await receive())
        decided.set()
        events.append(await receive())

    async with serve(app, ws) as served:
        client = await RawClient.open(served.port)
        client.write(upgrade_request()[0])
        await decided.wait()
        await served.server.shutdown()
        status, _, body = await client.read_response()
    assert (status, body) == (500, b"Internal Server Error")
    assert events[-1] == {"type": "websocket.disconnect", "code": 1006}


#: A message and the peer's close in one read: rawws lets the application answer the message
#: before the close goes out; uvicorn's classes echo the close at once, and the answer fails.
ANSWERED = {"rawws": True, "websockets-sansio": False, "wsproto": False}


async def test_message_and_close_in_one_read(ws: str) -> None:
    app = recorder()
    async with serve(app, ws) as served:
        client = await RawClient.connect(served.port)
        client.write(client.frame(Opcode.TEXT, b"last") + client.frame(Opcode.CLOSE, b"\x03\xe8"))
        (code, _), frames = await client.read_until_close()
        await asyncio.gather(*served.server.server_state.tasks)
    assert code == 1000
    assert (frames == [(True, Opcode.TEXT, b"last")]) is ANSWERED[ws]
    assert app.events[1] == {"type": "websocket.receive", "text": "last"}
    if ANSWERED[ws]:
        assert app.events[2:] == [{"type": "websocket.disconnect", "code": 1000, "reason": ""}]
    else:
        assert app.events[2:] == []  # its answer raised ClientDisconnected


async def test_message_then_protocol_error_in_one_read(ws: str) -> None:
    """Autobahn's 3.x/5.x pattern: a good message and a bad frame in one write."""
    async with serve(recorder(), ws) as served:
        client = await RawClient.connect(served.port)
        client.write(client.frame(Opcode.TEXT, b"good") + client.frame(0x3, b"reserved opcode"))
        try:
            (code, _), frames = await client.read_until_close()
        except asyncio.IncompleteReadError:
            code, frames = None, []
    # rawws answers the good message first; uvicorn's websockets-sansio class fails at once,
    # its wsproto class drops TCP without a close frame.
    assert code == {"rawws": 1002, "websockets-sansio": 1002, "wsproto": None}[ws]
    assert (frames == [(True, Opcode.TEXT, b"good")]) is (ws == "rawws")


def queued(connection: Any) -> int:
    """Messages waiting for the application in a protocol instance (rawws' or uvicorn's)."""
    queue = getattr(connection, "_queue", None)
    return len(queue if queue is not None else connection.queue._queue)


async def test_reading_pauses_while_a_message_waits_for_the_app(ws: str) -> None:
    """The application does not receive: the server stops reading (TCP back-pressure) instead
    of queuing everything the client sends."""
    go = asyncio.Event()
    received: list[int] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await go.wait()
        while (event := await receive())["type"] == "websocket.receive":
            received.append(len(event["bytes"]))

    count = 1024  # 64 MiB: far more than the kernel buffers of both sides hold
    async with serve(app, ws, ws_max_size=2**20, ws_per_message_deflate=False) as served:
        client = await RawClient.connect(served.port)
        chunk = client.frame(Opcode.BINARY, b"z" * 65536)

        async def flood() -> None:
            for _ in range(count):
                client.write(chunk)
                await client.writer.drain()

        writer = asyncio.create_task(flood())
        connection = served.connection()
        await until(lambda: connection.read_paused)
        for _ in range(100):
            await asyncio.sleep(0)  # let the loop run: nothing more may be read
        assert connection.read_paused
        assert not writer.done(), "the server kept reading"
        assert queued(connection) < 64, f"{queued(connection)} messages queued"
        go.set()
        await writer
        client.send_close(1000)
        await client.read_until_close()
        await asyncio.gather(*served.server.server_state.tasks)
    assert received == [65536] * count


def write_paused(connection: Any) -> bool:
    if hasattr(connection, "_write_paused"):
        return bool(connection._write_paused)
    return not connection.writable.is_set()


async def test_send_waits_while_writing_is_paused(ws: str) -> None:
    """A client that does not read: the application's send() blocks instead of buffering
    without bound."""
    progress: list[int] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            for i in range(10_000):
                await send({"type": "websocket.send", "bytes": b"y" * 65536})
                progress.append(i)
        except OSError:
            pass

    async with serve(app, ws, ws_per_message_deflate=False) as served:
        client = await RawClient.connect(served.port, rcvbuf=65536)
        connection = served.connection()
        await until(lambda: write_paused(connection))
        before = len(progress)
        for _ in range(100):
            await asyncio.sleep(0)  # let the application run: it must stay blocked
        assert write_paused(connection)
        assert len(progress) - before <= 1, "send() kept going while the client read nothing"
        assert connection.transport.get_write_buffer_size() < 4 * 65536
        client.abort()
