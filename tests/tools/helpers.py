"""Shared by the tools' tests: a tracing proxy in the test's event loop, raw peers that write
exact bytes, and the check that a trace describes the bytes on the wire exactly."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from rawws.sansio.frames import serialize_frame
from rawws.sansio.handshake import accept_key
from rawws.tools.trace_proxy import EventWriter, TraceProxy
from rawws.wirelog import Event, FrameEvent, HandshakeEvent, ViolationEvent

HOST = "127.0.0.1"
#: A hang guard for any single wait (never a performance assertion).
BOUND = 20.0


@contextlib.asynccontextmanager
async def tracing(port: int, *, show_secrets: bool = True,
                  **options: Any) -> AsyncIterator[tuple[TraceProxy, EventWriter]]:
    """A proxy on a free port of 127.0.0.1 to ``HOST:port``; its writer keeps every event."""
    writer = EventWriter(show_secrets=show_secrets)
    writer.keep = True
    proxy = TraceProxy(HOST, port, writer, **options)
    proxy.record_bytes = True
    await proxy.start(HOST, 0)
    try:
        yield proxy, writer
    finally:
        await proxy.close()


def frames(events: Sequence[Event], direction: str | None = None) -> list[FrameEvent]:
    return [e for e in events if isinstance(e, FrameEvent)
            and (direction is None or e.dir == direction)]


def violations(events: Sequence[Event]) -> list[tuple[str, int, str, int | None]]:
    """``(dir, code, rfc, frame index)`` of every violation."""
    return [(e.dir, e.code, e.rfc, e.frame) for e in events if isinstance(e, ViolationEvent)]


def rebuild(event: FrameEvent) -> bytes:
    """The bytes of the frame ``event`` describes (minimal length encoding)."""
    assert event.payload is not None and not event.truncated
    rsv = (0x40 if event.rsv1 else 0) | (0x20 if event.rsv2 else 0) | (0x10 if event.rsv3 else 0)
    return serialize_frame(event.opcode_value, event.payload, fin=event.fin, rsv=rsv,
                           masking_key=event.mask)


def check_describes_the_wire(proxy: TraceProxy, events: Sequence[Event], conn: int = 1) -> None:
    """Forwarded == received both ways, and the trace is a faithful description of it: the
    handshake heads, then every frame, serialized again from its event's fields (opcode, FIN,
    RSV, mask key, payload), give back exactly the bytes that crossed the proxy."""
    for direction in ("c2s", "s2c"):
        received = bytes(proxy.received[conn][direction])
        assert bytes(proxy.forwarded[conn][direction]) == received
        mine = [e for e in events if getattr(e, "conn", None) == conn
                and getattr(e, "dir", None) == direction]
        heads = [e for e in mine if isinstance(e, HandshakeEvent)]
        assert len(heads) == 1
        head = heads[0]
        text = head.line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.headers) + "\r\n"
        assert received.startswith(text.encode("latin-1"))
        body = received[len(text):]
        assert b"".join(rebuild(e) for e in frames(mine)) == body


def payload_b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class RawPeerServer:
    """A server that answers the upgrade with a 101 (``extensions`` in it if given), then runs
    ``behave(reader, writer)``: for frames a real server would never send."""

    def __init__(self, behave: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any], *,
                 extensions: str | None = None, response: bytes | None = None) -> None:
        self.behave = behave
        self.extensions = extensions
        self.response = response
        self.server: asyncio.Server | None = None
        self.received = bytearray()

    async def __aenter__(self) -> RawPeerServer:
        self.server = await asyncio.start_server(self._serve, HOST, 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(line.split(":", 1)[1].strip() for line in head.decode().split("\r\n")
                       if line.lower().startswith("sec-websocket-key:"))
            response = self.response or (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept_key(key).encode()
                + (b"\r\nSec-WebSocket-Extensions: " + self.extensions.encode()
                   if self.extensions else b"") + b"\r\n\r\n")
            writer.write(response)
            result = self.behave(reader, writer)
            if asyncio.iscoroutine(result):
                await result
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def upgrade(path: str = "/", *, key: str = "dGhlIHNhbXBsZSBub25jZQ==",
            extensions: str | None = None) -> bytes:
    """An upgrade request (the key of RFC 6455 §1.3 by default)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def raw_exchange(port: int, client_bytes: Sequence[bytes], *,
                       extensions: str | None = None) -> bytes:
    """Connect to ``port`` (the proxy), send the upgrade then each chunk of ``client_bytes``
    (one write each), half-close, and read everything until the server closes."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(upgrade(extensions=extensions))
    async with asyncio.timeout(BOUND):
        await reader.readuntil(b"\r\n\r\n")
        for chunk in client_bytes:
            writer.write(chunk)
            await writer.drain()
        writer.write_eof()
        data = await reader.read()
    writer.close()
    return data
