"""websockets' ``websockets.asyncio.client``: ``connect`` and ``ClientConnection``.

A re-export of :mod:`rawws.aio.client` (nothing is implemented here): ``from
rawws.asyncio.client import connect`` is ``rawws.connect``.
"""

from __future__ import annotations

from ..aio.client import ClientConnection, connect, unix_connect

__all__ = ["ClientConnection", "connect", "unix_connect"]
