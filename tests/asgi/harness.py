"""Real uvicorn servers for the ASGI tests: on 127.0.0.1, a free port, in the test's own loop.

Every scenario runs against rawws' class and uvicorn's two (``websockets-sansio``, ``wsproto``)
through the ``ws`` fixture, so a behaviour that differs is written down as a per-class
expectation rather than assumed. The server is started with ``Server.startup()`` and stopped
with ``Server.shutdown()`` (no polling for "started"); its default headers (``server``,
``date``) are set the way its main loop sets them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

_MISSING = "not installed: pip install -e '.[asgi-test]' (make venv does)"
uvicorn = pytest.importorskip("uvicorn", reason=f"uvicorn {_MISSING}")
pytest.importorskip("wsproto", reason=f"wsproto {_MISSING}")

from uvicorn import Config, Server  # noqa: E402
from uvicorn.importer import import_from_string  # noqa: E402

WS_CLASSES = {
    "rawws": "rawws.asgi:WebSocketProtocol",
    "websockets-sansio": "uvicorn.protocols.websockets.websockets_sansio_impl:"
                         "WebSocketsSansIOProtocol",
    "wsproto": "uvicorn.protocols.websockets.wsproto_impl:WSProtocol",
}
HTTP = "httptools" if importlib.util.find_spec("httptools") else "h11"
HTTP_CLASSES = [name for name in ("httptools", "h11", "zttp") if importlib.util.find_spec(name)]

ASGIApp = Any


@dataclass
class Served:
    server: Server
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def connections(self) -> set[Any]:
        return self.server.server_state.connections

    def connection(self) -> Any:
        """The one WebSocket protocol instance of the server."""
        (connection,) = self.server.server_state.connections
        return connection


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, ws: str, **options: Any) -> AsyncIterator[Served]:
    """Run ``app`` under uvicorn with the WebSocket class named ``ws`` (a WS_CLASSES key)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    options.setdefault("http", HTTP)
    options.setdefault("lifespan", "off")
    config = Config(app, ws=import_from_string(WS_CLASSES[ws]), log_config=None, **options)
    config.load()
    server = Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    await server.on_tick(0)  # the default headers, as the main loop sets them
    try:
        yield Served(server, sock.getsockname()[1])
    finally:
        await server.shutdown(sockets=[sock])

