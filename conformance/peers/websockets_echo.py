"""Echo server on websockets (peer for comparison figures): permessage-deflate on, no size limit.

    .venv/bin/python conformance/peers/websockets_echo.py --port 9001

Keepalive pings are off: an Autobahn case records every frame the testee sends, so a ping that
falls inside a long case (9.x) would count against the testee for reasons unrelated to the case.
"""

import argparse
import asyncio

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws) -> None:
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main(host: str, port: int) -> None:
    async with serve(
        echo, host, port, max_size=None, compression="deflate", ping_interval=None
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
