"""rawws: WebSockets (RFC 6455, RFC 7692) in pure Python on asyncio. No dependencies.

The public API::

    import rawws

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with rawws.serve(echo, "127.0.0.1", 8765):
        async with rawws.connect("ws://127.0.0.1:8765/") as ws:
            await ws.send("Hello")
            assert await ws.recv() == "Hello"
"""

from .aio import (
    ClientConnection,
    Connection,
    Listener,
    Message,
    Server,
    ServerConnection,
    broadcast,
    connect,
    serve,
)
from .errors import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeader,
    InvalidOrigin,
    InvalidState,
    InvalidStatus,
    InvalidURI,
    InvalidUTF8,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    RawwsError,
    UsageError,
)
from .sansio.codes import CloseCode, Opcode
from .sansio.deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from .sansio.http11 import Headers, Request, Response
from .sansio.protocol import State

__version__ = "0.1.0"

__all__ = [
    "ClientConnection",
    "ClientPerMessageDeflateFactory",
    "CloseCode",
    "ConcurrencyError",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Headers",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidOrigin",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUTF8",
    "Listener",
    "Message",
    "NegotiationError",
    "Opcode",
    "PayloadTooBig",
    "PerMessageDeflate",
    "ProtocolError",
    "RawwsError",
    "Request",
    "Response",
    "Server",
    "ServerConnection",
    "ServerPerMessageDeflateFactory",
    "State",
    "UsageError",
    "broadcast",
    "connect",
    "serve",
]
