"""Real ``rawws serve --broker`` processes for the cluster tests, and clients that talk to them
by port. Every wait is bounded by a hang guard (never a performance assertion)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import rawws
from tests.chat.e2e import recv, recv_type, request, send
from tests.processes import ServerProcess, serve

WAIT = 20.0

__all__ = ["WAIT", "Node", "cluster", "eventually", "recv", "recv_type", "request", "send"]


class Node:
    """One ``rawws serve --broker URL`` process."""

    def __init__(self, process: ServerProcess, port: int) -> None:
        self.process = process
        self.port = port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def connect(self, path: str = "/ws", **options: Any) -> rawws.ClientConnection:
        options.setdefault("compression", None)
        options.setdefault("ping_interval", None)
        options.setdefault("open_timeout", WAIT)
        return await rawws.connect(self.url + path, **options)

    async def user(self, name: str, path: str = "/ws") -> tuple[rawws.ClientConnection, Any]:
        """Connect as ``name``; return the connection and its welcome."""
        sep = "&" if "?" in path else "?"
        ws = await self.connect(f"{path}{sep}user_id={name}")
        welcome = await recv(ws)
        assert welcome["type"] == "welcome" and welcome["user_id"] == name, welcome
        return ws, welcome

    async def http(self, method: str, target: str, body: Any = None,
                   headers: Sequence[tuple[str, str]] = ()) -> tuple[int, dict[str, str], Any]:
        """One HTTP/1.1 request: (status, headers, decoded JSON body or raw bytes)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        data = None if body is None else json.dumps(body).encode()
        lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                 "Connection: close", *(f"{k}: {v}" for k, v in headers)]
        if data is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (data or b""))
        try:
            async with asyncio.timeout(WAIT):
                raw = await reader.read()
        finally:
            writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        found = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            found[name.strip().lower()] = value.strip()
        decoded: Any = payload
        if found.get("content-type", "").startswith("application/json"):
            decoded = json.loads(payload)
        return int(status_line.split()[1]), found, decoded


async def start_node(broker: str, *args: str) -> Node:
    process, port = await serve("--broker", broker, *args)
    return Node(process, port)


@contextlib.asynccontextmanager
async def cluster(broker: str, count: int = 2, *args: str) -> AsyncIterator[list[Node]]:
    """``count`` nodes on one broker, stopped (SIGTERM, then kill) afterwards."""
    nodes: list[Node] = []
    try:
        for _ in range(count):
            nodes.append(await start_node(broker, *args))
        yield nodes
    finally:
        for node in nodes:
            node.process.signal()
        for node in nodes:
            try:
                await node.process.wait()
            except TimeoutError:
                node.process.kill()


async def eventually(predicate: Callable[[], Any], timeout: float = WAIT,
                     what: str = "the condition") -> None:
    """Poll ``predicate`` (sync or async) until it holds, or fail after the hang guard."""
    async with asyncio.timeout(timeout):
        while True:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return
            await asyncio.sleep(0.02)  # polling a condition, bounded by the deadline


async def joined(ws: rawws.ClientConnection, room: str, **fields: Any) -> Any:
    reply = await request(ws, {"type": "join", "room": room, "id": f"join-{room}", **fields})
    assert reply["type"] == "joined", reply
    return reply
