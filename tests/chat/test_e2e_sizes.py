"""Every WebSocket-side size limit counts bytes of UTF-8, not characters (issue 11, item 8): a
4-byte character counts 4, in message content, publish messages, request ids and the slow
consumer's queue. End to end over real sockets; the connection stays open after each refusal.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import rawws
from rawws.chat.server import ChatServer

from .e2e import Limits, recv, request, running, user

EMOJI = "\U0001F600"  # one character, 4 bytes of UTF-8
LIMIT = Limits().max_content_size  # 16 KiB
FITS = LIMIT // 4  # characters of EMOJI that make exactly LIMIT bytes


async def too_large(ws: rawws.ClientConnection, message: dict[str, Any]) -> str:
    reply = await request(ws, {**message, "id": "big"})
    assert (reply["type"], reply["code"], reply["id"]) == ("error", "too_large", "big"), reply
    assert (await request(ws, {"type": "ping", "id": 1})) == {"type": "pong", "id": 1}
    text: str = reply["message"]
    return text


async def test_content_counts_the_bytes_of_4_byte_characters() -> None:
    async with running() as server:
        alice = await user(server, "alice", "/ws/chat/lobby")
        await recv(alice)
        # A string content of exactly the limit in bytes is accepted; one character more is not.
        sent = await request(alice, {"type": "message", "content": EMOJI * FITS, "id": 1})
        assert sent["type"] == "message" and sent["content"] == EMOJI * FITS
        message = await too_large(alice, {"type": "message", "content": EMOJI * (FITS + 1)})
        assert message == f"content is {LIMIT + 4} bytes; the limit is {LIMIT}"
        # Any other JSON value is measured as the UTF-8 of its JSON text: 4,096 characters
        # that are 16 KiB of bytes (a character count would have let this through).
        rich = {"text": EMOJI * FITS}
        message = await too_large(alice, {"type": "message", "content": rich})
        size = len(json.dumps(rich, ensure_ascii=False, separators=(",", ":")).encode())
        assert message == f"content is {size} bytes; the limit is {LIMIT}"
        assert (await too_large(alice, {"type": "private", "target": "bob",
                                        "content": [EMOJI * FITS]})).startswith("content is")
        await alice.close()


async def test_publish_message_counts_bytes() -> None:
    async with running() as server:
        alice = await user(server, "alice")
        message = await too_large(alice, {"type": "publish", "topic": "news",
                                          "message": {"t": EMOJI * FITS}})
        assert message.startswith("message is ") and message.endswith(f"the limit is {LIMIT}")
        ok = await request(alice, {"type": "publish", "topic": "news",
                                   "message": {"t": EMOJI * (FITS - 10)}})
        assert ok["type"] == "published"
        await alice.close()


async def test_a_request_id_is_at_most_128_bytes() -> None:
    async with running() as server:
        alice = await user(server, "alice")
        assert (await request(alice, {"type": "ping", "id": EMOJI * 32}))["id"] == EMOJI * 32
        reply = await request(alice, {"type": "ping", "id": EMOJI * 33})  # 33 chars, 132 bytes
        assert (reply["type"], reply["code"]) == ("error", "bad_request")
        assert reply["message"] == "id must be a string (at most 128 bytes of UTF-8) or an integer"
        assert (await request(alice, {"type": "ping", "id": 2})) == {"type": "pong", "id": 2}
        await alice.close()


async def test_a_slow_readers_queue_is_counted_in_bytes() -> None:
    """Notifications of 4-byte characters queue for a reader that stopped reading: what the
    queue holds, counted in bytes of UTF-8, never exceeds max_queue_bytes (counted in
    characters it reached four times that)."""
    limits = Limits(rate=1e6, burst=1e6, max_queue=10_000, max_queue_bytes=256 * 1024)
    async with running(limits=limits) as server:
        stalled = await stalled_subscriber(server)
        publisher = await user(server, "publisher")
        peer = next(p for p in server.hub.peers if p.session and p.session.user == "stalled")
        worst = published = 0
        while published < 5000:  # the kernel's socket buffers take some MB first
            if server.metrics.closes[1013]:
                break
            published += 1
            reply = await request(publisher, {"type": "publish", "topic": "feed",
                                              "message": EMOJI * 1000})
            assert reply["type"] == "published"
            held = sum(len(text.encode()) for text, *_ in peer.queue)
            assert peer.queued_bytes == held
            worst = max(worst, held)
        else:
            raise AssertionError("the stalled reader was never shed")
        assert published > 20  # it took many notifications of 4 KB to get there
        assert limits.max_queue_bytes - 4100 < worst <= limits.max_queue_bytes
        await publisher.close()
        stalled.transport.abort()  # type: ignore[union-attr]


async def stalled_subscriber(server: ChatServer) -> rawws.ClientConnection:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    ws = await rawws.connect(server.url + "/ws?user_id=stalled", sock=sock, compression=None,
                             max_queue=1, ping_interval=None)
    await recv(ws)
    assert (await request(ws, {"type": "subscribe", "topics": ["feed"]}))["type"] == "subscribed"
    return ws
