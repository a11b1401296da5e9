"""State shared by every connection: presence, rooms and their history, topic sequence numbers,
offline inboxes. :class:`Store` is the interface; :class:`MemoryStore` the default implementation.

Owns: *what* is remembered and how much of it. Connections appear here only as opaque ids (strings)
and users as names, never as objects, so that another implementation (a Redis-backed one, say)
could hold the same state outside the process; the router maps ids back to live connections.
Messages are handed over already encoded (the UTF-8 JSON text the server sends), so a store
keeps bytes, never live objects, and counts what it holds in bytes.

Does not own: delivery (the router and the hub) or policy (who may join what: the router).

Stream epochs: a room's ``seq`` counter starts at 1 when the room is created, together with a
random *epoch* (16 hex digits) minted at that moment. While the room lives, its messages carry
that epoch; if the room is deleted (no members and no history left, evicted) or the process
restarts with this in-memory store, the history is gone and the room counts from 1 again under a
new epoch. So ``(epoch, seq)`` names a message for good, and a client that remembers the epoch
can tell "history lost" from "nothing new" (docs/chat-protocol.md, ``join``).

Memory rules of :class:`MemoryStore` (every structure is bounded; the two that hold message
bodies are counted in bytes of memory, not in string lengths):

1. A room keeps its last ``history_size`` messages, each as one ``bytes`` object. All rooms
   together keep at most ``history_max_bytes``, counted as each message's length plus
   :data:`HISTORY_ENTRY_OVERHEAD`, plus :data:`ROOM_OVERHEAD` for every room that has history
   (a room without members is kept only for its history, so its fixed cost is charged there).
   Above the budget, the oldest messages of the least recently active rooms go first.
2. At most ``max_rooms`` rooms exist. A room with no members and no history is deleted at once
   (an empty room never lingers); when a new room is needed at the cap, the room idle
   (memberless) the longest is evicted; if every room has members, :class:`RoomLimitReached` is
   raised. A room created by a connection's ``join`` is charged to its client address and its
   user until the room is deleted: one address may have created at most ``max_rooms_per_ip``
   rooms that still exist, one user ``max_rooms_per_user`` (:class:`RoomQuotaReached`), so no
   one client fills the server-wide table.
3. An inbox keeps a user's last ``inbox_size`` items for ``inbox_ttl`` seconds. All inboxes
   together keep at most ``inbox_max_bytes``, counted as each item's length plus
   :data:`INBOX_ITEM_OVERHEAD`, plus :data:`INBOX_OVERHEAD` per user with items; trimmed from
   the least recently used inbox.
4. At most ``max_topic_seqs`` topic counters are remembered (least recently used forgotten: that
   topic's ``seq`` restarts at 1).

The overheads are what CPython 3.11 on 64-bit Linux allocates around each entry (object
headers, allocator rounding, container slots), measured with tracemalloc by
``tests/chat/test_store.py``; ``tests/chat/test_e2e_budgets.py`` checks the resulting RSS of a
real server process against the budgets.
"""

from __future__ import annotations

import secrets
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Collection, Sequence
from typing import Final, NamedTuple, Protocol

from .limits import Limits

__all__ = [
    "HISTORY_ENTRY_OVERHEAD",
    "INBOX_ITEM_OVERHEAD",
    "INBOX_OVERHEAD",
    "ROOM_OVERHEAD",
    "HistoryPage",
    "MemoryStore",
    "RoomLimitReached",
    "RoomQuotaReached",
    "Store",
    "new_epoch",
]

#: Bytes charged per stored history message besides its length: the ``bytes`` object's header
#: (33), allocator rounding (up to 15) and its deque slot (8), with margin.
HISTORY_ENTRY_OVERHEAD: Final = 64
#: Bytes charged per room that has history: the room object, its name, member and user dicts
#: (kept at their size after members leave), the history deque, two ordered-dict entries.
ROOM_OVERHEAD: Final = 2048
#: Bytes charged per inbox item besides its length: ``(expiry, data)`` tuple (56), the float
#: (24), the ``bytes`` header (33), rounding and the list slot.
INBOX_ITEM_OVERHEAD: Final = 144
#: Bytes charged per user with a non-empty inbox: the list, the user name, the ordered-dict
#: entry.
INBOX_OVERHEAD: Final = 384


def new_epoch() -> str:
    """A fresh stream epoch: 16 random hex digits (64 bits)."""
    return secrets.token_hex(8)


