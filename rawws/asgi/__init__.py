"""rawws for ASGI servers: a WebSocket protocol class for uvicorn, on rawws' sans-I/O core.

Run any ASGI application (FastAPI, Starlette, a bare ASGI callable) with rawws handling its
WebSocket connections::

    uvicorn app:app --ws rawws.asgi:WebSocketProtocol

or ``uvicorn.run(app, ws=WebSocketProtocol)`` / ``uvicorn.Config(app, ws=WebSocketProtocol)``.
uvicorn keeps the HTTP side; every WebSocket rule (framing, strict UTF-8, limits, the close
handshake, permessage-deflate) is rawws' own :class:`~rawws.sansio.protocol.ServerProtocol`.
Nothing here imports uvicorn: it is duck-typed against the contract uvicorn's own
``protocols/websockets`` classes follow. docs/asgi.md says what differs from them and why.
"""

from .protocol import HOLD_TIMEOUT, ClientDisconnected, WebSocketProtocol

__all__ = ["HOLD_TIMEOUT", "ClientDisconnected", "WebSocketProtocol"]
