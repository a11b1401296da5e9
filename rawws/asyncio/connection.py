"""websockets' ``websockets.asyncio.connection``: the connection class both sides share.

A re-export of :mod:`rawws.aio.connection`.
"""

from __future__ import annotations

from ..aio.connection import Connection

__all__ = ["Connection"]
