"""rawws.testing: the virtual clock and the in-memory network keep asyncio's contracts.

The transport tests run the same scenario on a real TCP connection (127.0.0.1, a normal loop)
and on the in-memory network, and compare what the protocols saw: the memory transport is only
worth its name if code cannot tell it from a socket transport (byte counts and the order of
callbacks; the chunking of reads is the kernel's business on both).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

import rawws
from rawws.testing import (
    Deadlock,
    MemoryTransport,
    VirtualEventLoop,
    idle,
    run,
    transport_pair,
)


class Recorder(asyncio.Protocol):
    """Records the callbacks a transport makes, squashing consecutive data into one count."""

    def __init__(self, *, keep_open: bool = False) -> None:
        self.events: list[object] = []
        self.received = bytearray()
        self.transport: asyncio.Transport | None = None
        self.keep_open = keep_open
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.made: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.events.append("made")
        self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.received += data
        if self.events and isinstance(self.events[-1], int):
            self.events[-1] += len(data)  # type: ignore[operator]
        else:
            self.events.append(len(data))

    def eof_received(self) -> bool:
        self.events.append("eof")
        return self.keep_open

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.set_result(None)


Scenario = Callable[[Recorder, Recorder], Awaitable[None]]


async def _real_pair(scenario: Scenario, *, keep_open: bool = False) -> tuple[list[object],
                                                                               list[object]]:
    loop = asyncio.get_running_loop()
    servers: list[Recorder] = []

    def factory() -> Recorder:
        servers.append(Recorder(keep_open=keep_open))
        return servers[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, client = await loop.create_connection(lambda: Recorder(keep_open=keep_open),
                                             "127.0.0.1", port)
    while not servers or not servers[0].events:
        await asyncio.sleep(0)
    await scenario(client, servers[0])
    server.close()
    await server.wait_closed()
    return client.events, servers[0].events


async def _memory_pair(scenario: Scenario, *, keep_open: bool = False) -> tuple[list[object],
                                                                                 list[object]]:
    client, server = Recorder(keep_open=keep_open), Recorder(keep_open=keep_open)
    transport_pair(client, server)
    await client.made
    await server.made
    await scenario(client, server)
    return client.events, server.events


def both(scenario: Scenario, *, keep_open: bool = False) -> None:
    """Run ``scenario`` on real sockets and in memory; the callbacks must agree."""
    real = asyncio.run(_real_pair(scenario, keep_open=keep_open))
    memory = run(_memory_pair(scenario, keep_open=keep_open))
    assert memory == real


async def until(predicate: Callable[[], object]) -> None:
    """Wait for the peer: on a real socket this takes some loop iterations, in memory a few."""
    async with asyncio.timeout(20):
        while not predicate():
            await asyncio.sleep(0)


def test_data_then_close() -> None:
    async def scenario(client: Recorder, server: Recorder) -> None:
        assert client.transport and server.transport
        client.transport.write(b"hello")
        client.transport.writelines([b" ", b"world"])
        await until(lambda: len(server.received) == 11)
        server.transport.write(b"x" * 100_000)
        await until(lambda: len(client.received) == 100_000)
        client.transport.close()
        await client.lost
        await server.lost

    both(scenario)


def test_half_close_keeps_the_other_direction_open() -> None:
    async def scenario(client: Recorder, server: Recorder) -> None:
        assert client.transport and server.transport
        client.transport.write(b"request")
        client.transport.write_eof()
        await until(lambda: "eof" in server.events)
        server.transport.write(b"answer")
        await until(lambda: client.received == b"answer")
        server.transport.close()
        await server.lost
        await until(lambda: "eof" in client.events)  # kept open by the protocol: close it
        client.transport.close()
        await client.lost

    both(scenario, keep_open=True)


def test_eof_closes_the_transport_when_the_protocol_returns_false() -> None:
    async def scenario(client: Recorder, server: Recorder) -> None:
        assert client.transport
        client.transport.write_eof()
        await server.lost  # eof_received returned False: the server transport closed itself
        await client.lost  # and the client then read the server's FIN

    both(scenario)


def test_abort_drops_the_buffer() -> None:
    async def scenario(client: Recorder, server: Recorder) -> None:
        assert client.transport and server.transport
        server.transport.pause_reading()
        client.transport.set_write_buffer_limits(high=0)
        client.transport.write(b"x" * 10_000_000)  # more than any kernel buffer holds
        assert client.transport.get_write_buffer_size() > 0
        client.transport.abort()
        await client.lost
        server.transport.resume_reading()
        await server.lost
        assert 0 < len(server.received) < 10_000_000

    real = asyncio.run(_real_pair(scenario))
    memory = run(_memory_pair(scenario))
    assert memory[0] == real[0] == ["made", "pause", "lost"]
    # What was in the kernel arrives (how much that is differs), then the end of the stream.
    assert [e if isinstance(e, str) else "data" for e in memory[1]] == ["made", "data", "eof",
                                                                         "lost"]
    assert [e if isinstance(e, str) else "data" for e in real[1]] == ["made", "data", "eof",
                                                                       "lost"]


def test_write_buffer_limits_pause_and_resume_the_writer() -> None:
    async def scenario(client: Recorder, server: Recorder) -> None:
        assert client.transport and server.transport
        server.transport.pause_reading()
        client.transport.set_write_buffer_limits(high=4096, low=1024)
        assert client.transport.get_write_buffer_limits() == (1024, 4096)
        while "pause" not in client.events:
            client.transport.write(b"y" * 65536)
            await asyncio.sleep(0)
        assert client.transport.get_write_buffer_size() > 4096
        server.transport.resume_reading()
        await until(lambda: "resume" in client.events)
        assert client.transport.get_write_buffer_size() <= 1024
        client.transport.close()
        await server.lost
        await client.lost

    real = asyncio.run(_real_pair(scenario))
    memory = run(_memory_pair(scenario))
    # How much the kernel takes before the writer pauses differs; the order does not.
    assert [e for e in memory[0] if isinstance(e, str)] == ["made", "pause", "resume", "lost"]
    assert [e for e in real[0] if isinstance(e, str)] == ["made", "pause", "resume", "lost"]
    assert memory[1][0] == real[1][0] == "made"
    assert memory[1][-2:] == real[1][-2:] == ["eof", "lost"]


def test_a_paused_reader_fills_the_kernel_buffer_then_the_write_buffer() -> None:
    async def main() -> None:
        client, server = Recorder(), Recorder()
        a, b = transport_pair(client, server, buffer_size=1000)
        await server.made
        b.pause_reading()
        a.write(b"z" * 2500)
        assert a.get_write_buffer_size() == 1500  # the kernel took 1000
        await idle()
        assert server.received == b""
        b.resume_reading()
        await idle()
        assert server.received == b"z" * 2500
        assert a.get_write_buffer_size() == 0
        assert a.written == b"z" * 2500

    run(main())


def test_buffered_protocols_are_fed_through_their_buffer() -> None:
    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buffer = bytearray(7)  # smaller than a delivery: fed in several calls
            self.got = bytearray()
            self.calls = 0

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buffer

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buffer[:nbytes]
            self.calls += 1

    async def main() -> None:
        sender, receiver = Recorder(), Buffered()
        a, _ = transport_pair(sender, receiver)
        await sender.made
        a.write(b"0123456789abcdefghij")
        await idle()
        assert receiver.got == b"0123456789abcdefghij"
        assert receiver.calls == 3

    run(main())


def test_latency_delays_every_byte_and_the_fin() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        client, server = Recorder(), Recorder()
        a, b = transport_pair(client, server, latency=0.5)
        await client.made
        a.write(b"ping")
        await asyncio.sleep(0.49)
        assert server.received == b""
        await asyncio.sleep(0.01)
        await idle()
        assert server.received == b"ping"
        b.write(b"pong")
        a.close()  # the FIN travels behind the bytes already sent
        await server.lost
        assert loop.time() == pytest.approx(1.0)
        assert client.received == b""  # the client closed: it reads nothing more

    run(main())


# --- the clock ---------------------------------------------------------------------------------


def test_time_moves_only_when_every_task_waits() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[str, float]] = []

        async def sleeper(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            seen.append((name, loop.time()))

        async def busy() -> None:
            for _ in range(1000):
                await asyncio.sleep(0)  # always ready: the clock stays put
            seen.append(("busy", loop.time()))

        await asyncio.gather(sleeper("hour", 3600), sleeper("second", 1), busy())
        return seen

    assert run(main()) == [("busy", 0.0), ("second", 1.0), ("hour", 3600.0)]
    assert run(main(), start=100.0) == [("busy", 100.0), ("second", 101.0), ("hour", 3700.0)]


def test_timeouts_run_on_the_virtual_clock() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(30):
                await loop.create_future()
        return loop.time()

    assert run(main()) == 30.0


def test_a_deadlock_fails_at_once() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()  # nothing will ever complete it

    with pytest.raises(Deadlock):
        run(main())


def test_threads_are_waited_for_without_moving_the_clock() -> None:
    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        result = await asyncio.to_thread(sum, range(1000))
        return result, loop.time()

    assert run(main()) == (499500, 0.0)


def test_real_io_is_refused() -> None:
    async def main() -> None:
        with socket.socket() as sock:
            asyncio.get_running_loop().add_reader(sock.fileno(), print)

    with pytest.raises(RuntimeError, match="no real I/O"):
        run(main())


def test_idle_needs_the_virtual_loop() -> None:
    with pytest.raises(RuntimeError):
        asyncio.run(idle())


# --- the network -------------------------------------------------------------------------------


def test_rawws_serves_and_connects_in_memory() -> None:
    async def echo(ws: rawws.ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> tuple[str, int, float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualEventLoop)
        async with (rawws.serve(echo, "127.0.0.1", 0) as server,
                    rawws.connect(f"ws://localhost:{server.port}/") as ws):
            await ws.send("hello")
            answer = await ws.recv()
            await asyncio.sleep(600)  # keepalive pings meanwhile (every 20 s)
            client, accepted = loop.network.connections[0]
            assert isinstance(client, MemoryTransport)
            pings = accepted.written.count(b"\x89\x04")  # unmasked 4-byte pings
        return str(answer), pings, loop.time()

    assert run(main()) == ("hello", 30, 600.0)


def test_connecting_where_nobody_listens_is_refused() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 8765)
        server.close()
        await rawws.connect("ws://127.0.0.1:8765/")

    with pytest.raises(ConnectionRefusedError):
        run(main())


def test_a_port_is_taken_once() -> None:
    async def main() -> None:
        await asyncio.start_server(lambda r, w: None, "127.0.0.1", 8765)
        await asyncio.start_server(lambda r, w: None, "127.0.0.1", 8765)

    with pytest.raises(OSError, match="in use"):
        run(main())


def test_tls_is_not_simulated() -> None:
    async def main() -> None:
        await rawws.connect("wss://127.0.0.1:8765/")

    with pytest.raises(NotImplementedError):
        run(main())
