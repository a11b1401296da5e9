"""Ping, pong, keepalive and the close timeout, on the virtual clock (rawws.testing).

Every test here runs on :class:`rawws.testing.VirtualEventLoop`: the real defaults (20 s
keepalive, 10 s close timeout) pass in no time, and each deadline is checked to the instant it
is due, identically on every run. ``idle()`` ("everything that can happen now has happened")
replaces polling. Peers that never answer are raw peers (tests/aio/peers.py) on the loop's
in-memory network.
"""

from __future__ import annotations

import asyncio

import pytest

import rawws
from rawws import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, ServerConnection
from rawws.sansio.codes import Opcode
from rawws.testing import idle

from .peers import HOST, RawClient, RawServer, RawServerSide

pytestmark = pytest.mark.virtual_clock


def now() -> float:
    return asyncio.get_running_loop().time()


def set_latency(seconds: float) -> None:
    """One-way delay of the connections made from now on."""
    asyncio.get_running_loop().network.latency = seconds  # type: ignore[attr-defined]


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


# --- ping() ------------------------------------------------------------------------------------


async def test_ping_returns_latency() -> None:
    set_latency(0.025)  # 25 ms each way: a ping takes 50 ms there and back
    async with (rawws.serve(echo, HOST, 0) as server,
                rawws.connect(f"ws://{HOST}:{server.port}/") as ws):
        assert ws.latency == 0.0
        latency = await (await ws.ping())  # ping() returns the pong waiter
        assert latency == pytest.approx(0.05)
        assert ws.latency == latency
        assert await (await ws.ping(b"payload")) == pytest.approx(0.05)
        assert await (await ws.ping("text payload")) == pytest.approx(0.05)


@pytest.mark.parametrize("data, wire", [(b"abc", b"abc"), ("héllo", "héllo".encode()),
                                        (b"", b""), (b"x" * 125, b"x" * 125)])
async def test_ping_payload_on_the_wire_and_resolved_by_pong(data: bytes | str,
                                                             wire: bytes) -> None:
    latencies: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        latencies.append(await (await ws.ping(data)))
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0) as server:
        raw = await RawClient.connect(server.port)
        assert await raw.read_frame() == (True, Opcode.PING, wire)
        await asyncio.sleep(3)  # the peer takes 3 s to answer
        await idle()
        assert latencies == []  # no pong yet: ping() is still waiting
        raw.send_frame(Opcode.PONG, wire)
        await idle()
        assert latencies == [pytest.approx(3.0)]
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
        first = await ws.ping(b"1")
        second = await ws.ping(b"2")
        third = await ws.ping(b"3")
        await asyncio.wait([first, second])  # type: ignore[list-item]
        results.append((first.done(), second.done(), third.done()))  # type: ignore[attr-defined]
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0) as server:
        raw = await RawClient.connect(server.port)
        for payload in (b"1", b"2", b"3"):
            assert await raw.read_frame() == (True, Opcode.PING, payload)
        raw.send_frame(Opcode.PONG, b"2")
        await idle()
        assert results == [(True, True, False)]
        raw.send_close()
        await raw.read_until_close()
        await raw.aclose()


async def test_unsolicited_pong_resolves_nothing() -> None:
    states: list[bool] = []

    async def handler(ws: ServerConnection) -> None:
        waiting = await ws.ping(b"mine")
        assert await ws.recv() == "marker"  # the pong before it was processed already
        states.append(waiting.done())  # type: ignore[attr-defined]
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0) as server:
        raw = await RawClient.connect(server.port)
        assert (await raw.read_frame())[1] == Opcode.PING
        raw.send_frame(Opcode.PONG, b"other")
        raw.send_frame(Opcode.TEXT, b"marker")
        await idle()
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
            await ws.ping(b"same")
            with pytest.raises(rawws.ConcurrencyError):
                await ws.ping(b"same")


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
        ws = await rawws.connect(f"ws://{HOST}:{peer.port}/")
        waiting = await ws.ping(b"never answered")
        await idle()
        peer.sides[0].writer.transport.abort()
        with pytest.raises(ConnectionClosedError) as info:
            await waiting
        assert info.value.code == 1006


