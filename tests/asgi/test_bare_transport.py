"""rawws.asgi.WebSocketProtocol on the barest transport uvicorn may hand it, byte for byte.

The transport offers only ``write``, ``close``, ``is_closing``, ``get_extra_info``,
``pause_reading`` and ``resume_reading`` (no ``abort``, ``write_eof`` or
``get_write_buffer_size``); config and server state are plain objects with the attributes
uvicorn's ``Config`` and ``ServerState`` carry. No uvicorn needed: these run everywhere.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from rawws.asgi import HOLD_TIMEOUT, ClientDisconnected, WebSocketProtocol
from rawws.sansio.codes import Opcode
from rawws.sansio.frames import serialize_frame
from rawws.sansio.handshake import accept_key
from rawws.testing import idle

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x01\x02\x03\x04"
REQUEST = (b"GET /chat?room=1 HTTP/1.1\r\nhost: example.com\r\nupgrade: websocket\r\n"
           b"connection: upgrade\r\nsec-websocket-key: " + KEY.encode() +
           b"\r\nsec-websocket-version: 13\r\n\r\n")


class BareTransport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False
        self.paused = False
        self.pauses = 0

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default)

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False

    def take(self) -> bytes:
        data, self.written = self.written, b""
        return data


def frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    return serialize_frame(opcode, payload, fin=fin, masking_key=MASK)


def make(app: Any, **options: Any) -> tuple[WebSocketProtocol, BareTransport, Any]:
    config = SimpleNamespace(
        loaded=True, loaded_app=app, root_path="", asgi_version="3.0", ws_max_size=1 << 20,
        ws_max_queue=32, ws_ping_interval=None, ws_ping_timeout=None,
        ws_per_message_deflate=False)
    for name, value in options.items():
        setattr(config, name, value)
    state = SimpleNamespace(connections=set(), tasks=set(),
                            default_headers=[(b"server", b"uvicorn")])
    protocol = WebSocketProtocol(config=config, server_state=state, app_state={})
    transport = BareTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport, state


def echo(events: list[Any]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            event = await receive()
            events.append(event)
            if event["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif event["type"] == "websocket.receive":
                await send({"type": "websocket.send", "text": event["text"]})
            else:
                return

    return app


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


RESPONSE_101 = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept_key(KEY).encode() +
                b"\r\nserver: uvicorn\r\n\r\n")


async def test_handshake_echo_and_close_byte_for_byte() -> None:
    events: list[Any] = []
    protocol, transport, state = make(echo(events))
    assert state.connections == {protocol}
    protocol.data_received(REQUEST)
    assert transport.paused  # nothing to read until the application decides
    await settle()
    assert transport.take() == RESPONSE_101
    assert not transport.paused
    protocol.data_received(frame(Opcode.TEXT, b"hello"))
    await settle()
    assert transport.take() == b"\x81\x05hello"
    protocol.data_received(frame(Opcode.CLOSE, b"\x03\xe8bye"))
    assert transport.take() == b"\x88\x05\x03\xe8bye"  # echoed
    assert transport.closed  # the server closes TCP first (RFC 6455 §7.1.1)
    await settle()
    protocol.connection_lost(None)
    assert state.connections == set()
    assert not state.tasks
    assert events == [{"type": "websocket.connect"},
                      {"type": "websocket.receive", "text": "hello"},
                      {"type": "websocket.disconnect", "code": 1000, "reason": "bye"}]


async def test_protocol_error_without_write_eof() -> None:
    events: list[Any] = []
    protocol, transport, _ = make(echo(events))
    protocol.data_received(REQUEST)
    await settle()
    transport.take()
    protocol.data_received(frame(Opcode.PING, b"x" * 126))  # a control frame over 125 bytes
    assert transport.take() == b"\x88\x2e\x03\xeacontrol frame payload is 126 bytes (max 125)"
    assert transport.closed  # no write_eof to half-close with: closed
    await settle()
    assert events[-1] == {"type": "websocket.disconnect", "code": 1002,
                          "reason": "control frame payload is 126 bytes (max 125)"}


async def test_app_raises_after_accept_closes_1011() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise RuntimeError("bug")

    protocol, transport, _ = make(app)
    protocol.data_received(REQUEST)
    await settle()
    assert transport.take() == RESPONSE_101 + b"\x88\x17\x03\xf3Internal Server Error"
    assert not transport.closed  # waiting for the client's close
    assert protocol.close_timer is not None
    protocol.data_received(frame(Opcode.CLOSE, b"\x03\xf3"))
    assert transport.closed
    assert protocol.close_timer is None


async def test_app_returns_after_accept_closes_1000() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})

    protocol, transport, _ = make(app)
    protocol.data_received(REQUEST)
    await settle()
    assert transport.take() == RESPONSE_101 + b"\x88\x02\x03\xe8"


async def test_message_waits_then_reading_resumes() -> None:
    go = asyncio.Event()
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await go.wait()
        seen.append(await receive())
        seen.append(await receive())

    protocol, transport, _ = make(app)
    protocol.data_received(REQUEST)
    await settle()
    protocol.data_received(frame(Opcode.BINARY, b"1") + frame(Opcode.BINARY, b"2"))
    assert transport.paused  # two messages wait for the application
    go.set()
    await settle()
    assert not transport.paused
    assert seen == [{"type": "websocket.receive", "bytes": b"1"},
                    {"type": "websocket.receive", "bytes": b"2"}]


async def test_message_straight_to_a_waiting_receive_does_not_pause() -> None:
    protocol, transport, _ = make(echo([]))
    protocol.data_received(REQUEST)
    await settle()
    pauses = transport.pauses
    protocol.data_received(frame(Opcode.TEXT, b"a"))
    assert not transport.paused and transport.pauses == pauses
    await settle()
    assert transport.take().endswith(b"\x81\x01a")


async def test_shutdown_sends_1012_then_waits_for_the_echo() -> None:
    events: list[Any] = []
    protocol, transport, _ = make(echo(events))
    protocol.data_received(REQUEST)
    await settle()
    transport.take()
    protocol.shutdown()
    assert transport.take() == b"\x88\x02\x03\xf4"
    assert not transport.closed
    protocol.data_received(frame(Opcode.CLOSE, b"\x03\xf4"))
    assert transport.closed
    await settle()
    assert events[-1] == {"type": "websocket.disconnect", "code": 1012}


async def test_second_shutdown_drops_at_once() -> None:
    protocol, transport, _ = make(echo([]))
    protocol.data_received(REQUEST)
    await settle()
    protocol.shutdown()
    protocol.shutdown()
    assert transport.closed  # no abort(): close()


async def test_receive_after_the_disconnect_raises() -> None:
    outcome: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        outcome.append(await receive())
        try:
            await receive()
        except ClientDisconnected as exc:
            outcome.append(exc)

    protocol, _transport, _ = make(app)
    protocol.data_received(REQUEST)
    await settle()
    protocol.data_received(frame(Opcode.CLOSE, b""))
    await settle()
    assert outcome[0] == {"type": "websocket.disconnect", "code": 1005, "reason": ""}
    assert isinstance(outcome[1], OSError)


async def test_header_injection_is_an_application_error() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept",
                    "headers": [(b"x-user", b"alice\r\nSet-Cookie: admin=1")]})

    protocol, transport, _ = make(app)
    protocol.data_received(REQUEST)
    await settle()
    written = transport.take()
    assert written.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"Set-Cookie" not in written


async def test_subprotocol_not_offered_is_an_application_error() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "graphql-ws"})

    protocol, transport, _ = make(app)
    protocol.data_received(REQUEST)
    await settle()
    assert transport.take().startswith(b"HTTP/1.1 500 ")


async def test_scope_of_a_replayed_lowercase_request() -> None:
    scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.close"})

    protocol, transport, _ = make(app, root_path="/r")
    protocol.data_received(REQUEST)
    await settle()
    assert transport.take().startswith(b"HTTP/1.1 403 Forbidden\r\nserver: uvicorn\r\n")
    (scope,) = scopes
    assert scope["path"] == "/r/chat" and scope["query_string"] == b"room=1"
    assert scope["client"] == ("127.0.0.1", 50000) and scope["server"] == ("127.0.0.1", 8000)
    assert scope["headers"][0] == (b"host", b"example.com")


@pytest.mark.virtual_clock
async def test_a_held_close_waits_for_the_app_at_most_hold_timeout() -> None:
    """A message and the client's close in one read, and an application that never asks for
    the next event: the echo of the close goes out HOLD_TIMEOUT later, not never."""
    loop = asyncio.get_running_loop()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()  # the message; then the application does something else forever
        await asyncio.Event().wait()

    protocol, transport, _ = make(app)
    protocol.data_received(REQUEST)
    await idle()
    transport.take()
    protocol.data_received(frame(Opcode.TEXT, b"m") + frame(Opcode.CLOSE, b"\x03\xe8"))
    start = loop.time()
    await idle()
    assert transport.take() == b""  # held behind the message the application has
    assert not transport.closed
    await asyncio.sleep(HOLD_TIMEOUT)
    assert loop.time() - start == pytest.approx(HOLD_TIMEOUT)
    assert transport.take() == b"\x88\x02\x03\xe8"
    assert transport.closed


@pytest.mark.virtual_clock
async def test_close_timeout_drops_a_peer_that_never_answers() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1001})

    protocol, transport, _ = make(app)
    protocol.data_received(REQUEST)
    await idle()
    assert transport.take().endswith(b"\x88\x02\x03\xe9")
    await asyncio.sleep(protocol.close_timeout - 0.001)
    assert not transport.closed
    await asyncio.sleep(0.002)
    assert transport.closed  # no abort() on this transport: close()


@pytest.mark.parametrize("then", ["returns", "shutdown"])
async def test_a_held_close_goes_out_when_the_app_returns_or_the_server_stops(then: str) -> None:
    taken = asyncio.Event()
    stop = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        await send({"type": "websocket.send", "text": "answer"})
        taken.set()
        if then == "shutdown":
            await stop.wait()

    protocol, transport, _ = make(app)
    protocol.data_received(REQUEST)
    await settle()
    transport.take()
    protocol.data_received(frame(Opcode.TEXT, b"m") + frame(Opcode.CLOSE, b"\x03\xe8"))
    await taken.wait()
    if then == "shutdown":
        protocol.shutdown()
    await settle()
    # The answer first, then the echo of the client's close (not a 1012 of our own).
    assert transport.take() == b"\x81\x06answer\x88\x02\x03\xe8"
    assert transport.closed
    stop.set()
