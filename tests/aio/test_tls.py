"""wss:// over real sockets with a self-signed certificate made at test time (openssl CLI)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

import rawws
from rawws import ConnectionClosedOK, ServerConnection

from .peers import HOST, RawClient, until


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, valid for a day."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed: cannot make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture
def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def test_wss_rawws_server_and_client(server_context: ssl.SSLContext,
                                           client_context: ssl.SSLContext) -> None:
    seen: list[object] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.transport is not None
        seen.append(ws.transport.get_extra_info("ssl_object") is not None)
        await echo(ws)

    async with rawws.serve(handler, HOST, 0, ssl=server_context) as server:
        for host in ("localhost", HOST):
            async with rawws.connect(f"wss://{host}:{server.port}/secure",
                                     ssl=client_context, host=HOST) as ws:
                assert ws.transport is not None
                assert ws.transport.get_extra_info("ssl_object") is not None
                for message in ("secret", b"\x00" * 70000, "é" * 2**19):
                    await ws.send(message)
                    assert await ws.recv() == message
                await ws.send(["frag", "mented"])
                assert await ws.recv() == "fragmented"
                assert await (await ws.ping()) >= 0.0
            assert ws.close_code == 1000
    assert seen == [True, True]


async def test_wss_server_close_codes(server_context: ssl.SSLContext,
                                      client_context: ssl.SSLContext) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.close(4321, "tls bye")

    async with rawws.serve(handler, HOST, 0, ssl=server_context) as server:
        ws = await rawws.connect(f"wss://localhost:{server.port}/", ssl=client_context,
                                 host=HOST)
        with pytest.raises(rawws.ConnectionClosedError) as info:
            await ws.recv()
        assert (info.value.code, info.value.reason) == (4321, "tls bye")
        await ws.wait_closed()


async def test_wss_graceful_shutdown(server_context: ssl.SSLContext,
                                     client_context: ssl.SSLContext) -> None:
    server = await rawws.serve(echo, HOST, 0, ssl=server_context)
    ws = await rawws.connect(f"wss://localhost:{server.port}/", ssl=client_context, host=HOST)
    await until(lambda: server.open_count == 1)
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectionClosedOK) as info:
        await ws.recv()
    assert info.value.code == 1001


async def test_wss_client_rejects_an_untrusted_certificate(
        server_context: ssl.SSLContext) -> None:
    async with rawws.serve(echo, HOST, 0, ssl=server_context) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await rawws.connect(f"wss://localhost:{server.port}/", host=HOST,
                                ssl=ssl.create_default_context())
        await until(lambda: not server.connections)


async def test_wss_uri_requires_matching_scheme(client_context: ssl.SSLContext) -> None:
    with pytest.raises(rawws.InvalidURI):
        rawws.connect("ws://localhost:1/", ssl=client_context)


async def test_websockets_client_against_rawws_wss_server(
        server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> None:
    websockets_client = pytest.importorskip("websockets.asyncio.client")
    async with rawws.serve(echo, HOST, 0, ssl=server_context) as server:
        async with websockets_client.connect(
            f"wss://localhost:{server.port}/", ssl=client_context, host=HOST,
        ) as ws:
            await ws.send("from websockets over TLS")
            assert await ws.recv() == "from websockets over TLS"
            await ws.send(b"\x01" * 100000)
            assert await ws.recv() == b"\x01" * 100000
            await ws.close(4000, "done")
        assert ws.close_code == 4000


async def test_open_timeout_bounds_the_tls_handshake(server_context: ssl.SSLContext) -> None:
    """A client that opens TCP and never starts TLS is dropped after open_timeout (asyncio's
    own TLS handshake timeout is 60 s, beyond this test's bound)."""
    async with rawws.serve(echo, HOST, 0, ssl=server_context, open_timeout=0.1) as server:
        raw = await RawClient.open(server.port)
        assert await raw.read_eof() == b""
        await raw.aclose()
