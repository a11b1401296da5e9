"""What every interop test does, whoever the peer is.

The server side of each pairing speaks a tiny command language over text messages, so the same
client code drives a rawws, websockets or aiohttp server:

* any message that is not a command is echoed back, same type;
* ``cmd:fragments`` → the server sends ``"frag-" "men" "ted"`` as one fragmented text message,
  then ``b"\\x01" b"\\x02"`` as one fragmented binary message (servers that cannot fragment
  send them whole);
* ``cmd:big`` → 1 MiB of text, then 1 MiB of binary;
* ``cmd:ping`` → the server pings with payload ``b"server-ping"`` and, once the pong arrives,
  sends ``"pong received"``;
* ``cmd:ext`` → the names of the negotiated extensions, comma-separated;
* ``cmd:close CODE REASON`` → the server closes with that code and reason.

The server records how each connection ended as ``(code, reason)`` of the close it received.
"""

from __future__ import annotations

import rawws
from rawws import ConnectionClosed, ServerConnection

HOST = "127.0.0.1"
MIB = 2**20
BIG_TEXT = "0123456789abcdef" * (MIB // 16)
BIG_BINARY = bytes(range(256)) * (MIB // 256)
FRAGMENTED_TEXT = ["frag-", "men", "ted"]
FRAGMENTED_BINARY = [b"\x01", b"\x02"]
MESSAGES: list[str | bytes] = ["hello", b"\x00\x01\xfe\xff", "", b"", "héllo wörld ∑ 🌍"]

#: permessage-deflate is negotiated by rawws only once rawws.sansio.deflate exists (the same
#: test rawws.aio makes).
try:
    import rawws.sansio.deflate
except ImportError:
    HAS_DEFLATE = False
else:
    HAS_DEFLATE = True


def expected_extensions(rawws_compression: bool, peer_compression: bool) -> list[str]:
    return ["permessage-deflate"] if HAS_DEFLATE and rawws_compression and peer_compression \
        else []


def parse_close_command(message: str) -> tuple[int, str]:
    code, _, reason = message.removeprefix("cmd:close ").partition(" ")
    return int(code), reason


class RawwsCommandServer:
    """The command language on a rawws server (handler API)."""

    def __init__(self) -> None:
        self.closes: list[tuple[int, str]] = []

    async def __call__(self, ws: ServerConnection) -> None:
        try:
            async for message in ws:
                if message == "cmd:fragments":
                    await ws.send(FRAGMENTED_TEXT)
                    await ws.send(FRAGMENTED_BINARY)
                elif message == "cmd:big":
                    await ws.send(BIG_TEXT)
                    await ws.send(BIG_BINARY)
                elif message == "cmd:ping":
                    await (await ws.ping(b"server-ping"))
                    await ws.send("pong received")
                elif message == "cmd:ext":
                    await ws.send(",".join(ext.name for ext in ws.extensions))
                elif isinstance(message, str) and message.startswith("cmd:close "):
                    await ws.close(*parse_close_command(message))
                else:
                    await ws.send(message)
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        if ws.protocol.close_rcvd is not None:
            self.closes.append(ws.protocol.close_rcvd)


async def drive_rawws_client(uri: str, *, compression: bool, peer_compression: bool) -> None:
    """Run every scenario with a rawws client against a command server at ``uri``."""
    options = {"compression": "deflate" if compression else None, "max_size": 2 * MIB}
    async with rawws.connect(uri, **options) as ws:  # type: ignore[arg-type]
        assert [ext.name for ext in ws.extensions] == expected_extensions(compression,
                                                                         peer_compression)
        for message in MESSAGES:
            await ws.send(message)
            assert await ws.recv() == message
        # Fragmented, both ways.
        await ws.send(["frag", "mented ", "by rawws"])
        assert await ws.recv() == "fragmented by rawws"
        await ws.send([b"\x10", b"", b"\x20\x30"])
        assert await ws.recv() == b"\x10\x20\x30"
        await ws.send("cmd:fragments")
        assert await ws.recv() == "".join(FRAGMENTED_TEXT)
        assert await ws.recv() == b"".join(FRAGMENTED_BINARY)
        # 1 MiB, both ways.
        await ws.send(BIG_TEXT)
        assert await ws.recv() == BIG_TEXT
        await ws.send(BIG_BINARY)
        assert await ws.recv() == BIG_BINARY
        await ws.send("cmd:big")
        assert await ws.recv() == BIG_TEXT
        assert await ws.recv() == BIG_BINARY
        # Ping, both ways.
        assert await (await ws.ping(b"client-ping")) >= 0.0
        await ws.send("cmd:ping")
        assert await ws.recv() == "pong received"
        assert ws.state is rawws.State.OPEN
    assert ws.close_code == 1000
