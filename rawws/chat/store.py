"""State shared by every connection: presence, rooms and their history, topic sequence numbers,
offline inboxes. :class:`Store` is the interface; :class:`MemoryStore` the default implementation.

Owns: *what* is remembered and how much of it. Connections appear here only as opaque ids (strings)
and users as names, never as objects, so that another implementation (a Redis-backed one, say)
could hold the same state outside the process; the router maps ids back to live connections.
Messages are handed over already encoded (the UTF-8 JSON text the server sends), so a store
keeps bytes, never live objects, and counts what it holds in bytes.

Does not own: delivery (the router and the hub) or policy (who may join what: the router).

The interface (:class:`Store`) has two halves. *Live state* (presence, room membership) and
*reads* of what is retained are synchronous: every implementation answers them from memory.
*Durable writes* (:meth:`Store.append`, :meth:`Store.inbox_push`, :meth:`Store.inbox_ack`,
:meth:`Store.remember`) and :meth:`Store.recall` return a :class:`~rawws.chat.tickets.Ticket`
that is done when the write is durable: at once for :class:`MemoryStore` (nothing outlives the
process anyway), after the group commit for the SQLite store, after the round trip for a
network store. The store, not the router, assigns a room message's ``seq``, its ``epoch`` and
every ``message_id`` (a network store assigns them atomically where the data lives), and
encodes the event once: :class:`Stored` carries the text that is sent and the bytes that are
kept. Tickets of one store are done in the order the writes were made.

Message identity: every room message and every inbox item gets a ``message_id``, unique within
the store and across its restarts (a random prefix per store instance and a counter), distinct
from the request ``id`` that correlates replies. Offline inbox items are delivered at least
once: they stay in the inbox, redelivered on every new connection of the user, until the user
acknowledges them (:meth:`Store.inbox_ack`) or they expire or are pushed out by a bound.

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
   topic's ``seq`` restarts at 1). Topic seqs are never durable, in any store.
5. With ``history_max_age``, :meth:`MemoryStore.maintain` (called every second by the server)
   drops messages older than that, visiting a bounded number of rooms per call.
6. Idempotency records: :class:`~rawws.chat.idempotency.IdempotencyTable` (24 h, bounded in
   keys and bytes).

The overheads are what CPython 3.11 on 64-bit Linux allocates around each entry (object
headers, allocator rounding, container slots), measured with tracemalloc by
``tests/chat/test_store.py``; ``tests/chat/test_e2e_budgets.py`` checks the resulting RSS of a
real server process against the budgets.
"""

from __future__ import annotations

import itertools
import secrets
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, Final, NamedTuple, Protocol

from .idempotency import Idem, IdempotencyTable, Recalled
from .limits import Limits
from .tickets import Done, Ticket
from .wire import encode, iso_timestamp

__all__ = [
    "HISTORY_ENTRY_OVERHEAD",
    "INBOX_ITEM_OVERHEAD",
    "INBOX_OVERHEAD",
    "ROOM_OVERHEAD",
    "HistoryPage",
    "MemoryStore",
    "MessageIds",
    "RoomLimitReached",
    "RoomQuotaReached",
    "Store",
    "Stored",
    "new_epoch",
]

#: Bytes charged per stored history message besides its length: the ``bytes`` object's header
#: (33), allocator rounding (up to 15) and its deque slot (8), with margin.
HISTORY_ENTRY_OVERHEAD: Final = 64
#: Bytes charged per room that has history: the room object, its name, member and user dicts
#: (kept at their size after members leave), the history deque, two ordered-dict entries.
ROOM_OVERHEAD: Final = 2048
#: Bytes charged per inbox item besides its length and its message_id's length: the
#: ``(expiry, message_id, data)`` tuple (64), the float (24), the ``bytes`` header (33), the
#: ``str`` header of the message_id (49), rounding and the list slot.
INBOX_ITEM_OVERHEAD: Final = 208
#: Bytes charged per user with a non-empty inbox: the list, the user name, the ordered-dict
#: entry.
INBOX_OVERHEAD: Final = 384


def new_epoch() -> str:
    """A fresh stream epoch: 16 random hex digits (64 bits)."""
    return secrets.token_hex(8)


