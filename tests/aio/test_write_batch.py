"""rawws.write_batch: writes made outside a read callback (a broker's reader fanning out many
messages) reach each connection in one send(), as they do inside a read."""

from __future__ import annotations

from typing import Any

import rawws
from rawws import ServerConnection

from .peers import HOST, until


class Hub:
    def __init__(self) -> None:
        self.connections: list[ServerConnection] = []

    async def __call__(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        await ws.wait_closed()


def count_writes(ws: ServerConnection) -> list[bytes]:
    """Every transport.write of the server side of ``ws``."""
    written: list[bytes] = []
    transport: Any = ws.transport
    original = transport.write

    def write(data: bytes) -> None:
        written.append(bytes(data))
        original(data)

    transport.write = write
    return written


async def test_a_batch_writes_each_connection_once() -> None:
    hub = Hub()
    async with rawws.serve(hub, HOST, 0, compression=None) as server:
        clients = [await rawws.connect(f"ws://{HOST}:{server.port}/", compression=None)
                   for _ in range(3)]
        await until(lambda: len(hub.connections) == 3)
        writes = [count_writes(ws) for ws in hub.connections]
        rawws.broadcast(hub.connections, "one")
        rawws.broadcast(hub.connections, "two")
        assert [len(w) for w in writes] == [2, 2, 2]  # outside a batch: one write per message
        with rawws.write_batch():
            for i in range(10):
                assert rawws.broadcast(hub.connections, f"m{i}") == 3
            hub.connections[0].send_nowait("direct")
            with rawws.write_batch():  # nested: joins the outer batch
                rawws.broadcast(hub.connections, "inner")
            assert [len(w) for w in writes] == [2, 2, 2]  # nothing written yet
        assert [len(w) for w in writes] == [3, 3, 3]  # one more write each, for 11-12 frames
        direct = hub.connections[0].remote_address
        for ws in clients:
            expected = ["one", "two", *(f"m{n}" for n in range(10))]
            if ws.local_address == direct:
                expected.append("direct")
            expected.append("inner")
            assert [await ws.recv() for _ in expected] == expected
        for ws in clients:
            await ws.close()


async def test_a_batch_still_writes_at_the_write_limit() -> None:
    hub = Hub()
    async with rawws.serve(hub, HOST, 0, compression=None, write_limit=1000) as server:
        client = await rawws.connect(f"ws://{HOST}:{server.port}/", compression=None,
                                     max_size=None)
        await until(lambda: len(hub.connections) == 1)
        writes = count_writes(hub.connections[0])
        with rawws.write_batch():
            for _ in range(10):
                rawws.broadcast(hub.connections, "x" * 400)
            assert len(writes) >= 3  # flushed each time the batch reached write_limit
        for _ in range(10):
            assert await client.recv() == "x" * 400
        await client.close()
