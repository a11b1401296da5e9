"""Ping, pong, keepalive and the close timeout over real sockets.

Short timeouts (``ping_interval=0.05``...) only make the behaviour happen; nothing asserts on a
duration. Peers that never answer are raw sockets (tests/aio/peers.py).
"""

from __future__ import annotations

import asyncio

import pytest

import rawws
from rawws import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, ServerConnection
from rawws.sansio.codes import Opcode

from .peers import HOST, RawClient, RawServer, RawServerSide, until


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


# --- ping() ------------------------------------------------------------------------------------


async def test_ping_returns_latency() -> None:
    async with (rawws.serve(echo, HOST, 0) as server,
                rawws.connect(f"ws://{HOST}:{server.port}/") as ws):
        assert ws.latency == 0.0
        latency = await ws.ping()
        assert isinstance(latency, float)
        assert latency >= 0.0
        assert ws.latency == latency
        assert await ws.ping(b"payload") >= 0.0
        assert await ws.ping("text payload") >= 0.0


@pytest.mark.parametrize("data, wire", [(b"abc", b"abc"), ("héllo", "héllo".encode()),
                                        (b"", b""), (b"x" * 125, b"x" * 125)])
async def test_ping_payload_on_the_wire_and_resolved_by_pong(data: bytes | str,
                                                             wire: bytes) -> None:
    latencies: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        latencies.append(await ws.ping(data))
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0) as server:
        raw = await RawClient.connect(server.port)
        assert await raw.read_frame() == (True, Opcode.PING, wire)
        assert latencies == []  # no pong yet: ping() is still waiting
        raw.send_frame(Opcode.PONG, wire)
        await until(lambda: latencies)
        assert latencies[0] >= 0.0
        raw.send_close()
        await raw.read_until_close()
        await raw.aclose()


async def test_default_ping_payload_is_four_random_bytes() -> None:
    async def handler(ws: ServerConnection) -> None:
        await asyncio.gather(ws.ping(), ws.ping())
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0) as server:
        raw = await RawClient.connect(server.port)
        first = await raw.read_frame()
        second = await raw.read_frame()
        assert first[1] == second[1] == Opcode.PING
        assert len(first[2]) == len(second[2]) == 4
        assert first[2] != second[2]
        raw.send_close()
        await raw.read_until_close()
        await raw.aclose()


async def test_pong_acknowledges_earlier_pings() -> None:
    """§5.5.3: a peer may answer only the most recent ping; that pong settles every earlier one."""
    results: list[object] = []

    async def handler(ws: ServerConnection) -> None:
        first = asyncio.ensure_future(ws.ping(b"1"))
        second = asyncio.ensure_future(ws.ping(b"2"))
        third = asyncio.ensure_future(ws.ping(b"3"))
        await asyncio.wait([first, second], timeout=20)
        results.append((first.done(), second.done(), third.done()))
        third.cancel()
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0) as server:
        raw = await RawClient.connect(server.port)
        for payload in (b"1", b"2", b"3"):
            assert await raw.read_frame() == (True, Opcode.PING, payload)
        raw.send_frame(Opcode.PONG, b"2")
        await until(lambda: results)
        assert results == [(True, True, False)]
        raw.send_close()
        await raw.read_until_close()
        await raw.aclose()


async def test_unsolicited_pong_resolves_nothing() -> None:
    states: list[bool] = []

    async def handler(ws: ServerConnection) -> None:
        waiting = asyncio.ensure_future(ws.ping(b"mine"))
        assert await ws.recv() == "marker"  # the pong before it was processed already
        states.append(waiting.done())
        waiting.cancel()
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0) as server:
        raw = await RawClient.connect(server.port)
        assert (await raw.read_frame())[1] == Opcode.PING
        raw.send_frame(Opcode.PONG, b"other")
        raw.send_frame(Opcode.TEXT, b"marker")
        await until(lambda: states)
        assert states == [False]
        raw.send_close()
        await raw.read_until_close()
        await raw.aclose()


