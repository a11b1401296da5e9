"""A FastAPI echo endpoint under uvicorn, with the WebSocket class chosen by ``--ws``.

    python -m benchmarks.servers.asgi_server --port 0 --ws rawws
    (rawws: rawws.asgi:WebSocketProtocol; websockets-sansio, wsproto: uvicorn's own)

The endpoint is what a FastAPI user writes (``receive_bytes`` / ``send_bytes`` in a loop);
uvicorn runs as ``uvicorn app:app --ws ...`` runs it: its default loop (uvloop, installed with
``uvicorn[standard]``), httptools, permessage-deflate offered, keepalive pings; ``ws_max_size`` is
``--max-size``, the same for every server. The benchmark's load generator sends binary messages.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from ._common import DEFAULT_MAX_SIZE, raise_nofile_limit

WS = {
    "rawws": "rawws.asgi:WebSocketProtocol",
    "websockets-sansio": "websockets-sansio",
    "wsproto": "wsproto",
}

app = FastAPI()


@app.websocket("/")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_bytes(await websocket.receive_bytes())
    except WebSocketDisconnect:  # the load generator drops connections at the end of a round
        pass


def _watchdog(max_seconds: float) -> None:
    """Never outlive the driver (the same rule as benchmarks/servers/_common.py)."""
    parent = os.getppid()
    deadline = time.monotonic() + max_seconds
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.5)
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ws", choices=sorted(WS), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--loop", default="auto", help="uvicorn's --loop (auto: uvloop)")
    args = parser.parse_args()
    raise_nofile_limit()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)  # connections wait in the backlog until uvicorn's loop accepts them
    config = uvicorn.Config(app, ws=WS[args.ws], http="httptools", loop=args.loop,
                            lifespan="off", ws_max_size=args.max_size, log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    threading.Thread(target=_watchdog, args=(args.max_seconds,), daemon=True).start()
    sys.stdout.write(f"READY {sock.getsockname()[1]}\n")
    sys.stdout.flush()
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
