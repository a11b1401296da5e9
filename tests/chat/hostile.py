"""Hostile clients for attack tests: raw WebSocket frames written as fast as the socket takes
them (pipelined, no waiting for replies), and readers that never read.

Frames are masked with the all-zero key (legal: RFC 6455 §5.3 only asks for a mask, and the
server unmasks all the same), so building a million of them costs a header each. Every wait has
a generous timeout (a hang guard, never a performance assertion).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Iterable
from typing import Any

from ..processes import raw_upgrade

WAIT = 120.0


async def scrape_metrics(port: int) -> dict[str, float]:
    """``GET /metrics``: every sample, by name with its labels (``rawws_dropped_total{...}``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    async with asyncio.timeout(WAIT):
        raw = await reader.read()
    writer.close()
    values: dict[str, float] = {}
    for line in raw.partition(b"\r\n\r\n")[2].decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def text_frame(message: str | dict[str, Any]) -> bytes:
    """One masked text frame (zero key) carrying ``message`` (a dict is sent as JSON)."""
    text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
    data = text.encode()
    n = len(data)
    if n < 126:
        header = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return header + b"\0\0\0\0" + data


class RawClient:
    """A WebSocket connection driven frame by frame: ``send_all`` pipelines, ``read_frames``
    counts (and keeps the last of) what the server sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._buffer = b""
        self.frames = 0
        self.last: list[bytes] = []  # the payloads of the last frames read (at most 8)
        self.keep: list[bytes] | None = None  # every payload read, once keep_all() is called

    def keep_all(self) -> list[bytes]:
        """From now on, keep every payload read (in the returned list)."""
        self.keep = []
        return self.keep

    @classmethod
    async def open(cls, port: int, path: str, *, receive_buffer: int | None = None,
                   local_host: str | None = None) -> RawClient:
        reader, writer, head = await raw_upgrade(port, path, local_host=local_host)
        assert head.startswith(b"HTTP/1.1 101"), head
        if receive_buffer is not None:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        return cls(reader, writer)

    @classmethod
    async def welcomed(cls, port: int, user: str, *, local_host: str | None = None
                       ) -> RawClient:
        """Open ``/ws?user_id=USER`` (auth off) and read the welcome."""
        client = await cls.open(port, f"/ws?user_id={user}", local_host=local_host)
        await client.read_frames(1)
        return client

    async def send_all(self, messages: Iterable[str | dict[str, Any]], batch: int = 512) -> None:
        chunk: list[bytes] = []
        for message in messages:
            chunk.append(text_frame(message))
            if len(chunk) >= batch:
                self.writer.write(b"".join(chunk))
                chunk = []
                await self.writer.drain()
        if chunk:
            self.writer.write(b"".join(chunk))
        await self.writer.drain()

    async def read_frames(self, count: int, timeout: float = WAIT) -> None:
        """Read until ``count`` frames in all have arrived (raise if the connection ends)."""
        async with asyncio.timeout(timeout):
            while self.frames < count:
                chunk = await self.reader.read(1 << 20)
                if not chunk:
                    raise ConnectionError(f"closed after {self.frames} frames; "
                                          f"last: {self.last[-1:]!r}")
                self._buffer += chunk
                self._split()

    def _split(self) -> None:
        buffer = self._buffer
        offset = 0
        while len(buffer) - offset >= 2:
            n = buffer[offset + 1] & 0x7F
            start = offset + 2
            if n == 126:
                if len(buffer) - offset < 4:
                    break
                n = int.from_bytes(buffer[offset + 2:offset + 4], "big")
                start = offset + 4
            elif n == 127:
                if len(buffer) - offset < 10:
                    break
                n = int.from_bytes(buffer[offset + 2:offset + 10], "big")
                start = offset + 10
            if len(buffer) < start + n:
                break
            payload = buffer[start:start + n]
            self.last = [*self.last[-7:], payload]
            if self.keep is not None:
                self.keep.append(payload)
            self.frames += 1
            offset = start + n
        self._buffer = buffer[offset:]

    async def request(self, messages: list[str | dict[str, Any]], replies: int | None = None,
                      *, window: int = 2000) -> None:
        """Pipeline ``messages`` and wait for ``replies`` more frames (default: one each).

        With one reply each, at most ``window`` requests are in flight: a flood that outran
        its own reading would be shed by the server as a slow consumer (1013), which is not
        the attack being measured."""
        if replies is None and len(messages) > window:
            for start in range(0, len(messages), window):
                await self.request(messages[start:start + window], window=window)
            return
        expected = self.frames + (len(messages) if replies is None else replies)
        reading = asyncio.ensure_future(self.read_frames(expected))
        try:
            await self.send_all(messages)
            await reading
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await reading

    def close(self) -> None:
        self.writer.transport.abort()
