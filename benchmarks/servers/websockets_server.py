"""websockets (new asyncio API, C speedups as installed), written as its docs show.

Defaults kept (permessage-deflate offered to clients that ask, keepalive pings), except
``max_size``, the same for every server.
"""

from __future__ import annotations

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from . import _common

SUBSCRIBERS: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request else "/"
    try:
        if path == "/sub":
            SUBSCRIBERS.add(ws)
            await ws.wait_closed()
        elif path == "/pub":
            async for message in ws:
                broadcast(SUBSCRIBERS, message)
        else:
            async for message in ws:
                await ws.send(message)
    except ConnectionClosed:  # the load generator drops connections at the end of a round
        pass
    finally:
        SUBSCRIBERS.discard(ws)


async def start(args: object) -> int:
    server = await serve(handler, args.host, args.port, max_size=args.max_size)  # type: ignore[attr-defined]
    return _common.port_of(server)


if __name__ == "__main__":
    _common.run(start)
