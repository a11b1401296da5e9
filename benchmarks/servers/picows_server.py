"""picows (Cython) on plain asyncio, written as its docs show: a ``WSListener`` callback class.

picows has no permessage-deflate, so it sits out the compressed scenario. The fan-out loop is the
one a user writes: ``send`` on every subscriber's transport.
"""

from __future__ import annotations

from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

from . import _common

SUBSCRIBERS: set[WSTransport] = set()


class Echo(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type != WSMsgType.PING and frame.msg_type != WSMsgType.PONG:
            transport.send(frame.msg_type, frame.get_payload_as_memoryview(), frame.fin)


class Sub(Echo):
    def on_ws_connected(self, transport: WSTransport) -> None:
        SUBSCRIBERS.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        SUBSCRIBERS.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            super().on_ws_frame(transport, frame)


class Pub(Echo):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT or frame.msg_type == WSMsgType.BINARY:
            payload = frame.get_payload_as_bytes()
            for subscriber in SUBSCRIBERS:
                subscriber.send(frame.msg_type, payload)
        else:
            super().on_ws_frame(transport, frame)


def route(request: WSUpgradeRequest) -> WSListener:
    if request.path == b"/sub":
        return Sub()
    if request.path == b"/pub":
        return Pub()
    return Echo()


async def start(args: object) -> int:
    server = await ws_create_server(
        route,
        args.host,  # type: ignore[attr-defined]
        args.port,  # type: ignore[attr-defined]
        max_frame_size=args.max_size + 14,  # type: ignore[attr-defined]
    )
    return _common.port_of(server)


if __name__ == "__main__":
    _common.run(start)
