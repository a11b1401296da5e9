"""rawws's chat-and-notify server (``rawws.chat.ChatServer``, what ``python -m rawws serve``
runs), for the fan-out scenario through its topic hub.

Subscribers connect to ``/ws`` and send ``{"type": "subscribe", "topics": ["bench"]}``; the
publisher sends ``{"type": "publish", "topic": "bench", "message": ...}`` and every subscriber gets
a ``notification`` (see docs/chat-protocol.md). Defaults kept, except the limits a benchmark from
one address would trip: connections per IP and in total, and the per-connection message rate.
"""

from __future__ import annotations

from typing import Any

from rawws.chat.limits import Limits
from rawws.chat.server import ChatConfig, ChatServer

from . import _common


async def start(args: Any) -> int:
    limits = Limits(max_connections=50_000, max_connections_per_ip=50_000, rate=1e9, burst=1e9)
    server = ChatServer(ChatConfig(host=args.host, port=args.port, limits=limits))
    await server.start()
    return server.port


if __name__ == "__main__":
    _common.run(start)