async def test_ping_misuse() -> None:
    async with (rawws.serve(echo, HOST, 0) as server,
                rawws.connect(f"ws://{HOST}:{server.port}/") as ws):
        with pytest.raises(ValueError):
            await ws.ping(b"x" * 126)
        # Two pings waiting with the same payload could not be told apart.
        blocker = RawPongBlocker(ws)
        with blocker:
            waiting = asyncio.ensure_future(ws.ping(b"same"))
            await asyncio.sleep(0)
            with pytest.raises(rawws.ConcurrencyError):
                await ws.ping(b"same")
        waiting.cancel()


class RawPongBlocker:
    """Drop pongs received by ``ws`` while active (so a ping stays pending).

    Connections have slots, so the method is swapped on the class for the duration; only
    pongs received by ``ws`` are dropped.
    """

    def __init__(self, ws: rawws.Connection) -> None:
        self.ws = ws

    def __enter__(self) -> None:
        cls = type(self.ws)
        self.original = original = cls._pong_received
        blocked = self.ws

        def pong_received(ws: rawws.Connection, payload: bytes) -> None:
            if ws is not blocked:
                original(ws, payload)

        cls._pong_received = pong_received  # type: ignore[method-assign]

    def __exit__(self, *exc_info: object) -> None:
        type(self.ws)._pong_received = self.original  # type: ignore[method-assign]


async def test_ping_pending_when_connection_closes_raises() -> None:
    async with RawServer(lambda side: side.reader.read(2**16)) as peer:
        ws = await rawws.connect(f"ws://{HOST}:{peer.port}/", close_timeout=0.05)
        waiting = asyncio.ensure_future(ws.ping(b"never answered"))
        await until(lambda: peer.sides)
        peer.sides[0].writer.transport.abort()
        with pytest.raises(ConnectionClosedError) as info:
            await waiting
        assert info.value.code == 1006


async def test_client_answers_server_ping_automatically() -> None:
    async with (RawServer(lambda side: None) as peer,
                rawws.connect(f"ws://{HOST}:{peer.port}/", close_timeout=0.05)):
        await until(lambda: peer.sides)
        side = peer.sides[0]
        side.send_frame(Opcode.PING, b"are you there")
        assert await side.read_frame() == (True, Opcode.PONG, b"are you there")


# --- keepalive ---------------------------------------------------------------------------------


async def test_keepalive_closes_1011_when_peer_never_answers_pings() -> None:
    caught: list[ConnectionClosed] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            caught.append(exc)

    async with rawws.serve(handler, HOST, 0, ping_interval=0.05, ping_timeout=0.05,
                           close_timeout=0.1) as server:
        raw = await RawClient.connect(server.port)  # reads, never answers anything
        (code, reason), before = await raw.read_until_close()
        assert (code, reason) == (1011, "keepalive ping timeout")
        assert before, "a ping comes before the close"
        assert all(opcode == Opcode.PING and len(payload) == 4 for _, opcode, payload in before)
        await raw.read_eof()  # the close timeout ends the connection
        await until(lambda: caught and not server.connections)
        await raw.aclose()
    assert isinstance(caught[0], ConnectionClosedError)
    assert (caught[0].code, caught[0].sent_code) == (1006, 1011)


async def test_client_keepalive_closes_1011_when_server_never_answers() -> None:
    frames: list[tuple[bool, int, bytes]] = []

    async def behave(side: RawServerSide) -> None:
        while True:
            frame = await side.read_frame()
            frames.append(frame)
            if frame[1] == Opcode.CLOSE:
                return

    async with RawServer(behave) as peer:
        ws = await rawws.connect(f"ws://{HOST}:{peer.port}/", ping_interval=0.05,
                                 ping_timeout=0.05, close_timeout=0.1)
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert (info.value.code, info.value.sent_code) == (1006, 1011)
        await ws.wait_closed()
    assert frames[-1][1] == Opcode.CLOSE
    assert frames[-1][2] == (1011).to_bytes(2, "big") + b"keepalive ping timeout"
    assert [opcode for _, opcode, _ in frames[:-1]] == [Opcode.PING] * (len(frames) - 1)
    assert len(frames) >= 2


class PingCounter(rawws.Listener):
    def __init__(self) -> None:
        self.pings: list[bytes] = []

    def on_ping(self, ws: rawws.Connection, payload: bytes) -> None:
        self.pings.append(payload)


