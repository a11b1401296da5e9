"""State shared by every connection: presence, rooms and their history, topic sequence numbers,
offline inboxes. :class:`Store` is the interface; :class:`MemoryStore` the default implementation.

Owns: *what* is remembered and how much of it. Connections appear here only as opaque ids (strings)
and users as names, never as objects, so that another implementation (a Redis-backed one, say)
could hold the same state outside the process; the router maps ids back to live connections.

Does not own: delivery (the router and the hub) or policy (who may join what: the router).

Memory rules of :class:`MemoryStore` (every structure is bounded):

1. A room keeps its last ``history_size`` messages; all rooms together keep at most
   ``history_max_bytes`` (encoded size): above it, the oldest messages of the least recently
   active rooms go first.
2. At most ``max_rooms`` rooms exist. A room with no members and no history is deleted at once;
   when a new room is needed at the cap, the room idle (memberless) the longest is evicted; if
   every room has members, :class:`RoomLimitReached` is raised.
3. An inbox keeps a user's last ``inbox_size`` items for ``inbox_ttl`` seconds; all inboxes
   together keep at most ``inbox_max_bytes``, trimmed from the least recently used inbox.
4. At most ``max_topic_seqs`` topic counters are remembered (least recently used forgotten: that
   topic's ``seq`` restarts at 1).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Collection, Sequence
from typing import Any, Protocol

from .limits import Limits

__all__ = ["MemoryStore", "RoomLimitReached", "Store"]

Event = dict[str, Any]


class RoomLimitReached(Exception):
    """No room can be created: ``max_rooms`` rooms exist and all of them have members."""


class Store(Protocol):
    """What the router needs to remember. Every method is synchronous and fast."""

    # presence: user -> connection ids
    def add_connection(self, user: str, conn_id: str) -> bool:
        """Record a connection; True if the user just came online."""
        ...

    def remove_connection(self, user: str, conn_id: str) -> bool:
        """Forget a connection; True if the user just went offline."""
        ...

    def user_connections(self, user: str) -> Collection[str]: ...

    def online_users(self) -> list[str]: ...

    # rooms
    def join(self, room: str, user: str, conn_id: str) -> bool:
        """Add a member connection (creating the room); True if the user is new in the room.

        Raise :class:`RoomLimitReached` if the room does not exist and none can be created.
        """
        ...

    def leave(self, room: str, user: str, conn_id: str) -> bool:
        """Remove a member connection; True if it was the user's last one in the room."""
        ...

    def has_room(self, room: str) -> bool: ...

    def room_names(self) -> list[str]: ...

    def room_counts(self) -> Sequence[tuple[str, int]]:
        """``(room, number of distinct users)`` for every room alive, sorted by name."""
        ...

    def room_connections(self, room: str) -> Collection[str]: ...

    def room_users(self, room: str) -> list[str]:
        """Distinct users present, in the order they arrived."""
        ...

    def room_seq(self, room: str) -> int:
        """The ``seq`` of the room's last message (0 if none)."""
        ...

    def next_seq(self, room: str) -> int:
        """Allocate the next message ``seq`` (creating the room; may raise RoomLimitReached)."""
        ...

    def append(self, room: str, event: Event, size: int) -> None:
        """Store a message event (carrying the seq from :meth:`next_seq`) of encoded ``size``."""
        ...

    def history(self, room: str, *, since: int | None, limit: int) -> list[Event]:
        """The last ``limit`` messages, or every kept message with ``seq > since``, oldest first."""
        ...

    # topics
    def next_topic_seq(self, topic: str) -> int: ...

    # offline inbox
    def inbox_push(self, user: str, item: Event, size: int, now: float) -> None: ...

    def inbox_take(self, user: str, now: float) -> list[Event]:
        """Remove and return the user's unexpired items, oldest first."""
        ...

    def inbox_count(self) -> int: ...


class _Room:
    __slots__ = ("bytes", "history", "members", "name", "seq", "users")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[str, str] = {}  # conn_id -> user
        self.users: dict[str, int] = {}  # user -> number of its connections here (arrival order)
        self.history: deque[tuple[Event, int]] = deque()  # (event, encoded size)
        self.bytes = 0
        self.seq = 0


