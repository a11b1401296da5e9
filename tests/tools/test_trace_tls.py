"""``rawws trace`` to a ``wss://`` upstream: plain TCP from the client, TLS to the server (a
self-signed certificate made at test time with the openssl command, trusted with --cafile)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

import rawws

from .helpers import HOST, frames, tracing, violations


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed: cannot make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return cert, key


async def echo(ws: rawws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def test_a_wss_upstream_is_decoded_in_the_clear(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    upstream = ssl.create_default_context(cafile=str(cert))
    async with rawws.serve(echo, HOST, 0, ssl=server_context) as server, \
            tracing(server.port, ssl=upstream) as (proxy, writer):
        async with rawws.connect(f"ws://{HOST}:{proxy.port_listening}/") as ws:
            await ws.send("over TLS upstream")
            assert await ws.recv() == "over TLS upstream"
        await proxy.drain()
    assert violations(writer.events) == []
    texts = [(f.dir, f.text) for f in frames(writer.events) if f.opcode == "TEXT"]
    assert texts == [("c2s", "over TLS upstream"), ("s2c", "over TLS upstream")]
