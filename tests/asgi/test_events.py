"""The ASGI WebSocket events under real uvicorn servers, for rawws' class and uvicorn's two.

Each test is one scenario from the ASGI HTTP & WebSocket spec 2.5 (scope, connect, accept,
receive, send, disconnect, close, the ``websocket.http.response`` extension) driven by a real
client on 127.0.0.1. Where the classes behave differently the expectation is written per class
(docs/asgi.md, "Where rawws differs").
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect

from rawws.sansio.codes import Opcode
from rawws.sansio.handshake import accept_key
from tests.aio.peers import RawClient, upgrade_request

from .harness import HTTP_CLASSES, WS_CLASSES, serve  # skips the module without uvicorn

Receive = Any
Send = Any


def echo_app(*, subprotocol: str | None = None, headers: list[Any] | None = None) -> Any:
    """Accept, then echo every message; record every event received."""
    events: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        app.scope = scope  # type: ignore[attr-defined]
        while True:
            event = await receive()
            events.append(event)
            if event["type"] == "websocket.connect":
                accept: dict[str, Any] = {"type": "websocket.accept"}
                if subprotocol is not None:
                    accept["subprotocol"] = subprotocol
                if headers is not None:
                    accept["headers"] = headers
                await send(accept)
            elif event["type"] == "websocket.receive":
                if event.get("text") == "close please":
                    await send({"type": "websocket.close", "code": 4000, "reason": "asked"})
                elif event.get("text") is not None:
                    await send({"type": "websocket.send", "text": event["text"]})
                else:
                    await send({"type": "websocket.send", "bytes": event["bytes"]})
            else:
                return

    app.events = events  # type: ignore[attr-defined]
    return app


async def test_the_scope(ws: str) -> None:
    app = echo_app()
    async with serve(app, ws, root_path="/base") as served:
        url = f"{served.url}/one%2Ftwo/caf%C3%A9?q=1&token=secret"
        async with connect(url, subprotocols=["chat", "superchat"],  # type: ignore[list-item]
                           additional_headers=[("X-Custom", "Value")]) as client:
            await client.send("hi")
            assert await client.recv() == "hi"
            local = client.remote_address
            peer = client.local_address
    scope = app.scope
    assert scope["type"] == "websocket"
    assert scope["asgi"]["version"] == "3.0"
    # rawws sends reason in websocket.disconnect and raises OSError after a close: spec 2.5.
    assert scope["asgi"]["spec_version"] == ("2.5" if ws == "rawws" else "2.4")
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert tuple(scope["server"]) == (local[0], local[1])
    assert tuple(scope["client"]) == (peer[0], peer[1])
    assert scope["root_path"] == "/base"
    assert scope["path"] == "/base/one/two/café"
    assert scope["raw_path"] == b"/base/one%2Ftwo/caf%C3%A9"
    assert scope["query_string"] == b"q=1&token=secret"
    headers = dict(scope["headers"])
    assert headers[b"x-custom"] == b"Value"
    assert headers[b"host"] == f"127.0.0.1:{served.port}".encode()
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert list(scope["subprotocols"]) == ["chat", "superchat"]
    assert scope["state"] == {}
    assert "websocket.http.response" in scope["extensions"]


async def test_connect_accept_receive_send_disconnect(ws: str) -> None:
    app = echo_app(subprotocol="superchat", headers=[(b"x-extra", b"1")])
    offer: Any = ["chat", "superchat"]
    async with serve(app, ws) as served, connect(served.url, subprotocols=offer) as client:
        assert client.subprotocol == "superchat"
        assert client.response is not None
        assert client.response.headers["x-extra"] == "1"
        assert client.response.headers["server"] == "uvicorn"
        await client.send("text é")
        assert await client.recv() == "text é"
        await client.send(b"\x00\xff")
        assert await client.recv() == b"\x00\xff"
        await client.close(1001, "bye")
    assert app.events == [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "text é"},
        {"type": "websocket.receive", "bytes": b"\x00\xff"},
        {"type": "websocket.disconnect", "code": 1001, "reason": "bye"},
    ]


async def test_the_exact_bytes_of_the_handshake_and_frames(ws: str) -> None:
    async with serve(echo_app(), ws, server_header=False, date_header=False,
                     ws_per_message_deflate=False) as served:
        client = await RawClient.open(served.port)
        request, key = upgrade_request()
        client.write(request)
        head = await client.read_head()
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0] == "HTTP/1.1 101 Switching Protocols"
        fields = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip()
                  for line in lines[1:] if line}
        assert fields["sec-websocket-accept"] == accept_key(key)
        assert fields["upgrade"].lower() == "websocket"
        assert "server" not in fields and "date" not in fields
        client.send_frame(Opcode.TEXT, b"hi")
        assert await client.reader.readexactly(4) == b"\x81\x02hi"
        client.send_frame(Opcode.BINARY, b"\x01\x02\x03")
        assert await client.reader.readexactly(5) == b"\x82\x03\x01\x02\x03"
        client.send_close(1000)
        assert await client.reader.readexactly(4) == b"\x88\x02\x03\xe8"
        assert await client.read_eof() == b""


async def test_app_close_with_code_and_reason(ws: str) -> None:
    app = echo_app()
    async with serve(app, ws) as served, connect(served.url) as client:
        await client.send("close please")
        with pytest.raises(websockets.ConnectionClosedError):
            await client.recv()
    assert client.close_code == 4000
    assert client.close_reason == "asked"
    assert app.events[-1] == {"type": "websocket.disconnect", "code": 4000, "reason": "asked"}


async def test_close_before_accept_is_403(ws: str) -> None:
    events: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        events.append(await receive())
        await send({"type": "websocket.close", "code": 4001, "reason": "Token expired"})
        events.append(await receive())

    async with serve(app, ws) as served:
        with pytest.raises(websockets.InvalidStatus) as caught:
            await connect(served.url)
    assert caught.value.response.status_code == 403
    assert events == [{"type": "websocket.connect"},
                      {"type": "websocket.disconnect", "code": 1006}]


@pytest.mark.parametrize("http", HTTP_CLASSES)
async def test_denial_response(ws: str, http: str) -> None:
    body = b'{"detail": "no"}'

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"www-authenticate", b"Bearer")]})
        await send({"type": "websocket.http.response.body", "body": body[:5],
                    "more_body": True})
        await send({"type": "websocket.http.response.body", "body": body[5:]})

    async with serve(app, ws, http=http) as served:
        client = await RawClient.open(served.port)
        client.write(upgrade_request()[0])
        status, headers, _ = await client.read_response(body=False)
        rest = await client.read_eof()
    assert status == 401
    assert headers["content-type"] == "application/json"
    assert headers["www-authenticate"] == "Bearer"
    if ws == "wsproto":
        assert headers["transfer-encoding"] == "chunked"  # wsproto streams the body
        assert body[:5] in rest and body[5:] in rest
    else:
        assert headers["content-length"] == str(len(body))
        assert rest == body


async def test_send_after_the_peer_closed_raises_an_oserror(ws: str) -> None:
    outcome: list[object] = []
    closed = asyncio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        outcome.append(await receive())
        await closed.wait()
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            outcome.append(type(exc))

    async with serve(app, ws) as served:
        async with connect(served.url) as client:
            await client.close(1000)
        closed.set()
        await asyncio.gather(*served.server.server_state.tasks)
    assert outcome[0] == {"type": "websocket.disconnect", "code": 1000, "reason": ""}
    assert len(outcome) == 2 and issubclass(outcome[1], OSError)  # type: ignore[arg-type]


async def test_app_raises_before_accept_is_500(ws: str, caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="uvicorn.error"):
        async with serve(app, ws) as served:
            client = await RawClient.open(served.port)
            client.write(upgrade_request()[0])
            status, headers, body = await client.read_response()
    assert status == 500
    assert body == b"Internal Server Error"
    assert headers["content-length"] == "21"
    assert headers["connection"] == "close"
    assert "Exception in ASGI application" in caplog.text


#: What the client sees when the application raises after accepting, and when it returns
#: without closing: rawws sends the RFC's codes, uvicorn's classes drop TCP (1006).
AFTER_RAISE = {"rawws": 1011, "websockets-sansio": 1006, "wsproto": 1006}
AFTER_RETURN = {"rawws": 1000, "websockets-sansio": 1006, "wsproto": 1006}


async def test_app_raises_after_accept(ws: str) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise ValueError("boom")

    async with serve(app, ws) as served, connect(served.url) as client:
        await client.send("go")
        with pytest.raises(websockets.ConnectionClosed):
            await client.recv()
    assert client.close_code == AFTER_RAISE[ws]


async def test_app_returns_without_closing(ws: str) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "last words"})

    async with serve(app, ws) as served, connect(served.url) as client:
        assert await client.recv() == "last words"
        with pytest.raises(websockets.ConnectionClosed):
            await client.recv()
    assert client.close_code == AFTER_RETURN[ws]


async def test_access_log_lines(ws: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        async with serve(echo_app(), ws) as served, connect(f"{served.url}/room?token=secret"):
            pass
    lines = [r.getMessage() for r in caplog.records if "WebSocket" in r.getMessage()]
    port = lines[0].split(" - ")[0]
    assert port.startswith("127.0.0.1:")
    if ws == "rawws":
        # The query string may carry credentials: rawws never logs it.
        assert lines == [f'{port} - "WebSocket /room?token=***" [accepted]']
    else:
        assert lines == [f'{port} - "WebSocket /room?token=secret" [accepted]']


async def test_trace_log_lines(ws: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(5, logger="uvicorn.error"):
        async with serve(echo_app(), ws) as served, connect(served.url):
            pass
    messages = [r.getMessage().split(" - ", 1)[-1] for r in caplog.records if r.levelno == 5]
    assert "WebSocket connection made" in messages
    assert "WebSocket connection lost" in messages


async def test_invalid_upgrade_gets_the_core_s_answer(ws: str) -> None:
    async with serve(echo_app(), ws) as served:
        client = await RawClient.open(served.port)
        client.write(upgrade_request(replace={"Sec-WebSocket-Version": "8"})[0])
        status, headers, _ = await client.read_response()
    assert status in (400, 426)
    if ws == "rawws":
        assert status == 426 and headers["sec-websocket-version"] == "13"


def test_the_classes_are_the_ones_uvicorn_names() -> None:
    import uvicorn.config

    assert uvicorn.config.WS_PROTOCOLS["wsproto"] == WS_CLASSES["wsproto"]
    assert uvicorn.config.WS_PROTOCOLS["websockets-sansio"] == WS_CLASSES["websockets-sansio"]


#: A CR/LF in an accept header: rawws and websockets-sansio answer 500; wsproto drops TCP.
INJECTION = {"rawws": 500, "websockets-sansio": 500, "wsproto": None}


async def test_header_injection_in_accept_is_refused(ws: str) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept",
                    "headers": [(b"x-user", b"alice\r\nSet-Cookie: admin=1")]})

    async with serve(app, ws) as served:
        client = await RawClient.open(served.port)
        client.write(upgrade_request()[0])
        received = await client.read_eof()
    status = int(received.split(b" ")[1]) if received else None
    assert status == INJECTION[ws]
    assert b"Set-Cookie" not in received
