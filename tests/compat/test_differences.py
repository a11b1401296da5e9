"""Where rawws answers differently from websockets on purpose (docs/websockets-compat.md).

These run with rawws only: each states the websockets behaviour it departs from and why.
"""

from __future__ import annotations

import asyncio
import http
import logging
from typing import Any

import pytest

import rawws

from ..aio.peers import until

HOST = "127.0.0.1"


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


async def test_legacy_tuple_from_process_request_is_answered_at_once(
        caplog: pytest.LogCaptureFixture) -> None:
    """websockets' legacy ``(status, headers, body)`` return: websockets 13+ aborts the TCP
    connection (the client sees a bare EOF); rawws answers it as meant, and warns."""
    def process_request(connection: Any, request: Any) -> Any:
        return http.HTTPStatus.FORBIDDEN, [("X-Why", "legacy")], b"nope\n"

    caplog.set_level(logging.WARNING, "rawws")
    async with rawws.serve(echo, HOST, 0, process_request=process_request) as server:
        with pytest.raises(rawws.InvalidStatus) as info:
            await rawws.connect(f"ws://{HOST}:{server.port}/")
    response = info.value.response
    assert (response.status_code, response.headers["X-Why"], response.body) == (
        403, "legacy", b"nope\n")
    assert any("legacy API" in r.getMessage() for r in caplog.records)


async def test_process_request_returning_something_else_is_500() -> None:
    async with rawws.serve(echo, HOST, 0, process_request=lambda c, r: "forbidden") as server:
        with pytest.raises(rawws.InvalidStatus) as info:
            await rawws.connect(f"ws://{HOST}:{server.port}/")
    assert info.value.status_code == 500


def test_close_timeout_none_is_refused() -> None:
    """websockets lets close_timeout=None wait forever; rawws always bounds the close."""
    with pytest.raises(ValueError, match="close_timeout"):
        rawws.serve(echo, HOST, 0, close_timeout=None)


async def test_one_log_line_per_connection_and_per_refusal(
        caplog: pytest.LogCaptureFixture) -> None:
    def process_request(connection: Any, request: Any) -> Any:
        if request.path.startswith("/private"):
            return connection.respond(403, "members only\n")
        return None

    caplog.set_level(logging.INFO, "rawws")
    async with rawws.serve(echo, HOST, 0, process_request=process_request,
                           subprotocols=["chat"]) as server:
        async with rawws.connect(f"ws://{HOST}:{server.port}/room?token=secret",
                                 subprotocols=["chat"]) as ws:
            await ws.send("x")
            await ws.recv()
        with pytest.raises(rawws.InvalidStatus):
            await rawws.connect(f"ws://{HOST}:{server.port}/private/x", subprotocols=["chat"])
        with pytest.raises(rawws.InvalidStatus):
            await rawws.connect(f"ws://{HOST}:{server.port}/room")  # no subprotocol
    lines = [r.getMessage() for r in caplog.records if r.name == "rawws.server"]
    connected = [line for line in lines if "accepted" in line]
    refused = [line for line in lines if "refused" in line]
    assert len(connected) == 1 and "accepted GET /room?token=*** " in connected[0]
    assert "(subprotocol chat)" in connected[0] and "secret" not in connected[0]
    assert len(refused) == 2
    assert ": refused /private/x with HTTP 403: members only" in refused[0]
    assert ": refused /room with HTTP 400: no subprotocol offered" in refused[1]
    assert any(line.startswith("server listening on ws://127.0.0.1:") for line in lines)


async def test_handshake_in_progress_gets_503_when_the_server_closes() -> None:
    """websockets answers 503 too; rawws used to drop the TCP connection."""
    release = asyncio.Event()

    async def process_request(connection: Any, request: Any) -> None:
        await release.wait()

    server = await rawws.serve(echo, HOST, 0, process_request=process_request)
    connecting = asyncio.ensure_future(rawws.connect(f"ws://{HOST}:{server.port}/"))
    await until(lambda: any(c.protocol.request for c in server.connections))
    server.close()
    with pytest.raises(rawws.InvalidStatus) as info:
        await connecting
    assert info.value.status_code == 503
    await server.wait_closed()
