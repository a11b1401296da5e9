"""aiohttp (C reader and mask as installed), written as its docs show.

``WebSocketResponse`` defaults kept (``compress=True``: permessage-deflate for clients that ask),
except ``max_msg_size``, the same for every server. Fan-out is the loop a user writes: await
``send_str`` / ``send_bytes`` on every subscriber in turn.
"""

from __future__ import annotations

from aiohttp import WSMsgType, web

from . import _common

SUBSCRIBERS: set[web.WebSocketResponse] = set()


def make_app(max_size: int) -> web.Application:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=max_size)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    async def sub(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=max_size)
        await ws.prepare(request)
        SUBSCRIBERS.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            SUBSCRIBERS.discard(ws)
        return ws

    async def pub(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=max_size)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                for subscriber in list(SUBSCRIBERS):
                    await subscriber.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                for subscriber in list(SUBSCRIBERS):
                    await subscriber.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/sub", sub)
    app.router.add_get("/pub", pub)
    app.router.add_get("/{tail:.*}", echo)
    return app


async def start(args: object) -> int:
    runner = web.AppRunner(make_app(args.max_size), access_log=None)  # type: ignore[attr-defined]
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)  # type: ignore[attr-defined]
    await site.start()
    return _common.port_of(site._server)  # type: ignore[union-attr]


if __name__ == "__main__":
    _common.run(start)