async def test_client_answers_server_ping_automatically() -> None:
    async with (RawServer(lambda side: None) as peer,
                rawws.connect(f"ws://{HOST}:{peer.port}/", close_timeout=0.05)):
        await idle()
        side = peer.sides[0]
        side.send_frame(Opcode.PING, b"are you there")
        assert await side.read_frame() == (True, Opcode.PONG, b"are you there")


# --- keepalive ---------------------------------------------------------------------------------


async def test_keepalive_closes_1011_when_peer_never_answers_pings() -> None:
    """With the defaults: a ping 20 s after the open, the 1011 close 20 s later (no pong), and
    the TCP connection dropped when the 10 s close timeout expires."""
    caught: list[ConnectionClosed] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            caught.append(exc)

    async with rawws.serve(handler, HOST, 0) as server:
        opened = now()
        raw = await RawClient.connect(server.port)  # reads, never answers anything
        ping = await raw.read_frame()
        assert ping[1] == Opcode.PING and len(ping[2]) == 4
        assert now() == pytest.approx(opened + 20.0)
        (code, reason), before = await raw.read_until_close()
        assert (code, reason) == (1011, "keepalive ping timeout")
        assert before == []  # one ping only: the next one waits for its pong
        assert now() == pytest.approx(opened + 40.0)
        await raw.read_eof()  # the close timeout ends the connection
        assert now() == pytest.approx(opened + 50.0)
        await idle()
        assert not server.connections
        await raw.aclose()
    assert isinstance(caught[0], ConnectionClosedError)
    assert (caught[0].code, caught[0].sent_code) == (1006, 1011)


async def test_client_keepalive_closes_1011_when_server_never_answers() -> None:
    frames: list[tuple[float, bool, int, bytes]] = []

    async def behave(side: RawServerSide) -> None:
        while True:
            frame = await side.read_frame()
            frames.append((now(), *frame))
            if frame[1] == Opcode.CLOSE:
                return

    async with RawServer(behave) as peer:
        opened = now()
        ws = await rawws.connect(f"ws://{HOST}:{peer.port}/", ping_interval=5,
                                 ping_timeout=2, close_timeout=3)
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert (info.value.code, info.value.sent_code) == (1006, 1011)
        assert now() == pytest.approx(opened + 5 + 2 + 3)
        await ws.wait_closed()
    ping_at, _, opcode, payload = frames[0]
    assert (ping_at, opcode, len(payload)) == (pytest.approx(opened + 5), Opcode.PING, 4)
    close_at, _, opcode, payload = frames[1]
    assert (close_at, opcode) == (pytest.approx(opened + 7), Opcode.CLOSE)
    assert payload == (1011).to_bytes(2, "big") + b"keepalive ping timeout"
    assert len(frames) == 2


class PingCounter(rawws.Listener):
    def __init__(self) -> None:
        self.pings: list[tuple[float, bytes]] = []

    def on_ping(self, ws: rawws.Connection, payload: bytes) -> None:
        self.pings.append((now(), payload))


