"""The asyncio layer: the only part of rawws that touches the event loop and sockets."""

from .broadcast import broadcast
from .client import ClientConnection, connect
from .connection import Connection, Listener, Message
from .server import Server, ServerConnection, serve

__all__ = [
    "ClientConnection",
    "Connection",
    "Listener",
    "Message",
    "Server",
    "ServerConnection",
    "broadcast",
    "connect",
    "serve",
]
