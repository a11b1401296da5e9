"""rawws.sync over TLS: wss:// between the threaded server and client, and against
websockets.sync, with a self-signed certificate made at test time."""

from __future__ import annotations

import ssl
import threading
from typing import Any

import pytest
import websockets.sync.client
import websockets.sync.server

import rawws.sync.client
import rawws.sync.server

from ..aio.test_tls import certificate, client_context, server_context  # noqa: F401

HOST = "127.0.0.1"
SERVES = {"rawws": rawws.sync.server.serve, "websockets": websockets.sync.server.serve}
CONNECTS = {"rawws": rawws.sync.client.connect, "websockets": websockets.sync.client.connect}


def echo(ws: Any) -> None:
    for message in ws:
        ws.send(message)


@pytest.mark.parametrize("server_name, client_name", [("rawws", "rawws"),
                                                      ("rawws", "websockets"),
                                                      ("websockets", "rawws")])
def test_wss(server_name: str, client_name: str, server_context: ssl.SSLContext,  # noqa: F811
             client_context: ssl.SSLContext) -> None:  # noqa: F811
    server = SERVES[server_name](echo, HOST, 0, ssl=server_context)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        port = server.socket.getsockname()[1]
        extra = {"proxy": None} if client_name == "websockets" else {}
        with CONNECTS[client_name](f"wss://localhost:{port}/", ssl=client_context,
                                   **extra) as ws:
            assert isinstance(ws.socket, ssl.SSLSocket)
            for message in ("secret", b"\x00" * 70000, "é" * 2**18):
                ws.send(message)
                assert ws.recv(timeout=10) == message
    finally:
        server.shutdown()
        thread.join(30)


def test_wss_refuses_an_unknown_certificate(server_context: ssl.SSLContext) -> None:  # noqa: F811
    server = rawws.sync.server.serve(echo, HOST, 0, ssl=server_context)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            rawws.sync.client.connect(f"wss://localhost:{server.socket.getsockname()[1]}/")
    finally:
        server.shutdown()
        thread.join(30)
