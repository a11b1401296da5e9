"""Echo server for Autobahn through uvicorn: a bare ASGI app, rawws.asgi.WebSocketProtocol.

    .venv/bin/python conformance/peers/asgi_echo.py --port 9001

uvicorn parses the upgrade request (httptools) and hands the connection to rawws' class, as
``uvicorn app:app --ws rawws.asgi:WebSocketProtocol`` does; permessage-deflate is on (uvicorn's
default). No size limit that Autobahn could reach (its largest message is 16 MiB), and keepalive
pings are off: an Autobahn case records every frame the testee sends, so a ping inside a long
case (9.x) would count against the testee for reasons unrelated to the case.
"""

import argparse
from typing import Any

import uvicorn


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] != "websocket.receive":
            return
        try:
            if event.get("text") is not None:
                await send({"type": "websocket.send", "text": event["text"]})
            else:
                await send({"type": "websocket.send", "bytes": event["bytes"]})
        except OSError:  # the peer closed (or the connection failed) meanwhile
            return


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(echo, host=args.host, port=args.port, ws="rawws.asgi:WebSocketProtocol",
                http="httptools", lifespan="off", ws_max_size=1 << 30, ws_ping_interval=None,
                log_level="warning")
