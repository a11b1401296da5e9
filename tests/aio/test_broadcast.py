"""rawws.broadcast over real sockets: fan-out, prepared once per group, skipping, slow readers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import rawws
from rawws import Connection, Listener, Message, ServerConnection
from rawws.sansio.codes import Opcode
from rawws.sansio.server import ServerProtocol

from .peers import HOST, RawClient, until

#: permessage-deflate is negotiated by rawws only once rawws.sansio.deflate exists (the same
#: test rawws.aio makes).
try:
    import rawws.sansio.deflate
except ImportError:
    HAS_DEFLATE = False
else:
    HAS_DEFLATE = True


class Hub:
    """A server handler that keeps its connections in a set until they close."""

    def __init__(self) -> None:
        self.connections: set[ServerConnection] = set()

    async def __call__(self, ws: ServerConnection) -> None:
        self.connections.add(ws)
        try:
            await ws.wait_closed()
        finally:
            self.connections.discard(ws)


def count_prepares(monkeypatch: pytest.MonkeyPatch) -> list[str | bytes]:
    calls: list[str | bytes] = []
    original: Callable[..., bytes] = ServerProtocol.prepare_message

    def counting(self: ServerProtocol, message: str | bytes, **kwargs: object) -> bytes:
        calls.append(message)
        return original(self, message, **kwargs)

    monkeypatch.setattr(ServerProtocol, "prepare_message", counting)
    return calls


@pytest.mark.parametrize("message", ["to everyone ✓", b"\x00\x01binary", "", "x" * 100000])
async def test_same_message_to_every_connection(message: str | bytes,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    prepares = count_prepares(monkeypatch)
    hub = Hub()
    async with rawws.serve(hub, HOST, 0, compression=None) as server:
        clients = [await rawws.connect(f"ws://{HOST}:{server.port}/", compression=None)
                   for _ in range(5)]
        await until(lambda: len(hub.connections) == 5)
        assert rawws.broadcast(hub.connections, message) == 5
        for ws in clients:
            assert await ws.recv() == message
        for ws in clients:
            await ws.close()
    assert prepares == [message]  # serialized once for all five


async def test_prepared_once_per_group(monkeypatch: pytest.MonkeyPatch) -> None:
    if not HAS_DEFLATE:
        pytest.skip("rawws.sansio.deflate is not available yet: a single group")
    prepares = count_prepares(monkeypatch)
    hub = Hub()
    async with rawws.serve(hub, HOST, 0) as server:
        plain = [await rawws.connect(f"ws://{HOST}:{server.port}/", compression=None)
                 for _ in range(2)]
        deflated = [await rawws.connect(f"ws://{HOST}:{server.port}/") for _ in range(2)]
        await until(lambda: len(hub.connections) == 4)
        keys = {ws.protocol.broadcast_key for ws in hub.connections}
        message = "compress me " * 100
        assert rawws.broadcast(hub.connections, message) == 4
        for ws in plain + deflated:
            assert await ws.recv() == message
        # One serialization per distinct broadcast_key (None: encoded per connection).
        assert len(prepares) == len({k for k in keys if k is not None})
        for ws in plain + deflated:
            await ws.close()


async def test_skips_closed_and_closing_connections() -> None:
    hub = Hub()
    async with rawws.serve(hub, HOST, 0) as server:
        clients = [await rawws.connect(f"ws://{HOST}:{server.port}/") for _ in range(4)]
        await until(lambda: len(hub.connections) == 4)
        everyone = list(hub.connections)
        await clients[0].close()
        await until(lambda: len(hub.connections) == 3)
        closing = next(iter(hub.connections))
        closing.close_nowait(4000, "closing")  # CLOSING until the client answers
        assert rawws.broadcast(everyone, "hi") == 2
        received = []
        for ws in clients[1:]:
            try:
                received.append(await ws.recv())
            except rawws.ConnectionClosed as exc:
                received.append(exc.code)
        assert sorted(map(str, received)) == ["4000", "hi", "hi"]
        for ws in clients[1:]:
            await ws.close()
        assert rawws.broadcast(everyone, "nobody") == 0


async def test_slow_reader_does_not_block_the_others() -> None:
    chunk = 2**16
    count = 100
    hub = Hub()
    async with rawws.serve(hub, HOST, 0, compression=None, write_limit=chunk) as server:
        slow = await RawClient.connect(server.port, rcvbuf=4096)  # does not read, for now
        fast = await rawws.connect(f"ws://{HOST}:{server.port}/", compression=None,
                                   max_size=None)
        await until(lambda: len(hub.connections) == 2)
        for i in range(count):
            assert rawws.broadcast(hub.connections, bytes([i]) * chunk) == 2
            if i % 10 == 0:
                await asyncio.sleep(0)
        for i in range(count):
            assert await fast.recv() == bytes([i]) * chunk
        slow_ws = next(ws for ws in hub.connections if ws.remote_address != fast.local_address)
        assert slow_ws.writing_paused
        assert slow_ws.write_buffer_size > 0
        # Everything is buffered for the slow reader and arrives once it reads.
        for i in range(count):
            assert await slow.read_frame() == (True, Opcode.BINARY, bytes([i]) * chunk)
        await fast.close()
        slow.send_close()
        await slow.read_until_close()
        await slow.aclose()


async def test_broadcast_from_clients_masks_each_frame() -> None:
    received: list[Message] = []

    async def handler(ws: ServerConnection) -> None:
        received.append(await ws.recv())

    async with rawws.serve(handler, HOST, 0) as server:
        clients = [await rawws.connect(f"ws://{HOST}:{server.port}/") for _ in range(3)]
        assert all(ws.protocol.broadcast_key is None for ws in clients)
        assert rawws.broadcast(clients, "from clients") == 3
        await until(lambda: len(received) == 3)
        for ws in clients:
            await ws.close()
    assert received == ["from clients"] * 3


async def test_skips_a_connection_in_the_middle_of_a_fragmented_message() -> None:
    hub = Hub()
    release = asyncio.Event()

    async def fragments() -> object:
        yield "frag1-"
        yield "frag2-"  # the first fragment leaves once the next one is known
        await release.wait()
        yield "frag3"

    async with rawws.serve(hub, HOST, 0) as server:
        a = await rawws.connect(f"ws://{HOST}:{server.port}/")
        b = await rawws.connect(f"ws://{HOST}:{server.port}/")
        await until(lambda: len(hub.connections) == 2)
        busy = next(ws for ws in hub.connections if ws.remote_address == a.local_address)
        sending = asyncio.ensure_future(busy.send(fragments()))  # type: ignore[arg-type]
        await until(lambda: busy.protocol._send_opcode != 0)
        assert rawws.broadcast(hub.connections, "news") == 1
        release.set()
        await sending
        assert await a.recv() == "frag1-frag2-frag3"
        assert await b.recv() == "news"
        await a.close()
        await b.close()


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_broadcast_from_a_callback_keeps_order_with_send_nowait(
        compression: str | None) -> None:
    """Inside a callback, bytes already queued for this connection leave before the
    broadcast frame: messages arrive in the order the application sent them."""

    class Announcer(Listener):
        def __init__(self) -> None:
            self.connections: set[Connection] = set()

        def on_connect(self, ws: Connection) -> None:
            self.connections.add(ws)

        def on_message(self, ws: Connection, message: Message) -> None:
            ws.send_nowait(f"ack {message!s}")
            rawws.broadcast(self.connections, f"announce {message!s}")

        def on_close(self, ws: Connection, code: int, reason: str) -> None:
            self.connections.discard(ws)

    announcer = Announcer()
    async with rawws.serve(announcer, HOST, 0, compression=compression) as server:
        ws = await rawws.connect(f"ws://{HOST}:{server.port}/", compression=compression)
        await ws.send("one")
        await ws.send("two")
        got = [await ws.recv() for _ in range(4)]
        assert got == ["ack one", "announce one", "ack two", "announce two"]
        await ws.close()


@pytest.mark.parametrize("hook", [None, "sync", "async"])
async def test_broadcast_from_on_connect_follows_the_handshake(hook: str | None) -> None:
    """A chat-style on_connect announces the newcomer to everyone, the newcomer included: its
    frame must follow the 101 response, whether the handshake ran inline or after an async
    process_request."""

    class Lobby(Listener):
        def __init__(self) -> None:
            self.connections: set[Connection] = set()

        def on_connect(self, ws: Connection) -> None:
            self.connections.add(ws)
            rawws.broadcast(self.connections, f"joined: {len(self.connections)}")

        def on_close(self, ws: Connection, code: int, reason: str) -> None:
            self.connections.discard(ws)

    def sync_hook(ws: ServerConnection, request: rawws.Request) -> None:
        return None

    async def async_hook(ws: ServerConnection, request: rawws.Request) -> None:
        await asyncio.sleep(0)

    options: dict[str, object] = {"compression": None}
    if hook is not None:
        options["process_request"] = sync_hook if hook == "sync" else async_hook
    async with rawws.serve(Lobby(), HOST, 0, **options) as server:
        first = await rawws.connect(f"ws://{HOST}:{server.port}/")
        assert await first.recv() == "joined: 1"
        second = await rawws.connect(f"ws://{HOST}:{server.port}/")
        assert await second.recv() == "joined: 2"
        assert await first.recv() == "joined: 2"
        await first.close()
        await second.close()
