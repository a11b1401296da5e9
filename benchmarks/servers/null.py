"""The null server: the load generator's ceiling, not a contender. Run on uvloop.

It does the least a server can do and still look like a WebSocket server to our load generator:
it reads frame headers only (no unmasking, no copying), answers each data frame with a cached
frame of the same type and length (zeros), answers close and ping, and on ``/pub`` writes the
cached frames of one read to every subscriber in one write. With permessage-deflate it answers
every message with the same pre-compressed message (compressed without context, so any client
inflater can read it).
Whatever rate the load generator reaches against it is more than it can measure of any server.
"""

from __future__ import annotations

import asyncio
import zlib

from . import _common, _wire

SUBSCRIBERS: set[asyncio.Transport] = set()
_CACHE: dict[tuple[int, int], bytes] = {}


def _frame(b0: int, n: int) -> bytes:
    frame = _CACHE.get((b0, n))
    if frame is None:
        if b0 & 0x40:  # a compressed message that inflates to n bytes
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = (c.compress(b"x" * n) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        else:
            payload = bytes(n)
        frame = _CACHE[b0, n] = _wire.header(b0, len(payload)) + payload
    return frame


class Null(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buf = b""
        self.open = False
        self.path = b"/"
        self.need = 0  # payload bytes of the current frame still to skip

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        SUBSCRIBERS.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.need >= len(data):  # inside a large payload: skip without buffering
            self.need -= len(data)
            return
        if self.need:
            data = data[self.need :]
            self.need = 0
        buf = self.buf + data if self.buf else data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.path, headers = _wire.parse_request(buf[:end])
            ext = None
            if b"permessage-deflate" in headers.get(b"sec-websocket-extensions", b""):
                ext = b"permessage-deflate"
            self.transport.write(_wire.response(headers[b"sec-websocket-key"], ext))
            self.open = True
            if self.path == b"/sub":
                SUBSCRIBERS.add(self.transport)
            buf = buf[end + 4 :]
        out = []
        pos = 0
        size = len(buf)
        while size - pos >= 6:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            if n < 126:
                start = pos + 6
            elif n == 126:
                if size - pos < 8:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                start = pos + 8
            else:
                if size - pos < 14:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 14
            opcode = b0 & 0x0F
            if opcode == 8:
                self.transport.write(b"\x88\x02\x03\xe8")
                self.transport.close()
                return
            if opcode == 9:
                out.append(b"\x8a\x00")
            elif self.path == b"/pub":
                out.append(_frame(b0 & 0xCF, n))
            elif b0 & 0x40:
                out.append(_frame(b0 & 0xCF, 1024))
            else:
                out.append(_frame(b0 & 0xCF, n))
            end = start + n
            if end > size:  # the reply went out already; skip the rest as it arrives
                self.need = end - size
                pos = size
                break
            pos = end
        self.buf = buf[pos:]
        if out:
            if self.path == b"/pub":  # one write per subscriber per read
                batch = b"".join(out)
                for transport in SUBSCRIBERS:
                    transport.write(batch)
            else:
                self.transport.writelines(out)


async def start(args: object) -> int:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Null, args.host, args.port)  # type: ignore[attr-defined]
    return _common.port_of(server)


if __name__ == "__main__":
    _common.run(start)
