"""Helpers for end-to-end tests: a ChatServer on 127.0.0.1 (ephemeral port), raw WebSocket
clients that speak JSON, and a minimal HTTP/1.1 client. Every wait has a generous timeout (a
hang guard, never a performance assertion).

On the virtual clock of rawws.testing (tests marked ``virtual_clock``), the same helpers work on
the in-memory network: ``running()`` gives the server the loop's clock (``clock=loop.time`` and a
wall clock that advances with it, :func:`wall`), and the hang guard is a virtual day."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import rawws
from rawws.chat.limits import Limits
from rawws.chat.server import ChatConfig, ChatServer
from rawws.testing import VirtualEventLoop, idle

WAIT = 20.0

#: Real time when each virtual-clock loop started (its wall clock starts from there).
_wall_base: weakref.WeakKeyDictionary[VirtualEventLoop, float] = weakref.WeakKeyDictionary()


def _virtual_loop() -> VirtualEventLoop | None:
    loop = asyncio.get_running_loop()
    return loop if isinstance(loop, VirtualEventLoop) else None


def _wait(timeout: float) -> float:
    """The hang guard: ``timeout`` on a real loop, a virtual day on the virtual clock."""
    return 86400.0 if _virtual_loop() is not None else timeout


def wall() -> float:
    """The server's wall clock: ``time.time()``, or on the virtual clock the real time when
    the loop started plus the loop's (virtual) time."""
    loop = _virtual_loop()
    if loop is None:
        return time.time()
    return _wall_base.setdefault(loop, time.time() - loop.time()) + loop.time()


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[ChatServer]:
    options.setdefault("port", 0)
    options.setdefault("ping_interval", None)
    loop = _virtual_loop()
    clocks = {} if loop is None else {"clock": loop.time, "wall": wall}
    async with ChatServer(ChatConfig(**options), **clocks) as server:
        yield server


async def connect(server: ChatServer, path: str = "/ws", *,
                  headers: Sequence[tuple[str, str]] = (), **options: Any
                  ) -> rawws.ClientConnection:
    options.setdefault("compression", None)
    options.setdefault("ping_interval", None)
    return await rawws.connect(server.url + path, extra_headers=list(headers), **options)


async def recv(ws: rawws.Connection, timeout: float = WAIT) -> Any:
    async with asyncio.timeout(_wait(timeout)):
        message = await ws.recv()
    assert isinstance(message, str), message
    return json.loads(message)


async def recv_type(ws: rawws.Connection, kind: str, timeout: float = WAIT) -> Any:
    """Skip events until one of type ``kind``."""
    async with asyncio.timeout(_wait(timeout)):
        while True:
            event = await recv(ws)
            if event.get("type") == kind:
                return event


async def send(ws: rawws.Connection, message: Any) -> None:
    await ws.send(message if isinstance(message, str | bytes) else json.dumps(message))


async def request(ws: rawws.Connection, message: dict[str, Any]) -> Any:
    await send(ws, message)
    return await recv(ws)


async def user(server: ChatServer, name: str, path: str = "/ws", **options: Any
               ) -> rawws.ClientConnection:
    """Connect as ``name`` (auth off) and consume the welcome."""
    sep = "&" if "?" in path else "?"
    ws = await connect(server, f"{path}{sep}user_id={name}", **options)
    welcome = await recv(ws)
    assert welcome["type"] == "welcome" and welcome["user_id"] == name, welcome
    return ws


async def closed(ws: rawws.Connection, timeout: float = WAIT) -> tuple[int, str]:
    """Read until the connection closes; return the (code, reason) the server sent."""
    async with asyncio.timeout(_wait(timeout)):
        with contextlib.suppress(rawws.ConnectionClosed):
            while True:
                await ws.recv()
        await ws.wait_closed()
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or ""


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait until ``predicate()`` holds (state updated by another callback), or fail.

    On the virtual clock, everything that can happen without time passing happens first
    (``idle()``): a predicate that holds then is met without moving the clock."""
    virtual = _virtual_loop() is not None
    async with asyncio.timeout(_wait(timeout)):
        while True:
            if virtual:
                await idle()
            if predicate():
                return
            await asyncio.sleep(0.005)


async def http(server: ChatServer, method: str, target: str, body: bytes | str | None = None,
               headers: Sequence[tuple[str, str]] = ()) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on a fresh connection; returns (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    data = body.encode() if isinstance(body, str) else body
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{server.port}",
             *(f"{k}: {v}" for k, v in headers)]
    if data is not None:
        lines.append(f"Content-Length: {len(data)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (data or b""))
    try:
        async with asyncio.timeout(_wait(WAIT)):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), found, payload


async def http_json(server: ChatServer, method: str, target: str, body: Any = None,
                    headers: Sequence[tuple[str, str]] = ()) -> tuple[int, Any]:
    raw = None if body is None else (body if isinstance(body, str | bytes)
                                     else json.dumps(body))
    status, found, payload = await http(server, method, target, raw, headers)
    assert found.get("content-type") == "application/json", found
    assert found.get("x-content-type-options") == "nosniff"
    return status, json.loads(payload)


__all__ = ["WAIT", "ChatConfig", "Limits", "closed", "connect", "eventually", "http",
           "http_json", "recv", "recv_type", "request", "running", "send", "user", "wall"]
