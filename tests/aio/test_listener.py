"""The callback API (``rawws.Listener``) over real sockets (one test on the virtual clock)."""

from __future__ import annotations

import logging

import pytest

import rawws
from rawws import Connection, ConnectionClosedError, Listener, Message, ServerConnection
from rawws.sansio.codes import Opcode
from rawws.testing import idle

from .peers import HOST, RawClient, until


class Recorder(Listener):
    """Record every callback with its arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def on_connect(self, ws: Connection) -> None:
        self.calls.append(("connect", ws, ws.state))

    def on_message(self, ws: Connection, message: Message) -> None:
        self.calls.append(("message", ws, message))

    def on_ping(self, ws: Connection, payload: bytes) -> None:
        self.calls.append(("ping", ws, payload))

    def on_pong(self, ws: Connection, payload: bytes) -> None:
        self.calls.append(("pong", ws, payload))

    def on_writable(self, ws: Connection) -> None:
        self.calls.append(("writable", ws))

    def on_close(self, ws: Connection, code: int, reason: str) -> None:
        self.calls.append(("close", ws, code, reason))


async def test_callbacks_in_order_with_their_arguments() -> None:
    recorder = Recorder()
    async with rawws.serve(recorder, HOST, 0) as server:
        async with rawws.connect(f"ws://{HOST}:{server.port}/") as ws:
            await ws.send("text")
            await ws.send(b"\x00binary")
            await (await ws.ping(b"ping data"))
            await ws.pong(b"heartbeat")
            await ws.send("")
            await ws.close(4000, "bye")
        await until(lambda: recorder.calls and recorder.calls[-1][0] == "close")
    calls = recorder.calls
    server_ws = calls[0][1]
    assert isinstance(server_ws, ServerConnection)
    assert all(call[1] is server_ws for call in calls)
    assert [call[:1] + call[2:] for call in calls] == [
        ("connect", rawws.State.OPEN),
        ("message", "text"),
        ("message", b"\x00binary"),
        ("ping", b"ping data"),
        ("pong", b"heartbeat"),
        ("message", ""),
        ("close", 4000, "bye"),
    ]


async def test_listener_class_is_instantiated_and_echoes_with_send_nowait() -> None:
    class Echo(Listener):
        def on_message(self, ws: Connection, message: Message) -> None:
            ws.send_nowait(message)

    async with (rawws.serve(Echo, HOST, 0) as server,
                rawws.connect(f"ws://{HOST}:{server.port}/") as ws):
        assert server.listener is not None
        assert isinstance(server.listener, Echo)
        for message in ("a", b"b", "c" * 70000):
            await ws.send(message)
            assert await ws.recv() == message


async def test_one_listener_serves_many_connections() -> None:
    recorder = Recorder()
    async with rawws.serve(recorder, HOST, 0) as server:
        clients = [await rawws.connect(f"ws://{HOST}:{server.port}/") for _ in range(3)]
        for i, ws in enumerate(clients):
            await ws.send(str(i))
        for ws in clients:
            await ws.close()
        await until(lambda: sum(call[0] == "close" for call in recorder.calls) == 3)
    by_connection: dict[int, list[object]] = {}
    for call in recorder.calls:
        by_connection.setdefault(id(call[1]), []).append(call[0])
    assert sorted(by_connection.values()) == [["connect", "message", "close"]] * 3
    messages = sorted(call[2] for call in recorder.calls if call[0] == "message")
    assert messages == ["0", "1", "2"]


async def test_on_close_after_abrupt_disconnect_and_server_close() -> None:
    recorder = Recorder()
    server = await rawws.serve(recorder, HOST, 0)
    raw = await RawClient.connect(server.port)
    raw.abort()
    await until(lambda: any(call[0] == "close" for call in recorder.calls))
    ws = await rawws.connect(f"ws://{HOST}:{server.port}/")
    server.close()
    await server.wait_closed()
    closes = [call[2:] for call in recorder.calls if call[0] == "close"]
    assert closes == [(1006, ""), (1001, "server shutting down")]
    await ws.wait_closed()
    assert ws.close_code == 1001


@pytest.mark.parametrize("where", ["on_connect", "on_message"])
async def test_exception_in_a_callback_closes_1011_and_spares_others(
        where: str, caplog: pytest.LogCaptureFixture) -> None:
    class Fragile(Listener):
        def on_connect(self, ws: Connection) -> None:
            if where == "on_connect" and ws.request is not None and ws.request.path == "/bad":
                raise RuntimeError("bug in on_connect")

        def on_message(self, ws: Connection, message: Message) -> None:
            if message == "crash":
                raise RuntimeError("bug in on_message")
            ws.send_nowait(message)

    caplog.set_level(logging.ERROR, logger="rawws")
    async with rawws.serve(Fragile(), HOST, 0) as server:
        good = await rawws.connect(f"ws://{HOST}:{server.port}/good")
        bad = await rawws.connect(f"ws://{HOST}:{server.port}/bad")
        if where == "on_message":
            await bad.send("crash")
        with pytest.raises(ConnectionClosedError) as info:
            await bad.recv()
        assert (info.value.code, info.value.reason) == (1011, "internal error")
        await good.send("still fine")
        assert await good.recv() == "still fine"
        await good.close()
    assert any(f"bug in {where}" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


async def test_exception_in_on_close_is_logged_only(caplog: pytest.LogCaptureFixture) -> None:
    class Fragile(Listener):
        def on_close(self, ws: Connection, code: int, reason: str) -> None:
            raise RuntimeError("bug in on_close")

    async with rawws.serve(Fragile(), HOST, 0) as server:
        ws = await rawws.connect(f"ws://{HOST}:{server.port}/")
        await ws.close()
        await until(lambda: not server.connections)
        async with rawws.connect(f"ws://{HOST}:{server.port}/") as other:
            await (await other.ping())
    assert ws.close_code == 1000
    assert any("bug in on_close" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


async def test_on_writable_after_the_write_buffer_drains() -> None:
    chunk = 2**16
    count = 100

    class Flooder(Recorder):
        def on_message(self, ws: Connection, message: Message) -> None:
            self.calls.append(("message", ws, message))
            for _ in range(count):
                ws.send_nowait(b"w" * chunk)
            self.calls.append(("paused after flood", ws, ws.writing_paused))

    flooder = Flooder()
    async with rawws.serve(flooder, HOST, 0, write_limit=chunk, compression=None) as server:
        raw = await RawClient.connect(server.port, rcvbuf=4096)
        raw.send_frame(Opcode.TEXT, b"go")
        await until(lambda: len(flooder.calls) >= 3)
        assert [call[0] for call in flooder.calls] == ["connect", "message",
                                                       "paused after flood"]
        assert flooder.calls[2][2] is True
        for _ in range(count):
            assert await raw.read_frame() == (True, Opcode.BINARY, b"w" * chunk)
        await until(lambda: any(call[0] == "writable" for call in flooder.calls))
        assert [call[0] for call in flooder.calls] == ["connect", "message",
                                                       "paused after flood", "writable"]
        server_ws = flooder.calls[0][1]
        assert isinstance(server_ws, Connection)
        assert flooder.calls[3][1] is server_ws
        assert not server_ws.writing_paused
        raw.send_close()
        await raw.read_until_close()
        await raw.aclose()


@pytest.mark.virtual_clock
async def test_pause_and_resume_reading_from_callbacks() -> None:
    """The callback-API back-pressure pattern: pause reading while our replies back up."""
    received: list[Message] = []

    class Pausing(Listener):
        def on_message(self, ws: Connection, message: Message) -> None:
            received.append(message)
            if message == "pause":
                ws.pause_reading()

    async with rawws.serve(Pausing(), HOST, 0) as server:
        ws = await rawws.connect(f"ws://{HOST}:{server.port}/")
        await ws.send("pause")
        await idle()
        assert received == ["pause"]
        server_ws = next(iter(server.connections))
        assert server_ws.transport is not None
        assert not server_ws.transport.is_reading()
        await ws.send("held")
        await idle()  # everything that could happen has: the message waits in the kernel
        assert received == ["pause"]
        server_ws.resume_reading()
        await idle()
        assert received == ["pause", "held"]
        await ws.close()


async def test_client_side_listener() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("welcome")
        await ws.recv()
        await ws.close(4002, "server done")

    recorder = Recorder()
    async with rawws.serve(handler, HOST, 0) as server:
        ws = await rawws.connect(f"ws://{HOST}:{server.port}/", listener=recorder)
        await until(lambda: any(call[0] == "message" for call in recorder.calls))
        ws.send_nowait("thanks")
        await ws.wait_closed()
    assert [call[:1] + call[2:] for call in recorder.calls] == [
        ("connect", rawws.State.OPEN),
        ("message", "welcome"),
        ("close", 4002, "server done"),
    ]
    assert all(call[1] is ws for call in recorder.calls)


async def test_reply_to_a_message_that_came_with_the_close_is_not_an_error(
        caplog: pytest.LogCaptureFixture) -> None:
    """A message and the close right behind it arrive in one read: if the echo of the message
    cannot be sent any more (the connection is closing), that is not a bug to log at ERROR."""
    received: list[Message] = []

    class Echo(Listener):
        def on_message(self, ws: Connection, message: Message) -> None:
            received.append(message)
            ws.send_nowait(message)

    caplog.set_level(logging.DEBUG, logger="rawws")
    async with rawws.serve(Echo(), HOST, 0) as server:
        raw = await RawClient.connect(server.port)
        frames = RawClient.frame(Opcode.TEXT, b"last words") + RawClient.frame(
            Opcode.CLOSE, (1000).to_bytes(2, "big"))
        raw.write(frames)  # one write, one read on the server
        (code, _), before = await raw.read_until_close()
        assert code == 1000
        await raw.read_eof()
        await raw.aclose()
    assert received == ["last words"]
    # The echo either went out before the close echo, or not at all; never after it (§5.5.1).
    assert before in ([], [(True, Opcode.TEXT, b"last words")])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_echo_listener_answers_every_message_before_the_close() -> None:
    """Autobahn 7.1.6 through `python -m rawws echo`'s listener: a 256 KiB message, a small
    one and a close, back to back. The big echo fills the write buffer mid-batch; the small
    one is still echoed before the close."""
    from rawws.__main__ import EchoListener

    async with rawws.serve(EchoListener(), HOST, 0, max_size=None, compression=None) as server:
        raw = await RawClient.connect(server.port)
        big = bytes(range(256)) * 1024
        raw.write(RawClient.frame(Opcode.BINARY, big)
                  + RawClient.frame(Opcode.TEXT, b"Hello World!")
                  + RawClient.frame(Opcode.CLOSE, b"\x03\xe8"))
        (code, _), before = await raw.read_until_close()
        assert before == [(True, Opcode.BINARY, big), (True, Opcode.TEXT, b"Hello World!")]
        assert code == 1000
        await raw.aclose()
