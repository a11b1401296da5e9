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
    basic_auth,
    broadcast,
    connect,
    serve,
    unix_connect,
    unix_serve,
    write_batch,
)
from .aio.client import HeadersLike
from .data import (
    Data,
    ExtensionName,
    ExtensionParameter,
    LoggerLike,
    Origin,
    StatusLike,
    Subprotocol,
)
from .errors import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    DuplicateParameter,
    HeaderLineTooLong,
    HeadTooLarge,
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderFormat,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidMethod,
    InvalidOrigin,
    InvalidParameterName,
    InvalidParameterValue,
    InvalidProtocol,
    InvalidProxy,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidState,
    InvalidStatus,
    InvalidUpgrade,
    InvalidURI,
    InvalidUTF8,
    MultipleValuesError,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    ProxyError,
    RawwsError,
    RequestLineTooLong,
    SecurityError,
    StatusLineTooLong,
    TooManyFragments,
    TooManyHeaders,
    UsageError,
    WebSocketException,
)
from .sansio.codes import CloseCode, Opcode
from .sansio.deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from .sansio.frames import Close, Frame
from .sansio.http11 import Headers, Request, Response
from .sansio.protocol import Side, State

__version__ = "0.1.0"

__all__ = [
    "ClientConnection",
    "ClientPerMessageDeflateFactory",
    "Close",
    "CloseCode",
    "ConcurrencyError",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Data",
    "DuplicateParameter",
    "ExtensionName",
    "ExtensionParameter",
    "Frame",
    "HeadTooLarge",
    "HeaderLineTooLong",
    "Headers",
    "HeadersLike",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidMessage",
    "InvalidMethod",
    "InvalidOrigin",
    "InvalidParameterName",
    "InvalidParameterValue",
    "InvalidProtocol",
    "InvalidProxy",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUTF8",
    "InvalidUpgrade",
    "Listener",
    "LoggerLike",
    "Message",
    "MultipleValuesError",
    "NegotiationError",
    "Opcode",
    "Origin",
    "PayloadTooBig",
    "PerMessageDeflate",
    "ProtocolError",
    "ProxyError",
    "RawwsError",
    "Request",
    "RequestLineTooLong",
    "Response",
    "SecurityError",
    "Server",
    "ServerConnection",
    "ServerPerMessageDeflateFactory",
    "Side",
    "State",
    "StatusLike",
    "StatusLineTooLong",
    "Subprotocol",
    "TooManyFragments",
    "TooManyHeaders",
    "UsageError",
    "WebSocketException",
    "basic_auth",
    "broadcast",
    "connect",
    "serve",
    "unix_connect",
    "unix_serve",
    "write_batch",
]
