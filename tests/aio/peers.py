"""Raw peers for the asyncio tests: a hand-driven WebSocket client over a plain TCP socket.

rawws is tested against peers that misbehave on purpose (never answer a ping, never answer a
close, stop reading, send half a request), so these helpers speak the wire format directly:
HTTP heads as bytes, frames built with :func:`rawws.sansio.frames.serialize_frame`. Nothing
here is timed: every wait has a generous bound that only guards against hangs (on the virtual
clock of rawws.testing, a virtual day: deadlines of minutes must not trip it, and a deadlock
fails there at once anyway).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import Callable, Sequence

from rawws.sansio.codes import Opcode
from rawws.sansio.frames import serialize_frame
from rawws.sansio.handshake import accept_key
from rawws.sansio.mask import apply_mask
from rawws.sansio.reader import parse_close_payload
from rawws.testing import VirtualEventLoop

HOST = "127.0.0.1"
#: Upper bound of any single wait in a test (a hang guard, not a performance assertion).
BOUND = 20.0
#: The same guard on the virtual clock.
VIRTUAL_BOUND = 86400.0


def bound() -> float:
    """The hang guard for the running loop (real seconds, or a virtual day)."""
    return VIRTUAL_BOUND if isinstance(asyncio.get_running_loop(), VirtualEventLoop) else BOUND


async def until(predicate: Callable[[], object], *, timeout: float | None = None,
                step: float = 0.005) -> None:
    """Wait until ``predicate()`` is true; fail the test if it never becomes true."""
    async with asyncio.timeout(timeout or bound()):
        while not predicate():
            await asyncio.sleep(step)


def upgrade_request(
    path: str = "/",
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
    host: str | None = "127.0.0.1",
    key: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
    drop: Sequence[str] = (),
    replace: dict[str, str] | None = None,
) -> tuple[bytes, str]:
    """A valid upgrade request (bytes) and its key; ``drop`` / ``replace`` / ``extra`` spoil it."""
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    headers = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    replace = replace or {}
    lines = [f"{method} {path} {version}"]
    for name, value in headers:
        if name in drop or value is None:
            continue
        lines.append(f"{name}: {replace.get(name, value)}")
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and headers (names lower-cased; last value wins) of a response head."""
    status_line, *lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ")[1])
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


