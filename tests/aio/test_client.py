"""rawws.aio.client: URIs, handshake failures, odd servers, reconnection (over real sockets;
the tests that depend on time on the virtual clock of rawws.testing)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

import rawws
from rawws import (
    ConnectionClosedError,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
    ServerConnection,
)
from rawws.aio.client import parse_uri
from rawws.sansio.codes import Opcode
from rawws.sansio.handshake import accept_key
from rawws.sansio.mask import apply_mask
from rawws.testing import idle

from .peers import HOST, RawServer, RawServerSide, until

#: Tests that depend on time run on rawws.testing's virtual clock (in-memory network): the
#: real backoff and timeouts, and the exact instants at which things happen.
virtual_clock = pytest.mark.virtual_clock


def now() -> float:
    return asyncio.get_running_loop().time()


@pytest.mark.parametrize("uri, expected", [
    ("ws://example.com", (False, "example.com", 80, "/")),
    ("ws://example.com/", (False, "example.com", 80, "/")),
    ("wss://example.com", (True, "example.com", 443, "/")),
    ("ws://example.com:8080/path?q=1&r=2", (False, "example.com", 8080, "/path?q=1&r=2")),
    ("wss://[::1]:9443/x", (True, "::1", 9443, "/x")),
    ("WS://EXAMPLE.com/A", (False, "example.com", 80, "/A")),
])
def test_parse_uri(uri: str, expected: tuple[bool, str, int, str]) -> None:
    assert parse_uri(uri) == expected


@pytest.mark.parametrize("uri", ["http://example.com/", "ws://example.com/#frag", "ws:///path",
                                 "ws://example.com:99999/", "example.com"])
def test_parse_uri_rejects(uri: str) -> None:
    with pytest.raises(InvalidURI):
        parse_uri(uri)


@virtual_clock
async def test_request_line_and_host_header() -> None:
    async with RawServer(lambda side: side.reader.read()) as peer:
        port = peer.port
        async with rawws.connect(f"ws://{HOST}:{port}/a/b?c=d",
                                 origin="https://o.example", subprotocols=["p1", "p2"],
                                 user_agent="tester/1"):
            pass
        head = peer.sides[0].request_head.decode()
    lines = head.split("\r\n")
    assert lines[0] == "GET /a/b?c=d HTTP/1.1"
    assert f"Host: {HOST}:{port}" in lines
    assert "Upgrade: websocket" in lines
    assert "Connection: Upgrade" in lines
    assert "Sec-WebSocket-Version: 13" in lines
    assert "Origin: https://o.example" in lines
    assert "Sec-WebSocket-Protocol: p1, p2" in lines
    assert "User-Agent: tester/1" in lines


async def test_connection_refused() -> None:
    server = await asyncio.start_server(lambda r, w: None, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(OSError):
        await rawws.connect(f"ws://{HOST}:{port}/")


async def test_rejection_status_and_body() -> None:
    def reject(ws: ServerConnection, request: rawws.Request) -> rawws.Response:
        return rawws.Response(404, body=b"no such room")

    async with rawws.serve(lambda ws: ws.wait_closed(), HOST, 0,
                           process_request=reject) as server:
        with pytest.raises(InvalidStatus) as info:
            await rawws.connect(f"ws://{HOST}:{server.port}/")
        assert info.value.status_code == 404
        assert info.value.body == b"no such room"
        await until(lambda: not server.connections)


def bad_response(response: bytes) -> RawServer:
    async def behave(side: RawServerSide) -> None:
        side.writer.write(response)
        await side.reader.read()

    return RawServer(behave, respond=False)


@pytest.mark.parametrize("response, error", [
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Accept: d3Jvbmc=\r\n\r\n", InvalidHandshake),
    (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", InvalidHandshake),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", InvalidStatus),
    (b"garbage\r\n\r\n", InvalidHandshake),
], ids=["wrong-accept", "no-upgrade", "200", "garbage"])
async def test_invalid_server_responses(response: bytes, error: type[Exception]) -> None:
    async with bad_response(response) as peer:
        with pytest.raises(error):
            await rawws.connect(f"ws://{HOST}:{peer.port}/", open_timeout=20)


def accepting(extra: str) -> RawServer:
    async def behave(side: RawServerSide) -> None:
        key = next(line.split(":", 1)[1].strip()
                   for line in side.request_head.decode().split("\r\n")
                   if line.lower().startswith("sec-websocket-key:"))
        side.writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n"
            + extra.encode() + b"\r\n")
        await side.reader.read()

    return RawServer(behave, respond=False)


@pytest.mark.parametrize("extra", [
    "Sec-WebSocket-Protocol: unoffered\r\n",
    "Sec-WebSocket-Extensions: x-unknown\r\n",
])
async def test_server_choosing_what_was_not_offered_fails(extra: str) -> None:
    async with accepting(extra) as peer:
        with pytest.raises(NegotiationError):
            await rawws.connect(f"ws://{HOST}:{peer.port}/", subprotocols=["chat"])
        await until(lambda: peer.tasks == set())


@virtual_clock
async def test_frame_in_the_same_segment_as_the_101() -> None:
    frame = b"\x81\x05hello"

    async def behave(side: RawServerSide) -> None:
        key = next(line.split(":", 1)[1].strip()
                   for line in side.request_head.decode().split("\r\n")
                   if line.lower().startswith("sec-websocket-key:"))
        side.writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n" + frame)
        await side.reader.read()

    async with RawServer(behave, respond=False) as peer:
        ws = await rawws.connect(f"ws://{HOST}:{peer.port}/")
        assert await ws.recv() == "hello"
        started = now()
        await ws.close()  # the peer never answers: the close timeout ends it
        assert now() == started + 10.0


@virtual_clock
async def test_masked_server_frame_fails_the_client_with_1002() -> None:
    frames: list[tuple[bool, int, bytes]] = []

    async def behave(side: RawServerSide) -> None:
        side.writer.write(b"\x81\x85abcd" + apply_mask(b"hello", b"abcd"))
        frames.append(await side.read_frame())
        await side.reader.read()

    async with RawServer(behave) as peer:
        ws = await rawws.connect(f"ws://{HOST}:{peer.port}/")
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent_code == 1002
        await ws.wait_closed()
        assert frames
    assert frames[0][1] == Opcode.CLOSE
    assert frames[0][2][:2] == (1002).to_bytes(2, "big")


@virtual_clock
async def test_reconnects_after_an_abnormal_close_and_stops_on_4xx() -> None:
    attempts: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        attempts.append(now())
        if len(attempts) == 1:
            assert ws.transport is not None
            ws.transport.abort()  # first connection: dropped without a close frame
            return
        await ws.send(f"attempt {len(attempts)}")
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0) as server:
        connector = rawws.connect(f"ws://{HOST}:{server.port}/")
        seen: list[object] = []
        async for ws in connector:
            try:
                seen.append(await ws.recv())
                break
            except ConnectionClosedError as exc:
                seen.append(exc.code)
        assert seen == [1006, "attempt 2"]
        # A connection that was open reconnects at once (the backoff is for failed attempts).
        assert attempts[1] == attempts[0]
        await idle()
        assert not server.connections

    def forbid(ws: ServerConnection, request: rawws.Request) -> rawws.Response:
        return rawws.Response(403)

    async with rawws.serve(handler, HOST, 0, process_request=forbid) as server:
        connector = rawws.connect(f"ws://{HOST}:{server.port}/")
        started = now()
        with pytest.raises(InvalidStatus) as info:
            async for _ in connector:
                pytest.fail("a 403 does not open a connection")
        assert info.value.status_code == 403
        assert now() == started  # not retried


def check_backoff(attempts: list[float], connector: rawws.connect) -> None:
    """The gaps between failed attempts follow the backoff: the k-th is drawn in
    [delay / 2, delay] with delay = initial * factor ** k, capped at backoff_max."""
    delay = connector.backoff_initial
    for before, after in itertools.pairwise(attempts):
        assert delay / 2 <= after - before <= delay
        delay = min(delay * connector.backoff_factor, connector.backoff_max)


@virtual_clock
async def test_reconnects_after_503() -> None:
    attempts: list[float] = []

    def busy_first(ws: ServerConnection, request: rawws.Request) -> rawws.Response | None:
        attempts.append(now())
        return rawws.Response(503) if len(attempts) < 3 else None

    async def handler(ws: ServerConnection) -> None:
        await ws.send("finally")

    async with rawws.serve(handler, HOST, 0, process_request=busy_first) as server:
        connector = rawws.connect(f"ws://{HOST}:{server.port}/")
        async for ws in connector:
            assert await ws.recv() == "finally"
            break
    assert len(attempts) == 3
    check_backoff(attempts, connector)


async def test_await_connect_and_async_with() -> None:
    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with rawws.serve(handler, HOST, 0) as server:
        ws = await rawws.connect(f"ws://{HOST}:{server.port}/")
        assert isinstance(ws, rawws.ClientConnection)
        await ws.send("awaited")
        assert await ws.recv() == "awaited"
        await ws.close()
        async with rawws.connect(f"ws://{HOST}:{server.port}/") as ws2:
            assert ws2.state is rawws.State.OPEN
        assert ws2.state is rawws.State.CLOSED
        assert ws2.close_code == 1000


@virtual_clock
async def test_reconnects_when_the_server_drops_the_handshake() -> None:
    """A server that accepts TCP then closes it before answering (one restarting, or shedding
    load) is retried like a refused connection, not raised out of ``async for``; the backoff
    grows to its maximum (30 s) and stays there."""
    attempts: list[float] = []

    async def flaky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(now())
        head = await reader.readuntil(b"\r\n\r\n")
        if len(attempts) < 13:
            writer.close()
            return
        key = next(line.split(":", 1)[1].strip() for line in head.decode().split("\r\n")
                   if line.lower().startswith("sec-websocket-key:"))
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                     + accept_key(key).encode() + b"\r\n\r\n\x81\x02ok")
        await reader.read()
        writer.close()

    server = await asyncio.start_server(flaky, HOST, 0)
    try:
        connector = rawws.connect(f"ws://{HOST}:{server.sockets[0].getsockname()[1]}/")
        async for ws in connector:
            assert await ws.recv() == "ok"
            break
        assert len(attempts) == 13
        check_backoff(attempts, connector)
        assert attempts[-1] - attempts[-2] >= connector.backoff_max / 2  # the cap was reached
    finally:
        server.close()
