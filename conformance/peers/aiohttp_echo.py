"""Echo server on aiohttp (peer for comparison figures): permessage-deflate on, no size limit.

    .venv/bin/python conformance/peers/aiohttp_echo.py --port 9001

Any path is accepted; heartbeat pings are off (see websockets_echo.py for why).
"""

import argparse

from aiohttp import WSMsgType, web


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0, compress=True, heartbeat=None)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/{tail:.*}", echo)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