@pytest.mark.parametrize("ping_timeout", [60.0, None])
async def test_keepalive_keeps_a_responsive_connection_open(ping_timeout: float | None) -> None:
    """Pings go out every ``ping_interval`` while pongs come back, however long
    ``ping_timeout`` is (the next ping does not wait for the timeout to expire)."""
    set_latency(0.1)
    server_side: list[ServerConnection] = []

    async def handler(ws: ServerConnection) -> None:
        server_side.append(ws)
        await echo(ws)

    counter = PingCounter()
    async with (rawws.serve(handler, HOST, 0, ping_interval=20,
                            ping_timeout=ping_timeout) as server,
                rawws.connect(f"ws://{HOST}:{server.port}/", ping_interval=None,
                              listener=counter) as ws):
        opened = now()  # the client learns of the open 0.1 s after the server
        await asyncio.sleep(101)
        assert ws.state is rawws.State.OPEN
        assert server_side[0].state is rawws.State.OPEN
        assert server_side[0].latency == pytest.approx(0.2)
        # Sent at 20, 40, ... after the server's open; each arrives 0.1 s later.
        assert [at - opened for at, _ in counter.pings] == [
            pytest.approx(20.0 * n) for n in range(1, 6)]
        payloads = [payload for _, payload in counter.pings]
        assert len(set(payloads)) == len(payloads)  # a fresh payload each time


async def test_keepalive_with_both_sides_pinging() -> None:
    set_latency(0.01)
    counter = PingCounter()
    async with (rawws.serve(echo, HOST, 0, ping_interval=2, ping_timeout=1) as server,
                rawws.connect(f"ws://{HOST}:{server.port}/", ping_interval=3,
                              ping_timeout=1, listener=counter) as ws):
        await asyncio.sleep(60)
        assert len(counter.pings) == 30  # the server's, every 2 s
        assert ws.latency == pytest.approx(0.02)  # the client's own were answered
        assert ws.state is rawws.State.OPEN


# --- close timeout -----------------------------------------------------------------------------


async def test_server_close_times_out_when_peer_never_answers() -> None:
    outcome: list[object] = []

    async def handler(ws: ServerConnection) -> None:
        started = now()
        await ws.close(4000, "bye")
        outcome.append((ws.state, ws.close_code, now() - started))

    async with rawws.serve(handler, HOST, 0) as server:
        raw = await RawClient.connect(server.port)
        assert (await raw.read_until_close())[0] == (4000, "bye")
        # Never answer: the server gives up after close_timeout and drops the connection.
        await raw.read_eof()
        await idle()
        assert outcome == [(rawws.State.CLOSED, 1006, pytest.approx(10.0))]  # the default
        assert not server.connections
        await raw.aclose()


async def test_client_close_times_out_when_server_never_answers() -> None:
    frames: list[tuple[bool, int, bytes]] = []

    async def behave(side: RawServerSide) -> None:
        frames.append(await side.read_frame())
        await side.reader.read()  # never answer; wait for the client to go away

    async with RawServer(behave) as peer:
        ws = await rawws.connect(f"ws://{HOST}:{peer.port}/", close_timeout=4)
        started = now()
        await ws.close(1000, "done")
        assert now() - started == pytest.approx(4.0)
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
        ws = await rawws.connect(f"ws://{HOST}:{peer.port}/", close_timeout=4)
        started = now()
        await ws.close(1000)
        assert now() - started == pytest.approx(4.0)
        assert (ws.close_code, ws.close_reason) == (1000, "")
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()


async def test_server_failing_half_closes_then_drops_a_silent_peer() -> None:
    """On a protocol error the server sends 1002 and a FIN (lingering close); a peer that
    never closes its side is dropped after close_timeout."""
    caught: list[tuple[ConnectionClosed, float]] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            caught.append((exc, now()))

    async with rawws.serve(handler, HOST, 0, close_timeout=7) as server:
        raw = await RawClient.connect(server.port)
        sent = now()
        raw.send_frame(0x3, b"reserved opcode")
        (code, _), _ = await raw.read_until_close()
        assert code == 1002
        assert await raw.read_eof() == b""  # the FIN, at once
        assert now() == sent
        await idle()
        assert server.connections  # still waiting for the peer's FIN
        await asyncio.sleep(7)
        assert not server.connections
        await raw.aclose()
    exc, at = caught[0]
    assert (exc.code, exc.sent_code) == (1006, 1002)
    assert at == pytest.approx(sent + 7)
