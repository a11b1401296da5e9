"""A uvicorn server in its own process for the memory attacks (tests/asgi/test_attacks.py).

    python -m tests.asgi.attack_server --ws rawws --app never-reads

Prints ``READY <port> <pid>`` once listening. Apps: ``never-reads`` accepts and then never calls
``receive()``; ``never-accepts`` takes ``websocket.connect`` and never answers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import threading
import time
from typing import Any

import uvicorn

from .harness import WS_CLASSES


async def never_reads(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await asyncio.Event().wait()


async def never_accepts(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await asyncio.Event().wait()


APPS = {"never-reads": never_reads, "never-accepts": never_accepts}


def _exit_with_parent() -> None:
    """Never outlive the test that started us (its applications never return)."""
    parent = os.getppid()
    deadline = time.monotonic() + 600
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.2)
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ws", choices=sorted(WS_CLASSES), required=True)
    parser.add_argument("--app", choices=sorted(APPS), required=True)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(APPS[args.app], ws=WS_CLASSES[args.ws], http="httptools",
                            loop="asyncio", lifespan="off", log_level="warning",
                            ws_max_size=1 << 20, ws_per_message_deflate=False,
                            ws_ping_interval=None)
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    sys.stdout.write(f"READY {sock.getsockname()[1]} {os.getpid()}\n")
    sys.stdout.flush()
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
