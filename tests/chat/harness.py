"""Deterministic driver for rawws.chat.router.Router: fake clocks, ids, per-session inboxes."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from typing import Any

from rawws.chat.limits import Limits
from rawws.chat.router import Answer, Close, Endpoint, Hold, Route, Router, Send, Session
from rawws.chat.store import MemoryStore

WALL = 1_700_000_000.0
STAMP = "2023-11-14T22:13:20.000Z"
#: The stream epoch of the first room a Harness creates (then epoch-0002, ...).
EPOCH = "epoch-0001"
#: The message_id of the first room message or inbox item a Harness's store keeps (mid-2...).
MID = "mid-1"


class Harness:
    def __init__(self, **router_options: Any) -> None:
        self.now = 1000.0
        self.wall = WALL
        counter = itertools.count(1)
        epochs = itertools.count(1)
        ids = itertools.count(1)
        if "store" not in router_options:
            router_options["store"] = MemoryStore(router_options.get("limits") or Limits(),
                                                  epochs=lambda: f"epoch-{next(epochs):04d}",
                                                  ids=lambda: f"mid-{next(ids)}")
        self.router = Router(clock=lambda: self.now, wall=lambda: self.wall,
                             token_hex=lambda n: f"{next(counter):0{2 * n}x}", **router_options)
        self.received: dict[Session, list[Any]] = defaultdict(list)
        self.closed: dict[Session, tuple[int, str]] = {}
        self.sends: list[Send] = []

    def api(self, entry: str, *args: Any, key: str | None = None) -> Answer:
        """Call an HTTP-side entry point of the router (notify, broadcast, publish, post),
        carry out its actions, and return its answer."""
        answer = Answer()
        self.apply(getattr(self.router, entry)(*args, answer, key))
        return answer

    def apply(self, actions: list[Send | Close | Hold]) -> None:
        for action in actions:
            assert not isinstance(action, Hold), "the memory store's writes are done at once"
            if isinstance(action, Send):
                self.sends.append(action)
                value = json.loads(action.text)
                for target in action.targets:
                    self.received[target].append(value)
            else:
                assert action.session not in self.closed, "closed twice"
                self.closed[action.session] = (action.code, action.reason)

    def open(self, user: str | None = None, *, path: str = "/ws",
             token: str | None = None) -> Session:
        if path == "/ws":
            route = Route(Endpoint.GENERAL)
        elif path == "/ws/notifications":
            route = Route(Endpoint.NOTIFICATIONS)
        else:
            assert path.startswith("/ws/chat/")
            route = Route(Endpoint.CHAT, path[len("/ws/chat/"):])
        session, actions = self.router.open(object(), route, token=token, user_id=user)
        self.apply(actions)
        return session

    def send(self, session: Session, message: Any) -> None:
        text = message if isinstance(message, str | bytes) else json.dumps(message)
        self.apply(self.router.receive(session, text))

    def disconnect(self, session: Session) -> None:
        self.apply(self.router.close(session))

    def take(self, session: Session) -> list[Any]:
        items = self.received.pop(session, [])
        return items

    def take_one(self, session: Session) -> Any:
        items = self.take(session)
        assert len(items) == 1, items
        return items[0]

    def welcomed(self, user: str | None = None, **kwargs: Any) -> Session:
        """Open a session and discard its welcome (and, on a chat path, its joined reply)."""
        session = self.open(user, **kwargs)
        items = self.take(session)
        assert items and items[0]["type"] == "welcome", items
        return session