class RoomLimitReached(Exception):
    """No room can be created: ``max_rooms`` rooms exist and all of them have members."""


class RoomQuotaReached(RoomLimitReached):
    """No room can be created for this client: its address or its user already created
    ``max_rooms_per_ip`` / ``max_rooms_per_user`` rooms that still exist."""


class HistoryPage(NamedTuple):
    """Part of a room's history: ``(seq, encoded message)`` pairs, oldest first.

    ``more``: kept messages exist beyond the page in the direction it was read (newer ones
    after a page read with ``since``, older ones before a page read without it).
    """

    entries: list[tuple[int, bytes]]
    more: bool


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
    def join(self, room: str, user: str, conn_id: str, *, address: str | None = None) -> bool:
        """Add a member connection (creating the room); True if the user is new in the room.

        A room created here is charged to ``address`` (the client's, as the per-address caps
        count it) and ``user`` until it is deleted; None: to nobody. Raise
        :class:`RoomLimitReached` if the room does not exist and none can be created, its
        subclass :class:`RoomQuotaReached` if this client may create no more.
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

    def room_epoch(self, room: str) -> str | None:
        """The room's stream epoch (None if there is no such room). See the module docstring."""
        ...

    def next_seq(self, room: str) -> int:
        """Allocate the next message ``seq`` (creating the room; may raise RoomLimitReached)."""
        ...

    def append(self, room: str, seq: int, data: bytes) -> None:
        """Store a message: ``data`` is its encoded event (UTF-8 JSON) carrying ``seq`` from
        :meth:`next_seq` and the room's epoch."""
        ...

    def history(self, room: str, *, since: int | None, limit: int,
                max_bytes: int | None = None, before: int | None = None) -> HistoryPage:
        """Kept messages, oldest first, at most ``limit`` of them and, when ``max_bytes`` is
        given, at most that many bytes of ``data`` in all (but always at least one message).

        ``since`` an int: the oldest with ``seq > since``. Otherwise the newest, or, with
        ``before``, the newest with ``seq < before``.
        """
        ...

    # topics
    def next_topic_seq(self, topic: str) -> int: ...

    # offline inbox
    def inbox_push(self, user: str, data: bytes, now: float) -> None:
        """Keep an encoded event (UTF-8 JSON) for ``user`` until it is taken or expires."""
        ...

    def inbox_take(self, user: str, now: float) -> list[bytes]:
        """Remove and return the user's unexpired items, oldest first."""
        ...

    def inbox_count(self) -> int: ...


class _Room:
    __slots__ = ("bytes", "creator", "epoch", "first_seq", "history", "members", "name", "seq",
                 "users")

    def __init__(self, name: str, epoch: str, creator: tuple[str, str] | None) -> None:
        self.name = name
        self.epoch = epoch
        self.creator = creator  # (address, user) charged for creating it, if any
        self.members: dict[str, str] = {}  # conn_id -> user
        self.users: dict[str, int] = {}  # user -> number of its connections here (arrival order)
        self.history: deque[bytes] = deque()  # encoded messages, oldest first
        self.first_seq = 1  # seq of history[0]: a room's seqs are consecutive
        self.bytes = 0  # what this room's history is charged, ROOM_OVERHEAD included
        self.seq = 0


def _charge(data: bytes) -> int:
    return len(data) + HISTORY_ENTRY_OVERHEAD


def _uncount(counter: Counter[str], key: str) -> None:
    left = counter[key] - 1
    if left > 0:
        counter[key] = left
    else:
        del counter[key]  # the counters hold only clients with rooms alive


