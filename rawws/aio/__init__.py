"""The asyncio layer: the only part of rawws that touches the event loop and sockets."""

from .auth import basic_auth
from .broadcast import broadcast, write_batch
from .client import ClientConnection, connect, unix_connect
from .connection import Connection, Listener, Message
from .server import Server, ServerConnection, serve, unix_serve

__all__ = [
    "ClientConnection",
    "Connection",
    "Listener",
    "Message",
    "Server",
    "ServerConnection",
    "basic_auth",
    "broadcast",
    "connect",
    "serve",
    "unix_connect",
    "unix_serve",
    "write_batch",
]