class MemoryStore:
    """The in-process :class:`Store`. See the module docstring for its memory bounds."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._presence: dict[str, set[str]] = {}
        self._rooms: OrderedDict[str, _Room] = OrderedDict()  # least recently active first
        self._idle: OrderedDict[str, None] = OrderedDict()  # memberless rooms, idle longest first
        self._history_bytes = 0
        self._counts: list[tuple[str, int]] | None = None  # room_counts(), until rooms change
        self._topic_seqs: OrderedDict[str, int] = OrderedDict()
        self._inboxes: OrderedDict[str, deque[tuple[float, Event, int]]] = OrderedDict()
        self._inbox_bytes = 0
        self._inbox_items = 0
        # Counters read by the metrics page.
        self.history_evicted = 0
        self.rooms_evicted = 0
        self.inbox_dropped = 0  # pushed out by the per-user cap or the global byte budget
        self.inbox_expired = 0

    # --- presence ------------------------------------------------------------------------------

    def add_connection(self, user: str, conn_id: str) -> bool:
        conns = self._presence.get(user)
        if conns is None:
            self._presence[user] = {conn_id}
            return True
        conns.add(conn_id)
        return False

    def remove_connection(self, user: str, conn_id: str) -> bool:
        conns = self._presence.get(user)
        if conns is None:
            return False
        conns.discard(conn_id)
        if conns:
            return False
        del self._presence[user]
        return True

    def user_connections(self, user: str) -> Collection[str]:
        return self._presence.get(user, ())

    def online_users(self) -> list[str]:
        return list(self._presence)

    # --- rooms ---------------------------------------------------------------------------------

    def _room(self, name: str) -> _Room:
        room = self._rooms.get(name)
        if room is not None:
            return room
        if len(self._rooms) >= self.limits.max_rooms:
            if not self._idle:
                raise RoomLimitReached(f"too many rooms (max {self.limits.max_rooms})")
            victim, _ = self._idle.popitem(last=False)
            self._delete(self._rooms[victim])
            self.rooms_evicted += 1
        room = self._rooms[name] = _Room(name)
        self._idle[name] = None
        self._counts = None
        return room

    def _delete(self, room: _Room) -> None:
        self._counts = None
        self._history_bytes -= room.bytes
        del self._rooms[room.name]
        self._idle.pop(room.name, None)

    def _touch(self, room: _Room) -> None:
        self._rooms.move_to_end(room.name)
        if room.name in self._idle:
            self._idle.move_to_end(room.name)

    def join(self, room: str, user: str, conn_id: str) -> bool:
        r = self._room(room)
        if conn_id in r.members:
            return False
        if not r.members:
            self._idle.pop(room, None)
        r.members[conn_id] = user
        count = r.users.get(user, 0)
        r.users[user] = count + 1
        self._touch(r)
        if count == 0:
            self._counts = None
        return count == 0

    def leave(self, room: str, user: str, conn_id: str) -> bool:
        r = self._rooms.get(room)
        if r is None or r.members.pop(conn_id, None) is None:
            return False
        count = r.users[user] - 1
        if count:
            r.users[user] = count
        else:
            del r.users[user]
            self._counts = None
        if not r.members:
            if r.history:
                self._idle[room] = None
            else:
                self._delete(r)
        return count == 0

    def has_room(self, room: str) -> bool:
        return room in self._rooms

    def room_names(self) -> list[str]:
        return sorted(self._rooms)

    def room_counts(self) -> Sequence[tuple[str, int]]:
        # Kept until a room is created or deleted or a user count changes: a `rooms` request
        # repeated by many clients costs a slice, not a sort of every room.
        counts = self._counts
        if counts is None:
            counts = self._counts = sorted((name, len(r.users)) for name, r in self._rooms.items())
        return counts

    def room_connections(self, room: str) -> Collection[str]:
        r = self._rooms.get(room)
        return r.members.keys() if r is not None else ()

    def room_users(self, room: str) -> list[str]:
        r = self._rooms.get(room)
        return list(r.users) if r is not None else []

    def room_seq(self, room: str) -> int:
        r = self._rooms.get(room)
        return r.seq if r is not None else 0

    def next_seq(self, room: str) -> int:
        r = self._room(room)
        r.seq += 1
        return r.seq

    def append(self, room: str, event: Event, size: int) -> None:
        r = self._room(room)
        r.history.append((event, size))
        r.bytes += size
        self._history_bytes += size
        while len(r.history) > self.limits.history_size:
            self._drop_oldest(r)
        self._touch(r)
        if self._history_bytes > self.limits.history_max_bytes:
            self._shrink_history(keep=r)

    def _drop_oldest(self, room: _Room) -> None:
        _, size = room.history.popleft()
        room.bytes -= size
        self._history_bytes -= size
        self.history_evicted += 1

    def _shrink_history(self, keep: _Room) -> None:
        # Least recently active rooms first; the room just written to last, and its newest
        # message is never dropped.
        for room in list(self._rooms.values()):
            while room.history and self._history_bytes > self.limits.history_max_bytes:
                if room is keep and len(room.history) == 1:
                    return
                self._drop_oldest(room)
            if not room.history and not room.members:
                self._delete(room)
            if self._history_bytes <= self.limits.history_max_bytes:
                return

    def history(self, room: str, *, since: int | None, limit: int) -> list[Event]:
        r = self._rooms.get(room)
        if r is None:
            return []
        if since is None:
            if limit <= 0:
                return []
            kept = r.history
            start = max(0, len(kept) - limit)
            return [kept[i][0] for i in range(start, len(kept))]
        # seq values in a room's history are consecutive, so the start index is arithmetic.
        if not r.history:
            return []
        first = r.history[0][0]["seq"]
        start = max(0, since - first + 1)
        return [r.history[i][0] for i in range(start, len(r.history))]

    # --- topics --------------------------------------------------------------------------------

    def next_topic_seq(self, topic: str) -> int:
        seq = self._topic_seqs.pop(topic, 0) + 1
        self._topic_seqs[topic] = seq  # re-inserted last: most recently used
        if len(self._topic_seqs) > self.limits.max_topic_seqs:
            self._topic_seqs.popitem(last=False)
        return seq

    # --- offline inbox -------------------------------------------------------------------------

    def inbox_push(self, user: str, item: Event, size: int, now: float) -> None:
        box = self._inboxes.get(user)
        if box is None:
            box = self._inboxes[user] = deque()
        else:
            self._inboxes.move_to_end(user)
            self._expire(box, now)
        box.append((now + self.limits.inbox_ttl, item, size))
        self._inbox_bytes += size
        self._inbox_items += 1
        while len(box) > self.limits.inbox_size:
            self._inbox_pop(box)
            self.inbox_dropped += 1
        while self._inbox_bytes > self.limits.inbox_max_bytes:
            oldest_user = next(iter(self._inboxes))
            oldest = self._inboxes[oldest_user]
            if oldest is box and len(box) == 1:
                break  # never drop the item just queued
            self._inbox_pop(oldest)
            self.inbox_dropped += 1
            if not oldest:
                del self._inboxes[oldest_user]

    def _inbox_pop(self, box: deque[tuple[float, Event, int]]) -> None:
        _, _, size = box.popleft()
        self._inbox_bytes -= size
        self._inbox_items -= 1

    def _expire(self, box: deque[tuple[float, Event, int]], now: float) -> None:
        while box and box[0][0] <= now:
            self._inbox_pop(box)
            self.inbox_expired += 1

    def inbox_take(self, user: str, now: float) -> list[Event]:
        box = self._inboxes.pop(user, None)
        if box is None:
            return []
        self._expire(box, now)
        items = [item for _, item, _ in box]
        self._inbox_bytes -= sum(size for _, _, size in box)
        self._inbox_items -= len(box)
        return items

    def inbox_count(self) -> int:
        return self._inbox_items
