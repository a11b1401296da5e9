"""rawws, written the way its docs (docs/design.md) show: the callback ``rawws.Listener`` API,
its fastest (no task, no queue per connection), for echo and fan-out alike.

Defaults kept (``compression="deflate"`` for clients that offer it, keepalive pings), except
``max_size``, the same for every server. Fan-out uses ``rawws.broadcast``: the frame is
serialized once and the same bytes are written to every subscriber.
"""

from __future__ import annotations

from typing import Any

import rawws

from . import _common

SUBSCRIBERS: set[Any] = set()
PUBLISHERS: set[Any] = set()


class Bench(rawws.Listener):
    def on_connect(self, ws: Any) -> None:
        # Route once, at connect time (the request's path does not change).
        path = ws.request.path
        if path == "/sub":
            SUBSCRIBERS.add(ws)
        elif path == "/pub":
            PUBLISHERS.add(ws)

    def on_message(self, ws: Any, message: str | bytes) -> None:
        if ws in PUBLISHERS:
            rawws.broadcast(SUBSCRIBERS, message)
        else:
            ws.send_nowait(message)

    def on_close(self, ws: Any, code: int, reason: str) -> None:
        SUBSCRIBERS.discard(ws)
        PUBLISHERS.discard(ws)


async def start(args: Any) -> int:
    server = await rawws.serve(Bench, args.host, args.port, max_size=args.max_size)
    return _common.port_of(server)


if __name__ == "__main__":
    _common.run(start)