class MemoryStore:
    """The in-process :class:`Store`. See the module docstring for its memory bounds.

    ``epochs``: makes each room's stream epoch (injected by tests; :func:`new_epoch` by
    default).
    """

    def __init__(self, limits: Limits | None = None, *,
                 epochs: Callable[[], str] = new_epoch) -> None:
        self.limits = limits or Limits()
        self._new_epoch = epochs
        self._presence: dict[str, set[str]] = {}
        self._rooms: dict[str, _Room] = {}
        self._idle: OrderedDict[str, None] = OrderedDict()  # memberless rooms, idle longest first
        # Rooms with history, least recently active first: the history budget shrinks them
        # in this order, one step at a time (never a scan of every room).
        self._active: OrderedDict[str, _Room] = OrderedDict()
        self._history_bytes = 0
        self._counts: list[tuple[str, int]] | None = None  # room_counts(), until rooms change
        # Rooms alive, by the address and the user that created them (rule 2).
        self._created_by_address: Counter[str] = Counter()
        self._created_by_user: Counter[str] = Counter()
        self._topic_seqs: OrderedDict[str, int] = OrderedDict()
        # user -> [(expiry, data)], least recently used first. A list, not a deque: an empty
        # deque costs 760 bytes and most inboxes hold a few items; removing from the front of
        # a list of at most inbox_size items is one memmove.
        self._inboxes: OrderedDict[str, list[tuple[float, bytes]]] = OrderedDict()
        self._inbox_bytes = 0
        self._inbox_items = 0
        # Counters read by the metrics page.
        self.history_evicted = 0
        self.rooms_evicted = 0
        self.inbox_dropped = 0  # pushed out by the per-user cap or the global byte budget
        self.inbox_expired = 0

    @property
    def history_bytes(self) -> int:
        """What all rooms' history is charged against ``history_max_bytes``."""
        return self._history_bytes

    @property
    def inbox_bytes(self) -> int:
        """What all inboxes are charged against ``inbox_max_bytes``."""
        return self._inbox_bytes

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

    def rooms_created(self, *, address: str | None = None, user: str | None = None) -> int:
        """Rooms alive that ``address`` (or ``user``) created (rule 2)."""
        if address is not None:
            return self._created_by_address[address]
        return self._created_by_user[user] if user is not None else 0

    def _room(self, name: str, creator: tuple[str, str] | None = None) -> _Room:
        room = self._rooms.get(name)
        if room is not None:
            return room
        limits = self.limits
        if creator is not None:
            address, user = creator
            if self._created_by_address[address] >= limits.max_rooms_per_ip:
                raise RoomQuotaReached("this address has created too many rooms that still "
                                       f"exist (max {limits.max_rooms_per_ip})")
            if self._created_by_user[user] >= limits.max_rooms_per_user:
                raise RoomQuotaReached("you have created too many rooms that still exist "
                                       f"(max {limits.max_rooms_per_user})")
        if len(self._rooms) >= self.limits.max_rooms:
            if not self._idle:
                raise RoomLimitReached(f"too many rooms (max {self.limits.max_rooms})")
            victim, _ = self._idle.popitem(last=False)
            self._delete(self._rooms[victim])
            self.rooms_evicted += 1
        room = self._rooms[name] = _Room(name, self._new_epoch(), creator)
        if creator is not None:
            self._created_by_address[creator[0]] += 1
            self._created_by_user[creator[1]] += 1
        self._idle[name] = None
        self._counts = None
        return room

    def _delete(self, room: _Room) -> None:
        """The one place a room goes (emptied, evicted): its stream and epoch end here."""
        self._counts = None
        self._history_bytes -= room.bytes
        del self._rooms[room.name]
        self._idle.pop(room.name, None)
        self._active.pop(room.name, None)
        if room.creator is not None:
            address, user = room.creator
            _uncount(self._created_by_address, address)
            _uncount(self._created_by_user, user)

    def _touch(self, room: _Room) -> None:
        if room.name in self._active:
            self._active.move_to_end(room.name)
        if room.name in self._idle:
            self._idle.move_to_end(room.name)

    def join(self, room: str, user: str, conn_id: str, *, address: str | None = None) -> bool:
        r = self._room(room, None if address is None else (address, user))
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
                # Kept for its history: fresh dicts, because a dict keeps the table it grew
                # to (a room that had 1,000 members would hold 40 KiB for nobody).
                r.members = {}
                r.users = {}
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

    def room_epoch(self, room: str) -> str | None:
        r = self._rooms.get(room)
        return r.epoch if r is not None else None

    def next_seq(self, room: str) -> int:
        r = self._room(room)
        r.seq += 1
        return r.seq

    def append(self, room: str, seq: int, data: bytes) -> None:
        r = self._room(room)
        if not r.history:
            r.first_seq = seq
            r.bytes += ROOM_OVERHEAD
            self._history_bytes += ROOM_OVERHEAD
            self._active[room] = r
        elif seq != r.first_seq + len(r.history):
            raise ValueError(f"room {room!r}: seq {seq} is not the next one "
                             f"({r.first_seq + len(r.history)})")
        r.history.append(data)
        size = _charge(data)
        r.bytes += size
        self._history_bytes += size
        while len(r.history) > self.limits.history_size:
            self._drop_oldest(r)
        self._touch(r)
        if self._history_bytes > self.limits.history_max_bytes:
            self._shrink_history(keep=r)

    def _drop_oldest(self, room: _Room) -> None:
        """The one place a history message goes (per-room cap, global budget)."""
        size = _charge(room.history.popleft())
        room.first_seq += 1
        if not room.history:
            size += ROOM_OVERHEAD
            del self._active[room.name]
        room.bytes -= size
        self._history_bytes -= size
        self.history_evicted += 1

    def _shrink_history(self, keep: _Room) -> None:
        # Least recently active rooms first; the room just written to is the most recent,
        # and its newest message is never dropped. Each step is O(1).
        active = self._active
        while self._history_bytes > self.limits.history_max_bytes:
            room = next(iter(active.values()))
            if room is keep and len(room.history) == 1:
                return
            self._drop_oldest(room)
            if not room.history and not room.members:
                self._delete(room)

    def history(self, room: str, *, since: int | None, limit: int,
                max_bytes: int | None = None, before: int | None = None) -> HistoryPage:
        r = self._rooms.get(room)
        if r is None or not r.history or limit <= 0:
            return HistoryPage([], False)
        kept = r.history
        first = r.first_seq
        # seq values in a room's history are consecutive, so indexes are arithmetic. Newest
        # messages are read backwards (the budget keeps the newest), the others forwards.
        if since is None:
            end = len(kept) if before is None else max(0, min(len(kept), before - first))
            if end == 0:
                return HistoryPage([], False)
            order = range(end - 1, max(-1, end - 1 - limit), -1)
        else:
            start = max(0, since - first + 1)
            order = range(start, min(len(kept), start + limit))
        entries: list[tuple[int, bytes]] = []
        budget = max_bytes
        for i in order:
            data = kept[i]
            if budget is not None:
                if entries and len(data) > budget:
                    break
                budget -= len(data)
            entries.append((first + i, data))
        if since is None:
            entries.reverse()
            return HistoryPage(entries, entries[0][0] > first)
        last = entries[-1][0] if entries else max(since, first - 1)
        return HistoryPage(entries, last < first + len(kept) - 1)

    # --- topics --------------------------------------------------------------------------------

    def next_topic_seq(self, topic: str) -> int:
        seq = self._topic_seqs.pop(topic, 0) + 1
        self._topic_seqs[topic] = seq  # re-inserted last: most recently used
        if len(self._topic_seqs) > self.limits.max_topic_seqs:
            self._topic_seqs.popitem(last=False)
        return seq

    # --- offline inbox -------------------------------------------------------------------------

    def inbox_push(self, user: str, data: bytes, now: float) -> None:
        box = self._inboxes.get(user)
        if box is None:
            box = self._inboxes[user] = []
            self._inbox_bytes += INBOX_OVERHEAD
        else:
            self._inboxes.move_to_end(user)
            self._expire(box, now)
        box.append((now + self.limits.inbox_ttl, data))
        self._inbox_bytes += len(data) + INBOX_ITEM_OVERHEAD
        self._inbox_items += 1
        excess = len(box) - self.limits.inbox_size
        if excess > 0:
            self._inbox_pop(box, excess)
            self.inbox_dropped += excess
        while self._inbox_bytes > self.limits.inbox_max_bytes:
            oldest_user = next(iter(self._inboxes))
            oldest = self._inboxes[oldest_user]
            if oldest is box and len(box) == 1:
                break  # never drop the item just queued
            self._inbox_pop(oldest, 1)
            self.inbox_dropped += 1
            if not oldest:
                self._forget_inbox(oldest_user)

    def _inbox_pop(self, box: list[tuple[float, bytes]], count: int) -> None:
        self._inbox_bytes -= sum(len(data) for _, data in box[:count])
        self._inbox_bytes -= count * INBOX_ITEM_OVERHEAD
        self._inbox_items -= count
        del box[:count]

    def _forget_inbox(self, user: str) -> None:
        del self._inboxes[user]
        self._inbox_bytes -= INBOX_OVERHEAD

    def _expire(self, box: list[tuple[float, bytes]], now: float) -> None:
        count = 0
        while count < len(box) and box[count][0] <= now:
            count += 1
        if count:
            self._inbox_pop(box, count)
            self.inbox_expired += count

    def inbox_take(self, user: str, now: float) -> list[bytes]:
        box = self._inboxes.get(user)
        if box is None:
            return []
        self._expire(box, now)
        items = [data for _, data in box]
        self._inbox_pop(box, len(box))
        self._forget_inbox(user)
        return items

    def inbox_count(self) -> int:
        return self._inbox_items
