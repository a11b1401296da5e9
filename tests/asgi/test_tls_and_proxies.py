"""rawws.asgi behind TLS (uvicorn's SSL transport: no half-close) and behind a trusted proxy
(uvicorn's ProxyHeadersMiddleware rewrites the scope), for rawws' class and uvicorn's two."""

from __future__ import annotations

import logging
import ssl
from typing import Any

import pytest
import trustme
import websockets
from websockets.asyncio.client import connect

from tests.aio.peers import RawClient, upgrade_request

from .harness import serve  # skips the module without uvicorn

Receive = Any
Send = Any


def scope_echo() -> Any:
    """Accept, send the scope's scheme and client host, echo until the disconnect."""

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": f"{scope['scheme']} {scope['client'][0]}"})
        while (event := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "bytes": event["bytes"]})

    return app


async def test_over_tls(ws: str, tmp_path: Any) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with serve(scope_echo(), ws, ssl_certfile=str(certfile),
                     ssl_keyfile=str(keyfile)) as served:
        url = f"wss://127.0.0.1:{served.port}/"
        async with connect(url, ssl=context) as client:
            assert await client.recv() == "wss 127.0.0.1"
            await client.send(b"x" * 100_000)
            assert await client.recv() == b"x" * 100_000
        assert client.close_code == 1000
        # A protocol error over TLS (the transport cannot half-close): the close frame arrives
        # (uvicorn's wsproto class drops TCP instead, as on plain TCP).
        if ws != "wsproto":
            async with connect(url, ssl=context, max_size=None) as client:
                await client.recv()
                # A frame with a reserved opcode, written below websockets' own checks.
                client.transport.write(RawClient.frame(0x3, b"reserved opcode"))
                with pytest.raises(websockets.ConnectionClosed):
                    await client.recv()
            assert client.close_code == 1002


async def test_behind_a_trusted_proxy(ws: str, caplog: pytest.LogCaptureFixture) -> None:
    forwarded = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")]
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        async with serve(scope_echo(), ws, proxy_headers=True,
                         forwarded_allow_ips="127.0.0.1") as served:
            client = await RawClient.open(served.port)
            client.write(upgrade_request(extra=forwarded)[0])
            status, _, _ = await client.read_response(body=False)
            assert status == 101
            assert await client.read_frame() == (True, 1, b"wss 203.0.113.7")
            client.send_close(1000)
            await client.read_until_close()
    accepted = [r.getMessage() for r in caplog.records if "[accepted]" in r.getMessage()]
    assert len(accepted) == 1 and accepted[0].startswith("203.0.113.7:")


async def test_an_untrusted_proxy_is_ignored(ws: str) -> None:
    forwarded = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")]
    async with serve(scope_echo(), ws, proxy_headers=True,
                     forwarded_allow_ips="192.0.2.1") as served:
        client = await RawClient.open(served.port)
        client.write(upgrade_request(extra=forwarded)[0])
        status, _, _ = await client.read_response(body=False)
        assert status == 101
        assert await client.read_frame() == (True, 1, b"ws 127.0.0.1")