class RawClient:
    """A TCP client that speaks WebSocket by hand. Frames it sends are masked (it is a client)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, *, rcvbuf: int | None = None) -> RawClient:
        """Connect; ``rcvbuf`` shrinks the receive buffer (set before connecting, so the
        window stays small) to make a peer that does not read fill up quickly."""
        if rcvbuf is None:
            reader, writer = await asyncio.open_connection(HOST, port)
            return cls(reader, writer)
        if isinstance(asyncio.get_running_loop(), VirtualEventLoop):
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.transport.set_buffer_size(rcvbuf)  # type: ignore[attr-defined]
            return cls(reader, writer)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer)

    @classmethod
    async def connect(cls, port: int, path: str = "/", *, rcvbuf: int | None = None,
                      extra: Sequence[tuple[str, str]] = ()) -> RawClient:
        """Connect and complete the opening handshake (no extension offered)."""
        client = await cls.open(port, rcvbuf=rcvbuf)
        request, key = upgrade_request(path, extra=extra)
        client.write(request)
        status, headers, _ = await client.read_response(body=False)
        assert status == 101, status
        assert headers["sec-websocket-accept"] == accept_key(key)
        return client

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    @staticmethod
    def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
        """The bytes of one masked client frame."""
        return serialize_frame(opcode, payload, fin=fin, rsv=rsv, masking_key=os.urandom(4))

    def send_frame(self, opcode: int, payload: bytes = b"", *, fin: bool = True,
                   rsv: int = 0) -> None:
        self.write(self.frame(opcode, payload, fin=fin, rsv=rsv))

    def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        payload = b"" if code is None else code.to_bytes(2, "big") + reason.encode()
        self.send_frame(Opcode.CLOSE, payload)

    async def read_head(self) -> bytes:
        async with asyncio.timeout(bound()):
            return await self.reader.readuntil(b"\r\n\r\n")

    async def read_response(self, *, body: bool = True) -> tuple[int, dict[str, str], bytes]:
        """Read an HTTP response: status, headers and (by Content-Length) body."""
        status, headers = parse_head(await self.read_head())
        data = b""
        if body and "content-length" in headers:
            async with asyncio.timeout(bound()):
                data = await self.reader.readexactly(int(headers["content-length"]))
        return status, headers, data

    async def read_frame(self) -> tuple[bool, int, bytes]:
        """Read one (unmasked, server) frame: ``(fin, opcode, payload)``."""
        async with asyncio.timeout(bound()):
            head = await self.reader.readexactly(2)
            assert not head[1] & 0x80, "server frames must not be masked"
            length = head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await self.reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(length)
        return bool(head[0] & 0x80), head[0] & 0x0F, payload

    async def read_until_close(self) -> tuple[tuple[int, str], list[tuple[bool, int, bytes]]]:
        """Read frames until a close frame; return its (code, reason) and the frames before."""
        frames = []
        while True:
            frame = await self.read_frame()
            if frame[1] == Opcode.CLOSE:
                return parse_close_payload(frame[2]), frames
            frames.append(frame)

    async def read_eof(self) -> bytes:
        """Read until the server ends the TCP connection; return what arrived (a reset
        counts as the end too)."""
        chunks = []
        try:
            async with asyncio.timeout(bound()):
                while chunk := await self.reader.read(65536):
                    chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)

    def abort(self) -> None:
        self.writer.transport.abort()

    async def aclose(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


class RawServer:
    """A TCP server that answers the upgrade by hand, then hands each connection to ``behave``
    (a coroutine taking a :class:`RawServerSide`): for clients facing misbehaving servers."""

    def __init__(self, behave: Callable[[RawServerSide], object], *,
                 respond: bool = True, rcvbuf: int | None = None) -> None:
        self.behave = behave
        self.respond = respond
        self.rcvbuf = rcvbuf
        self.server: asyncio.Server | None = None
        self.sides: list[RawServerSide] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RawServer:
        if self.rcvbuf is None:
            self.server = await asyncio.start_server(self._serve, HOST, 0)
            return self
        # Accepted sockets inherit the listening socket's (small) receive buffer.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.bind((HOST, 0))
        self.server = await asyncio.start_server(self._serve, sock=sock)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()
        for side in self.sides:
            side.writer.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks))

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        side = RawServerSide(reader, writer)
        self.sides.append(side)
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            side.request_head = await reader.readuntil(b"\r\n\r\n")
            if self.respond:
                key = ""
                for line in side.request_head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "sec-websocket-key":
                        key = value.strip()
                writer.write(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                    + accept_key(key).encode() + b"\r\n\r\n"
                )
            result = self.behave(side)
            if asyncio.iscoroutine(result):
                await result
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            # Torn down by __aexit__: end quietly (a cancelled client_connected_cb task is
            # logged as an error by asyncio.start_server).
            pass
        finally:
            self.tasks.discard(task)


class RawServerSide:
    """One connection of a :class:`RawServer`. Frames it sends are unmasked (it is a server)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.request_head = b""

    def send_frame(self, opcode: int, payload: bytes = b"", *, fin: bool = True) -> None:
        self.writer.write(serialize_frame(opcode, payload, fin=fin))

    async def read_frame(self) -> tuple[bool, int, bytes]:
        """Read one (masked, client) frame: ``(fin, opcode, unmasked payload)``."""
        head = await self.reader.readexactly(2)
        assert head[1] & 0x80, "client frames must be masked"
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        key = await self.reader.readexactly(4)
        data = await self.reader.readexactly(length)
        payload = apply_mask(data, key)
        return bool(head[0] & 0x80), head[0] & 0x0F, payload
