"""permessage-deflate on the chat server: on by default, without context takeover, so that a
room message is compressed once for every compressed recipient and the same bytes go to each.

Checked three ways: on the wire (two raw clients that offer what browsers offer read
byte-identical compressed frames), in the server (equal ``broadcast_key`` and one
``prepare_message`` per group of recipients), and through the ``--no-compression`` switch.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import zlib
from typing import Any

import pytest

from rawws.chat.server import ChatConfig, deflate_extensions
from rawws.sansio.protocol import Protocol

from .e2e import WAIT, connect, eventually, http_json, recv_type, request, running, user

#: What Chromium offers (tests/browser checks that Chromium and the server agree).
BROWSER_OFFER = "permessage-deflate; client_max_window_bits"
#: Over the default compress_threshold (128 bytes), so it is compressed.
LONG = "the quick brown fox jumps over the lazy dog; " * 20


class RawClient:
    """A WebSocket client written by hand: the handshake, masked text frames out, and server
    frames in exactly as they came off the wire (header and payload bytes)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 extensions: str) -> None:
        self.reader = reader
        self.writer = writer
        self.extensions = extensions

    @classmethod
    async def open(cls, port: int, target: str, offer: str | None) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        if offer:
            lines.append(f"Sec-WebSocket-Extensions: {offer}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(WAIT):
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        assert head.startswith("HTTP/1.1 101"), head
        extensions = ""
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions":
                extensions = value.strip()
        return cls(reader, writer, extensions)

    def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    async def frame(self) -> tuple[bytes, bool, bytes]:
        """The next frame: (its bytes as received, RSV1, its payload)."""
        async with asyncio.timeout(WAIT):
            head = await self.reader.readexactly(2)
            length = head[1] & 0x7F
            extra = b""
            if length == 126:
                extra = await self.reader.readexactly(2)
                length = int.from_bytes(extra, "big")
            elif length == 127:
                extra = await self.reader.readexactly(8)
                length = int.from_bytes(extra, "big")
            payload = await self.reader.readexactly(length)
        assert head[0] & 0x80 and head[0] & 0x0F == 1, head  # FIN, text
        return head + extra + payload, bool(head[0] & 0x40), payload

    async def event(self) -> tuple[bytes, bool, dict[str, Any]]:
        """The next frame, decoded (each compressed message is inflated from scratch: the
        server does not take over its context)."""
        raw, compressed, payload = await self.frame()
        if compressed:
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        return raw, compressed, json.loads(payload)

    async def event_of(self, kind: str) -> tuple[bytes, bool, dict[str, Any]]:
        while True:
            raw, compressed, event = await self.event()
            if event["type"] == kind:
                return raw, compressed, event

    def close(self) -> None:
        self.writer.close()


def test_the_default_configuration_negotiates_deflate_without_context_takeover() -> None:
    assert ChatConfig().compression == "deflate"
    (factory,) = deflate_extensions("deflate")
    assert factory.server_no_context_takeover and factory.client_no_context_takeover
    assert deflate_extensions(None) == []
    with pytest.raises(ValueError, match="compression"):
        deflate_extensions("brotli")


async def test_browser_offer_is_accepted_without_context_takeover() -> None:
    async with running() as server:
        raw = await RawClient.open(server.port, "/ws?user_id=b", BROWSER_OFFER)
        params = [p.strip() for p in raw.extensions.split(";")]
        assert params[0] == "permessage-deflate"
        assert "server_no_context_takeover" in params
        assert "client_no_context_takeover" in params
        raw.close()
        # rawws's own client (its default offer) gets the same.
        ws = await connect(server, "/ws?user_id=c", compression="deflate")
        assert "server_no_context_takeover" in str(ws.extensions[0])
        await ws.close()


async def test_two_compressed_clients_read_byte_identical_frames_for_a_room_message() -> None:
    async with running() as server:
        a = await RawClient.open(server.port, "/ws/chat/z?user_id=ann", BROWSER_OFFER)
        b = await RawClient.open(server.port, "/ws/chat/z?user_id=ben", BROWSER_OFFER)
        for client in (a, b):
            await client.event_of("joined")
        plain = await user(server, "pat", "/ws/chat/z")  # no compression offered
        await recv_type(plain, "joined")
        await a.event_of("user_joined")
        # ann alone gets a long private message first: a compressor that took over its context
        # would now encode for ann differently than for ben.
        await plain.send(json.dumps({"type": "private", "target": "ann", "content": LONG[::-1]}))
        _, compressed, private = await a.event_of("private")
        assert compressed and private["content"] == LONG[::-1]
        await plain.send(json.dumps({"type": "message", "content": LONG}))
        raw_a, compressed_a, event_a = await a.event_of("message")
        raw_b, compressed_b, event_b = await b.event_of("message")
        assert compressed_a and compressed_b
        assert raw_a == raw_b  # the very same frame: compressed once, written twice
        assert event_a == event_b and event_a["content"] == LONG
        assert len(raw_a) < len(LONG)
        mine = await recv_type(plain, "message")  # the uncompressed peer got the same event
        assert mine == event_a
        for client in (a, b):
            client.close()
        await plain.close()


async def test_fan_out_prepares_each_message_once_per_group(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    prepare = Protocol.prepare_message

    def counting(self: Protocol, message: str | bytes, *, compress: bool | None = None
                 ) -> bytes:
        calls.append(id(self))
        return prepare(self, message, compress=compress)

    monkeypatch.setattr(Protocol, "prepare_message", counting)
    async with running() as server:
        compressed = [await user(server, f"z{i}", "/ws/chat/big", compression="deflate")
                      for i in range(6)]
        plain = [await user(server, f"p{i}", "/ws/chat/big") for i in range(4)]
        for ws in compressed + plain:
            await recv_type(ws, "joined")
        await eventually(lambda: len(server.hub.peers) == 10)
        keys = {peer.ws.protocol.broadcast_key for peer in server.hub.peers
                if peer.ws.extensions}
        assert len(keys) == 1 and None not in keys  # every compressed peer in one group
        calls.clear()
        status, body = await http_json(server, "POST", "/api/rooms/big/messages",
                                       {"content": LONG, "user_id": "bot"})
        assert (status, body["recipients"]) == (200, 10)
        events = [await recv_type(ws, "message") for ws in compressed + plain]
        assert all(e == events[0] for e in events)
        # One serialization for the six compressed peers, one for the four plain ones.
        assert len(calls) == 2
        for ws in compressed + plain:
            await ws.close()


async def test_no_compression_turns_it_off() -> None:
    async with running(compression=None) as server:
        raw = await RawClient.open(server.port, "/ws?user_id=b", BROWSER_OFFER)
        assert raw.extensions == ""
        raw.close()
        ws = await user(server, "c", compression="deflate")
        assert ws.extensions == []
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"
        await ws.close()
