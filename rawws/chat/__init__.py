"""rawws.chat: rooms, topics, presence, history, offline inboxes and auth on top of rawws.

The protocol is documented in ``docs/chat-protocol.md``. Layers inside this package:

* pure parts, no I/O: :mod:`.wire` (JSON, names, codes), :mod:`.topics`, :mod:`.auth`,
  :mod:`.limits`, :mod:`.store`, :mod:`.metrics`, and :mod:`.router` (the protocol logic);
* on the public ``rawws`` API: the hub (WebSocket side), the HTTP API, the server, the client
  and the command line.
"""

from __future__ import annotations

from .auth import Authenticator, Grants, Identity, JWTVerifier, StaticTokens, encode_jwt
from .client import ChatClient, ChatError
from .hub import ChatHub
from .limits import Limits, TokenBucket
from .metrics import Metrics
from .router import Endpoint, Route, Router, Session, route_for
from .server import ChatConfig, ChatServer
from .store import MemoryStore, Store
from .topics import TopicIndex

__all__ = [
    "Authenticator",
    "ChatClient",
    "ChatConfig",
    "ChatError",
    "ChatHub",
    "ChatServer",
    "Endpoint",
    "Grants",
    "Identity",
    "JWTVerifier",
    "Limits",
    "MemoryStore",
    "Metrics",
    "Route",
    "Router",
    "Session",
    "StaticTokens",
    "Store",
    "TokenBucket",
    "TopicIndex",
    "encode_jwt",
    "route_for",
]