class MessageIds:
    """Makes ``message_id`` values: ``PREFIX-N``, a random prefix (48 bits) per instance and a
    counter, so that a store that restarts never hands out an id it gave before."""

    __slots__ = ("_count", "prefix")

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or secrets.token_hex(6)
        self._count = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}-{next(self._count)}"


class Stored(NamedTuple):
    """A message as a store keeps it: ``text`` is the encoded event as it is sent, ``data``
    the same UTF-8 bytes, which the store keeps; its ``message_id``; and, for a room message,
    its ``seq`` (0 for an inbox item)."""

    text: str
    data: bytes
    message_id: str
    seq: int = 0


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
    """What the router needs to remember. Live state and reads are synchronous and fast;
    durable writes return tickets (see the module docstring)."""

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

    def append(self, room: str, event: dict[str, Any], now: float,
               idem: Idem | None = None) -> Ticket[Stored]:
        """Store a room message (creating the room): the store adds ``seq`` (the room's next),
        ``epoch`` and ``message_id`` to ``event`` (in that order, after its other fields),
        encodes it and keeps it; with ``idem``, the idempotency record of the request, in the
        same write. Raise :class:`RoomLimitReached` (before anything changed) if the room does
        not exist and none can be created."""
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
    def inbox_push(self, user: str, event: dict[str, Any], now: float,
                   idem: Idem | None = None) -> Ticket[Stored]:
        """Keep a personal item for ``user`` until it is acknowledged or expires: the store
        adds ``message_id`` to ``event`` and encodes it (with ``idem``: and the record)."""
        ...

    def inbox_pending(self, user: str, now: float) -> list[Stored]:
        """The user's unexpired, unacknowledged items, oldest first. They stay."""
        ...

    def inbox_ack(self, user: str, message_ids: Iterable[str]) -> Ticket[int]:
        """Forget the user's items with these ids; the ticket's value is how many there were
        (ids unknown, already acknowledged or another user's are ignored)."""
        ...

    def inbox_count(self) -> int: ...

    # idempotency keys (rawws.chat.idempotency)
    def remember(self, idem: Idem, now: float) -> Ticket[None]:
        """Keep the record of a request that stored nothing else (a live delivery)."""
        ...

    def recall(self, scope: str, key: str, now: float) -> Ticket[Recalled | None]:
        """The record kept for a key, if any; done when that record is durable (a duplicate
        may arrive before the first request's write is)."""
        ...

    # lifecycle
    def start(self) -> None:
        """Begin background work on the running event loop (before the server listens)."""
        ...

    def maintain(self, now: float) -> None:
        """Background work, a bounded amount per call (age retention, expiry); called about
        once a second by the server. Never blocks on I/O."""
        ...

    async def close(self) -> None:
        """Make every write so far durable and release what the store holds."""
        ...


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
    default); ``ids``: makes message ids (:class:`MessageIds` by default).

    Subclasses that keep a copy elsewhere (the SQLite store) follow every change through the
    ``_on_*`` methods, each called from the one place where that change happens.
    """

    def __init__(self, limits: Limits | None = None, *,
                 epochs: Callable[[], str] = new_epoch,
                 ids: Callable[[], str] | None = None) -> None:
        self.limits = limits = limits or Limits()
        self._new_epoch = epochs
        self._new_id: Callable[[], str] = ids or MessageIds()
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
        # user -> [(expiry, message_id, data)], least recently used first. A list, not a
        # deque: an empty deque costs 760 bytes and most inboxes hold a few items; removing
        # from the front of a list of at most inbox_size items is one memmove.
        self._inboxes: OrderedDict[str, list[_InboxItem]] = OrderedDict()
        self._inbox_bytes = 0
        self._inbox_items = 0
        # Counters read by the metrics page.
        self.history_evicted = 0
        self.rooms_evicted = 0
        self.inbox_dropped = 0  # pushed out by the per-user cap or the global byte budget
        self.inbox_expired = 0
        self.history_aged = 0  # dropped by history_max_age
        self.idempotency = IdempotencyTable(
            ttl=limits.idempotency_ttl, max_keys=limits.max_idempotency_keys,
            max_bytes=limits.idempotency_max_bytes, on_drop=self._on_idempotency_dropped)
        self._sweep: Iterator[str] = iter(())  # rooms left to visit by the age trim
        self._inbox_sweep: Iterator[str] = iter(())  # inboxes left to visit by the expiry

    @property
    def history_bytes(self) -> int:
        """What all rooms' history is charged against ``history_max_bytes``."""
        return self._history_bytes

    @property
    def inbox_bytes(self) -> int:
        """What all inboxes are charged against ``inbox_max_bytes``."""
        return self._inbox_bytes

    # --- what a copy kept elsewhere follows (no-ops here) --------------------------------------

    def _on_history_dropped(self, room: _Room) -> None:
        """Messages of ``room`` with seq below ``room.first_seq`` are gone."""

    def _on_room_deleted(self, room: _Room) -> None:
        """``room``, its history and its epoch are gone."""

    def _on_inbox_dropped(self, items: list[_InboxItem]) -> None:
        """These inbox items are gone (acknowledged, expired, pushed out by a bound)."""

    def _on_idempotency_dropped(self, scope: str, key: str) -> None:
        """The record of this key is gone (expired or pushed out by a bound)."""

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

    def _room(self, name: str, creator: tuple[str, str] | None = None,
              epoch: str | None = None) -> _Room:
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
        room = self._rooms[name] = _Room(name, epoch or self._new_epoch(), creator)
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
        self._on_room_deleted(room)

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

    def append(self, room: str, event: dict[str, Any], now: float,
               idem: Idem | None = None) -> Ticket[Stored]:
        r = self._room(room)
        seq = r.seq + 1
        message_id = self._new_id()
        event["seq"] = seq
        event["epoch"] = r.epoch
        event["message_id"] = message_id
        text = encode(event)
        data = text.encode()
        r.seq = seq
        self._keep(r, seq, data)
        if idem is not None:
            self._record(idem, data, now)
        return Done(Stored(text, data, message_id, seq))

    def _keep(self, r: _Room, seq: int, data: bytes) -> None:
        if not r.history:
            r.first_seq = seq
            r.bytes += ROOM_OVERHEAD
            self._history_bytes += ROOM_OVERHEAD
            self._active[r.name] = r
        elif seq != r.first_seq + len(r.history):
            raise ValueError(f"room {r.name!r}: seq {seq} is not the next one "
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
        self._on_history_dropped(room)

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

    def inbox_push(self, user: str, event: dict[str, Any], now: float,
                   idem: Idem | None = None) -> Ticket[Stored]:
        message_id = self._new_id()
        event["message_id"] = message_id
        text = encode(event)
        data = text.encode()
        self._inbox_add(user, (now + self.limits.inbox_ttl, message_id, data), now)
        if idem is not None:
            self._record(idem, data, now)
        return Done(Stored(text, data, message_id))

    def _inbox_add(self, user: str, item: _InboxItem, now: float) -> None:
        box = self._inboxes.get(user)
        if box is None:
            box = self._inboxes[user] = []
            self._inbox_bytes += INBOX_OVERHEAD
        else:
            self._inboxes.move_to_end(user)
            self._expire(box, now)
        box.append(item)
        self._inbox_bytes += _inbox_charge(item)
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

    def _inbox_pop(self, box: list[_InboxItem], count: int) -> None:
        """The one place inbox items go (cap, budget, expiry, acknowledgement)."""
        gone = box[:count]
        self._inbox_bytes -= sum(_inbox_charge(item) for item in gone)
        self._inbox_items -= count
        del box[:count]
        self._on_inbox_dropped(gone)

    def _forget_inbox(self, user: str) -> None:
        del self._inboxes[user]
        self._inbox_bytes -= INBOX_OVERHEAD

    def _expire(self, box: list[_InboxItem], now: float) -> None:
        count = 0
        while count < len(box) and box[count][0] <= now:
            count += 1
        if count:
            self._inbox_pop(box, count)
            self.inbox_expired += count

    def inbox_pending(self, user: str, now: float) -> list[Stored]:
        box = self._inboxes.get(user)
        if box is None:
            return []
        self._expire(box, now)
        if not box:
            self._forget_inbox(user)
            return []
        return [Stored(data.decode(), data, message_id) for _, message_id, data in box]

    def inbox_ack(self, user: str, message_ids: Iterable[str]) -> Ticket[int]:
        box = self._inboxes.get(user)
        if not box:
            return Done(0)
        wanted = set(message_ids)
        # Acknowledged items move to the front, in order, and leave through _inbox_pop.
        acked = [item for item in box if item[1] in wanted]
        if acked:
            box[:] = acked + [item for item in box if item[1] not in wanted]
            self._inbox_pop(box, len(acked))
            if not box:
                self._forget_inbox(user)
        return Done(len(acked))

    def inbox_count(self) -> int:
        return self._inbox_items

    # --- idempotency ---------------------------------------------------------------------------

    def remember(self, idem: Idem, now: float) -> Ticket[None]:
        self._record(idem, None, now)
        return Done(None)

    def _record(self, idem: Idem, data: bytes | None, now: float) -> Recalled:
        """The one place an idempotency record is kept."""
        return self.idempotency.put(idem, data, now)

    def recall(self, scope: str, key: str, now: float) -> Ticket[Recalled | None]:
        return Done(self.idempotency.get(scope, key, now))

    # --- background work -----------------------------------------------------------------------

    #: Rooms (and inboxes) visited per :meth:`maintain` call: bounded work per call.
    MAINTAIN_BATCH: Final = 500

    def maintain(self, now: float) -> None:
        """Age retention and expiry, :attr:`MAINTAIN_BATCH` rooms and inboxes at a time."""
        max_age = self.limits.history_max_age
        if max_age is not None:
            self._age_history(iso_timestamp(now - max_age).encode())
        self.idempotency.expire(now, limit=self.MAINTAIN_BATCH)
        self._expire_inboxes(now)

    def _age_history(self, cutoff: bytes) -> None:
        # Timestamps are ISO 8601 with a fixed width, so bytes compare as times do.
        for _ in range(self.MAINTAIN_BATCH):
            name = next(self._sweep, None)
            if name is None:
                self._sweep = iter(list(self._active))  # the next sweep
                return
            r = self._active.get(name)
            while r is not None and r.history:
                stamp = _timestamp_of(r.history[0])
                if stamp is None or stamp >= cutoff:
                    break
                self._drop_oldest(r)
                self.history_aged += 1
            if r is not None and not r.history and not r.members and name in self._rooms:
                self._delete(r)

    def _expire_inboxes(self, now: float) -> None:
        for _ in range(self.MAINTAIN_BATCH):
            user = next(self._inbox_sweep, None)
            if user is None:
                self._inbox_sweep = iter(list(self._inboxes))
                return
            box = self._inboxes.get(user)
            if box is not None:
                self._expire(box, now)
                if not box:
                    self._forget_inbox(user)

    def start(self) -> None:
        """Nothing to start."""

    async def close(self) -> None:
        """Nothing to flush: the memory store's state ends with the process."""

    # --- loading a copy kept elsewhere (the SQLite store, at startup) --------------------------

    def _restore_room(self, name: str, epoch: str, seq: int,
                      entries: Iterable[tuple[int, bytes]]) -> None:
        """A room as it was: its epoch, its last seq, its kept messages (consecutive seqs,
        oldest first). The bounds apply as they would have (a lower limit trims now)."""
        r = self._room(name, epoch=epoch)
        r.seq = max(r.seq, seq)
        for entry_seq, data in entries:
            if r.history and entry_seq != r.first_seq + len(r.history):
                raise ValueError(f"room {name!r}: stored seqs are not consecutive at "
                                 f"{entry_seq}")
            r.seq = max(r.seq, entry_seq)
            self._keep(r, entry_seq, data)
        if not r.history and not r.members and name in self._rooms:
            self._delete(r)  # nothing kept: the stream is over

    def _restore_inbox_item(self, user: str, expires: float, message_id: str, data: bytes,
                            now: float) -> None:
        self._inbox_add(user, (expires, message_id, data), now)


_InboxItem = tuple[float, str, bytes]  # (expiry, message_id, encoded event)
_TIMESTAMP_KEY: Final = b'"timestamp":"'


def _inbox_charge(item: _InboxItem) -> int:
    return len(item[2]) + len(item[1]) + INBOX_ITEM_OVERHEAD


def _timestamp_of(data: bytes) -> bytes | None:
    """The ``timestamp`` of an encoded event (ISO 8601, 24 bytes), or None. The last one: the
    event's own comes after ``content`` (which could hold one) and before fields without any."""
    at = data.rfind(_TIMESTAMP_KEY)
    if at < 0:
        return None
    return data[at + len(_TIMESTAMP_KEY):at + len(_TIMESTAMP_KEY) + 24]