@pytest.mark.parametrize("ping_timeout", [60.0, None])
async def test_keepalive_keeps_a_responsive_connection_open(ping_timeout: float | None) -> None:
    """Pings go out every ``ping_interval`` while pongs come back, however long
    ``ping_timeout`` is (the next ping does not wait for the timeout to expire)."""
    server_side: list[ServerConnection] = []

    async def handler(ws: ServerConnection) -> None:
        server_side.append(ws)
        await echo(ws)

    counter = PingCounter()
    async with (rawws.serve(handler, HOST, 0, ping_interval=0.02,
                            ping_timeout=ping_timeout) as server,
                rawws.connect(f"ws://{HOST}:{server.port}/", ping_interval=None,
                              listener=counter) as ws):
        await until(lambda: len(counter.pings) >= 5)
        assert ws.state is rawws.State.OPEN
        assert server_side[0].state is rawws.State.OPEN
        assert server_side[0].latency > 0.0
        assert len(set(counter.pings)) == len(counter.pings)  # a fresh payload each time


async def test_keepalive_with_both_sides_pinging() -> None:
    counter = PingCounter()
    async with (rawws.serve(echo, HOST, 0, ping_interval=0.02, ping_timeout=0.5) as server,
                rawws.connect(f"ws://{HOST}:{server.port}/", ping_interval=0.02,
                              ping_timeout=0.5, listener=counter) as ws):
        await until(lambda: len(counter.pings) >= 3 and ws.latency > 0.0)
        assert ws.state is rawws.State.OPEN


# --- close timeout -----------------------------------------------------------------------------


async def test_server_close_times_out_when_peer_never_answers() -> None:
    outcome: list[object] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.close(4000, "bye")
        outcome.append((ws.state, ws.close_code))

    async with rawws.serve(handler, HOST, 0, close_timeout=0.1) as server:
        raw = await RawClient.connect(server.port)
        assert (await raw.read_until_close())[0] == (4000, "bye")
        # Never answer: the server gives up after close_timeout and drops the connection.
        await raw.read_eof()
        await until(lambda: outcome)
        await until(lambda: not server.connections)
        await raw.aclose()
    assert outcome == [(rawws.State.CLOSED, 1006)]


async def test_client_close_times_out_when_server_never_answers() -> None:
    frames: list[tuple[bool, int, bytes]] = []

    async def behave(side: RawServerSide) -> None:
        frames.append(await side.read_frame())
        await side.reader.read()  # never answer; wait for the client to go away

    async with RawServer(behave) as peer:
        ws = await rawws.connect(f"ws://{HOST}:{peer.port}/", close_timeout=0.1)
        await ws.close(1000, "done")
        assert ws.state is rawws.State.CLOSED
        assert ws.close_code == 1006
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
    assert frames == [(True, Opcode.CLOSE, b"\x03\xe8done")]


async def test_client_aborts_when_server_echoes_close_but_keeps_tcp_open() -> None:
    async def behave(side: RawServerSide) -> None:
        frame = await side.read_frame()
        side.send_frame(Opcode.CLOSE, frame[2])  # the echo, then never close TCP
        await side.reader.read()

    async with RawServer(behave) as peer:
        ws = await rawws.connect(f"ws://{HOST}:{peer.port}/", close_timeout=0.1)
        await ws.close(1000)
        assert (ws.close_code, ws.close_reason) == (1000, "")
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()


async def test_server_failing_half_closes_then_drops_a_silent_peer() -> None:
    """On a protocol error the server sends 1002 and a FIN (lingering close); a peer that
    never closes its side is dropped after close_timeout."""
    caught: list[ConnectionClosed] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            caught.append(exc)

    async with rawws.serve(handler, HOST, 0, close_timeout=0.1) as server:
        raw = await RawClient.connect(server.port)
        raw.send_frame(0x3, b"reserved opcode")
        (code, _), _ = await raw.read_until_close()
        assert code == 1002
        assert await raw.read_eof() == b""
        await until(lambda: caught and not server.connections)
        await raw.aclose()
    assert (caught[0].code, caught[0].sent_code) == (1006, 1002)
