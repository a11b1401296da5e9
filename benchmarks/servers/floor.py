"""The pure-Python floor: a minimal ``asyncio.Protocol`` WebSocket server, doing only what the
benchmarks need and nothing else (no UTF-8 check, no size limit, no close-code check, no
fragmentation, no keepalive, no flow control). Whatever rawws costs above this is the price of
being a real WebSocket stack; the gap is what the issue calls "how close to the floor".

It reads with ``asyncio.BufferedProtocol`` into one buffer shared by every connection (reads are
synchronous, so one buffer per process is enough). On Python 3.11 a plain ``data_received``
protocol gets each read from ``sock.recv(256 KiB)``, whose allocation goes through mmap / mremap /
munmap and a page fault: about 12 us per read on this VM, more than the rest of the echo. Run with
``--data-received`` to measure that variant (the driver's "floor-dr").

What it does: the opening handshake (optionally accepting permessage-deflate, zlib objects
created on first use), a tight parse loop over the received bytes, unmasking with the faster of
two pure-Python strategies, echo on ``/`` with one ``writelines`` per ``data_received``, pong,
close echo, and fan-out on ``/sub`` + ``/pub``: the frames of one read are built once and written
to every subscriber in one ``write`` (one send() per subscriber per read, not per message).
"""

from __future__ import annotations

import asyncio
import zlib

from . import _common, _wire

_XOR = tuple(bytes(x ^ k for x in range(256)) for k in range(256))
_TAIL = b"\x00\x00\xff\xff"


def unmask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if n < 4096:  # one big-integer XOR (see benchmarks/micro.py, section "mask")
        q, r = divmod(n, 4)
        k = int.from_bytes(key * q + key[:r], "little")
        return (int.from_bytes(data, "little") ^ k).to_bytes(n, "little")
    out = bytearray(data)  # four strided bytes.translate lanes
    out[0::4] = data[0::4].translate(_XOR[key[0]])
    out[1::4] = data[1::4].translate(_XOR[key[1]])
    out[2::4] = data[2::4].translate(_XOR[key[2]])
    out[3::4] = data[3::4].translate(_XOR[key[3]])
    return bytes(out)


SUBSCRIBERS: set[asyncio.Transport] = set()


class Floor(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buf = b""
        self.open = False
        self.path = b"/"
        self.deflate = False
        self.inflater: zlib._Decompress | None = None
        self.deflater: zlib._Compress | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        SUBSCRIBERS.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.path, headers = _wire.parse_request(buf[:end])
            ext = None
            if b"permessage-deflate" in headers.get(b"sec-websocket-extensions", b""):
                self.deflate = True
                ext = b"permessage-deflate"
            self.transport.write(_wire.response(headers[b"sec-websocket-key"], ext))
            self.open = True
            if self.path == b"/sub":
                SUBSCRIBERS.add(self.transport)
            buf = buf[end + 4 :]
        out: list[bytes] = []  # echo replies, or on /pub the frames to fan out
        pos = 0
        size = len(buf)
        # The lean parse loop: every complete frame in buf, no per-frame objects.
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
            end = start + n
            if end > size:
                break
            payload = unmask(buf[start:end], buf[start - 4 : start])
            pos = end
            opcode = b0 & 0x0F
            if opcode <= 2:
                if b0 & 0x40:  # RSV1: compressed (permessage-deflate)
                    if self.inflater is None:
                        self.inflater = zlib.decompressobj(-15)
                    payload = self.inflater.decompress(payload + _TAIL)
                self.on_message(b0 & 0x0F, payload, out)
            elif opcode == 8:
                out.append(_wire.header(0x88, n) + payload)
                self.transport.writelines(out)
                self.transport.close()
                return
            elif opcode == 9:
                out.append(_wire.header(0x8A, n) + payload)
        self.buf = buf[pos:]
        if out:
            if self.path == b"/pub":
                # Fan-out: the frames of this read, built once, one write per subscriber.
                batch = b"".join(out)
                for transport in SUBSCRIBERS:
                    transport.write(batch)
            else:
                self.transport.writelines(out)

    def on_message(self, opcode: int, payload: bytes, out: list[bytes]) -> None:
        b0 = 0x80 | opcode
        if self.deflate:
            if self.deflater is None:
                self.deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = self.deflater.compress(payload) + self.deflater.flush(zlib.Z_SYNC_FLUSH)
            payload = payload[:-4]
            b0 |= 0x40
        out.append(_wire.header(b0, len(payload)))
        out.append(payload)


_BUFFER = bytearray(256 * 1024)
_VIEW = memoryview(_BUFFER)


class BufferedFloor(Floor, asyncio.BufferedProtocol):
    def get_buffer(self, sizehint: int) -> memoryview:
        return _VIEW

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(_VIEW[:nbytes]))


async def start(args: object) -> int:
    loop = asyncio.get_running_loop()
    factory = Floor if args.data_received else BufferedFloor  # type: ignore[attr-defined]
    server = await loop.create_server(factory, args.host, args.port)  # type: ignore[attr-defined]
    return _common.port_of(server)


if __name__ == "__main__":
    _common.run(start, data_received=False)
