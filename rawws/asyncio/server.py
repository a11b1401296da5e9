"""websockets' ``websockets.asyncio.server``: ``serve``, ``Server``, ``ServerConnection``...

A re-export of :mod:`rawws.aio.server` and :mod:`rawws.aio.broadcast` (nothing is implemented
here): ``from rawws.asyncio.server import serve`` is ``rawws.serve``.
"""

from __future__ import annotations

from ..aio.auth import basic_auth
from ..aio.broadcast import broadcast
from ..aio.server import Server, ServerConnection, serve, unix_serve

__all__ = ["Server", "ServerConnection", "basic_auth", "broadcast", "serve", "unix_serve"]
