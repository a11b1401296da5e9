"""``RedisStore``: the store of a cluster. Redis holds the truth; every node keeps the memory
store's structures as its cache, and every node's cache follows the one order of the bus.

Owns: the third implementation of :class:`~rawws.chat.store.Store` (after memory and SQLite):
writes as Lua scripts (:mod:`rawws.chat.redis_scripts`) through the node's
:class:`~rawws.chat.redis_link.RedisLink`, applying bus entries to the cache, loading and
resyncing the cache from Redis, and mirroring the cache's own retention decisions into Redis.

Does not own: live state across nodes (presence, membership, subscriptions, live deliveries:
:mod:`rawws.chat.bus`, which this store calls as its *listener*), the bounds of what is kept
(the memory store's, unchanged), or when output may be sent (the router's ``Hold``).

Theory of operation:

1. **Redis assigns, the bus orders.** A room message's seq and its room's epoch are assigned
   by one script that also keeps the message in the room's stream (``XADD MAXLEN ~``), records
   its idempotency key, and appends it to the bus: one round trip, atomic. Inbox items,
   acknowledgements and idempotency records are scripts too (``SET NX``-like: a key already
   recorded makes the write refuse, so two nodes racing on one key cannot both deliver).
2. **The cache follows the bus.** Room messages and inbox items enter a node's cache when its
   bus reader applies their entry, this node's own writes included; the write's ticket is done
   right after (:mod:`rawws.chat.redis_link`, rule 2). So every node holds the same streams in
   the same order, and a ``since=`` recovery is answered by any node from memory.
3. **Local decisions are mirrored.** What the memory store drops by itself (a room's count cap,
   the byte budgets, age, an idle room evicted at ``max_rooms``, expired items) is dropped in
   Redis too (``XTRIM MINID``, a room deleted only if nobody wrote to it since, ``HDEL``), and
   inbox drops go on the bus so that no node redelivers an item another node dropped or that was
   acknowledged there. With the same limits on every node the caches agree; with different
   limits the smallest wins. Redis never holds more than a node's budget allows.
4. **Startup and gaps** reload rooms and inboxes from Redis and reconcile the cache (a room
   whose epoch changed is replaced, items gone from Redis leave the cache) before the reader
   goes on from the position taken just before the load: entries applied twice are no-ops
   (seqs and message ids already held).
5. **Time**: item expiries and idempotency records carry the store's clock (``now``) so the
   store behaves as the memory store does; Redis key TTLs (real seconds) only clean up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

from redis.exceptions import RedisError

from .broker import BrokerConfig
from .idempotency import Idem, Recalled
from .limits import Limits
from .redis_link import RedisLink
from .redis_ops import Op, RedisTicket
from .store import MemoryStore, RoomLimitReached, Stored, _InboxItem, _Room, new_epoch
from .tickets import Done, Failed, StoreUnavailable, Ticket
from .wire import encode

__all__ = ["RedisStore", "StoreListener"]

_logger = logging.getLogger("rawws.chat.store")

#: Rooms (or inboxes) read from Redis per round trip while loading.
LOAD_BATCH: Final = 200
#: Message ids per HDEL script call.
DROP_BATCH: Final = 500


class StoreListener(Protocol):
    """What the cluster (:mod:`rawws.chat.bus`) hears from the store."""

    def room_message(self, room: str, text: str, exclude: str | None) -> None:
        """A room message was applied to the cache: deliver it to this node's members."""

    def inbox_item(self, user: str, data: bytes) -> None:
        """An inbox item was applied to the cache: the user may be connected here already
        (it came online on a node before the one that queued the item knew)."""

    def presence_changed(self, conn_id: str) -> None:
        """A local connection's presence or membership changed."""

    def on_entry(self, kind: bytes, fields: dict[bytes, bytes], own: bool) -> None:
        """A bus entry that is not the store's (presence, heartbeats, live deliveries)."""

    async def load_presence(self) -> None:
        """Reload other nodes' presence from Redis (startup, gaps)."""

    def on_up(self) -> None: ...

    def on_down(self, reason: str) -> None: ...


def _duplicate(_: object) -> StoreUnavailable:
    return StoreUnavailable("a request with this idempotency key is being processed by "
                            "another node; retry it")


class RedisStore(MemoryStore):
    """A :class:`MemoryStore` whose truth is in Redis (see the module docstring).

    Build it, then ``await store.connect()`` on the loop that will run it (before the server
    listens); :meth:`close` leaves cleanly. ``node``: this process's id in the cluster.
    """

    def __init__(self, config: BrokerConfig, limits: Limits | None = None, *,
                 wall: Callable[[], float] = time.time,
                 epochs: Callable[[], str] = new_epoch, ids: Callable[[], str] | None = None,
                 node: str | None = None) -> None:
        super().__init__(limits, epochs=epochs, ids=ids)
        self.config = config
        self.node = node or secrets.token_hex(6)
        self.link = link = RedisLink(config, node=self.node)
        link.on_entry = self._on_entry
        link.resync = self._resync
        link.on_up = self._on_up
        link.on_down = self._on_down
        self._wall = wall
        self.listener: StoreListener | None = None
        # True while the cache is changed to match what Redis already holds (no mirroring).
        self._applying = False
        self._box_users: dict[int, str] = {}  # id(inbox list) -> its user
        self._popping: str | None = None  # the user whose inbox _inbox_pop is trimming
        self._trims: dict[str, int] = {}  # room -> first seq kept, not yet sent
        self._keeping: _Room | None = None  # the room a message is being kept in
        self._trim_queued = False
        self.uncached = 0  # room messages not cached: every room slot has members
        self.loaded_at: float | None = None
        self._connecting: asyncio.Future[None] | None = None
        p = link.prefix
        self._bus = link.bus_key
        self._busq = link.bus_counter
        self._rooms_key = p + "rooms"
        self._inboxes_key = p + "inboxes"
        self._inbox_q = p + "inbox:q"

    # --- keys ----------------------------------------------------------------------------------

    def room_key(self, room: str) -> str:
        return f"{self.link.prefix}room:{room}"

    def hist_key(self, room: str) -> str:
        return f"{self.link.prefix}hist:{room}"

    def inbox_key(self, user: str) -> str:
        return f"{self.link.prefix}inbox:{user}"

    def idem_key(self, scope: str, key: str) -> str:
        return f"{self.link.prefix}idem:{scope}:{key}"

    def _bus_args(self, w: int = 0) -> list[Any]:
        return [self.config.bus_length, self.node, w]

    def _idem_parts(self, idem: Idem, now: float) -> tuple[list[str], list[Any]]:
        ttl = self.limits.idempotency_ttl
        return ([self.idem_key(idem.scope, idem.key)],
                [idem.fingerprint, encode(idem.extra), repr(now + ttl), max(1, math.ceil(ttl))])

    # --- lifecycle -----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect, load what Redis holds, start reading the bus (writes made before wait for
        it). Raises (:exc:`~rawws.chat.redis_link.BrokerConfigError` for a Redis that cannot
        be used as configured, OSError/RedisError when it cannot be reached)."""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        await asyncio.shield(self._connecting)

    async def _connect(self) -> None:
        started = time.perf_counter()
        try:
            await self.link.connect()
            position = await self._resync()
        except (RedisError, TimeoutError) as exc:
            reason = str(exc) or "no answer within the timeout"
            self.link.abandon(reason)
            raise OSError(f"broker {self.config.display}: {reason}") from None
        except BaseException as exc:
            self.link.abandon(str(exc) or type(exc).__name__)
            raise
        self.link.start(position)
        self.loaded_at = time.perf_counter() - started
        if self._rooms or self._inbox_items:
            _logger.info("store %s: loaded %d rooms, %d inbox items in %.2f s",
                         self.config.display, len(self._rooms), self._inbox_items,
                         self.loaded_at)

    def start(self) -> None:
        """Connect in the background (:meth:`connect` waits for it)."""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(
                lambda task: task.cancelled() or task.exception())  # retrieved: no warning

    async def close(self) -> None:
        await self.link.close()

    @property
    def failure(self) -> str | None:
        """Why writes are refused (the broker is down), or None."""
        failure = self.link.failure
        return None if failure is None else f"Redis {self.config.display}: {failure}"

    def _on_up(self) -> None:
        if self.listener is not None:
            self.listener.on_up()

    def _on_down(self, reason: str) -> None:
        if self.listener is not None:
            self.listener.on_down(reason)

    # --- live state: local connections are announced to the cluster --------------------------

    def _changed(self, conn_id: str) -> None:
        if "/" not in conn_id and self.listener is not None:  # NODE/CONN: another node's
            self.listener.presence_changed(conn_id)

    def add_connection(self, user: str, conn_id: str) -> bool:
        came = super().add_connection(user, conn_id)
        self._changed(conn_id)
        return came

    def remove_connection(self, user: str, conn_id: str) -> bool:
        went = super().remove_connection(user, conn_id)
        self._changed(conn_id)
        return went

    def join(self, room: str, user: str, conn_id: str, *, address: str | None = None) -> bool:
        arrived = super().join(room, user, conn_id, address=address)
        self._changed(conn_id)
        return arrived

    def leave(self, room: str, user: str, conn_id: str) -> bool:
        left = super().leave(room, user, conn_id)
        self._changed(conn_id)
        return left

    # --- durable writes ------------------------------------------------------------------------

    def append(self, room: str, event: dict[str, Any], now: float,
               idem: Idem | None = None, *, exclude: str | None = None) -> Ticket[Stored]:
        """Like :meth:`MemoryStore.append`; ``exclude``: a connection of this node the fan-out
        skips (the sender, whose copy is its reply)."""
        r = self._room(room)  # RoomLimitReached before anything is sent
        link = self.link
        message_id = self._new_id()
        head = encode(event)[:-1]
        w = link.next_w()
        keys = [self._bus, self._busq, self.room_key(room), self.hist_key(room),
                self._rooms_key]
        args = [*self._bus_args(w), room, head, r.epoch, message_id, self.limits.history_size,
                exclude or ""]
        if idem is not None:
            more_keys, more_args = self._idem_parts(idem, now)
            keys += more_keys
            args += more_args

        def parse(reply: list[Any]) -> Stored:
            if int(reply[0]) == 0:
                raise _duplicate(reply)
            seq = int(reply[0])
            epoch = reply[1].decode()
            text = f'{head},"seq":{seq},"epoch":"{epoch}","message_id":"{message_id}"}}'
            event["seq"] = seq
            event["epoch"] = epoch
            event["message_id"] = message_id
            data = text.encode()
            if idem is not None:
                super(RedisStore, self)._record(idem, data, now)
            return Stored(text, data, message_id, seq)

        return link.script("append", keys, args, RedisTicket(parse, w=w))

    def inbox_push(self, user: str, event: dict[str, Any], now: float,
                   idem: Idem | None = None) -> Ticket[Stored]:
        link = self.link
        message_id = self._new_id()
        head = encode(event)[:-1]
        ttl = self.limits.inbox_ttl
        w = link.next_w()
        keys = [self._bus, self._busq, self.inbox_key(user), self._inbox_q, self._inboxes_key]
        args = [*self._bus_args(w), user, head, message_id, repr(now + ttl),
                max(1, math.ceil(ttl))]
        if idem is not None:
            more_keys, more_args = self._idem_parts(idem, now)
            keys += more_keys
            args += more_args

        def parse(reply: list[Any]) -> Stored:
            if int(reply[0]) == 0:
                raise _duplicate(reply)
            event["message_id"] = message_id
            text = f'{head},"message_id":"{message_id}"}}'
            data = text.encode()
            if idem is not None:
                super(RedisStore, self)._record(idem, data, now)
            return Stored(text, data, message_id)

        return link.script("inbox_push", keys, args, RedisTicket(parse, w=w))

    def inbox_ack(self, user: str, message_ids: Iterable[str]) -> Ticket[int]:
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return Done(0)
        refusal = self.link.refusal()
        if refusal is not None:
            return Failed(refusal)  # before the cache forgets them: nothing acknowledged
        self._applying = True  # the script below removes them from Redis and tells the bus
        try:
            super().inbox_ack(user, ids)
        finally:
            self._applying = False
        return self._drop_items(user, ids)

    def _drop_items(self, user: str, ids: list[str]) -> Ticket[int]:
        tickets = [self.link.script("inbox_drop", [self._bus, self._busq, self.inbox_key(user)],
                                    [*self._bus_args(), user, *ids[i:i + DROP_BATCH]],
                                    RedisTicket(lambda reply: int(reply[0])))
                   for i in range(0, len(ids), DROP_BATCH)]
        return tickets[0] if len(tickets) == 1 else _Sum(tickets)

    def remember(self, idem: Idem, now: float) -> Ticket[None]:
        super()._record(idem, None, now)
        keys, args = self._idem_parts(idem, now)
        return self.link.script("remember", keys, args, RedisTicket(lambda _: None))

    def relay(self, kind: str, target: str, data: str, droppable: bool, idem: Idem | None,
              now: float) -> Ticket[None]:
        """A live delivery for the other nodes (:meth:`rawws.chat.router.Cluster.relay`), with
        its idempotency record in the same script."""
        keys = [self._bus, self._busq]
        args = [*self._bus_args(), kind, target, "1" if droppable else "0", data]
        if idem is not None:
            super()._record(idem, None, now)
            more_keys, more_args = self._idem_parts(idem, now)
            keys += more_keys
            args += more_args
        return self.link.script("relay", keys, args, RedisTicket(lambda _: None))

    def recall(self, scope: str, key: str, now: float) -> Ticket[Recalled | None]:
        def parse(reply: dict[bytes, bytes]) -> Recalled | None:
            if not reply or float(reply.get(b"e", b"0")) <= now:
                return None
            data = reply.get(b"d")
            extra = json.loads(reply.get(b"x", b"{}"))
            return Recalled(reply[b"f"].decode(), data,
                            extra if isinstance(extra, dict) else {})

        return self.link.command("HGETALL", self.idem_key(scope, key), parse=parse)

    # --- the cache's own decisions, mirrored into Redis (rule 3) -------------------------------

    def _keep(self, r: _Room, seq: int, data: bytes) -> None:
        self._keeping = r
        try:
            super()._keep(r, seq, data)
        finally:
            self._keeping = None

    def _on_history_dropped(self, room: _Room) -> None:
        if self._applying or room.seq == 0:
            return
        if room is self._keeping and len(room.history) >= self.limits.history_size:
            return  # the room's count cap: the append script's MAXLEN ~ trims Redis already
        self._trims[room.name] = room.first_seq
        if not self._trim_queued:
            self._trim_queued = True
            self.link.submit(_lazy(self._build_trims))

    def _build_trims(self) -> list[Any] | None:
        # One op for every room trimmed since the last batch: XTRIM is per key, so a script.
        self._trim_queued = False
        trims, self._trims = self._trims, {}
        if not trims:
            return None
        keys = [self.hist_key(room) for room in trims]
        return ["EVAL", _TRIM_ALL, len(keys), *keys, *trims.values()]

    def _on_room_deleted(self, room: _Room) -> None:
        self._trims.pop(room.name, None)
        if self._applying or room.seq == 0:
            return  # nothing in Redis (a room with members only), or Redis deleted it
        self.link.script("room_gone", [self._bus, self._busq, self.room_key(room.name),
                                       self.hist_key(room.name), self._rooms_key],
                         [*self._bus_args(), room.name, room.seq, room.epoch],
                         RedisTicket(lambda reply: int(reply[0])))

    def _inbox_add(self, user: str, item: _InboxItem, now: float) -> None:
        super()._inbox_add(user, item, now)
        box = self._inboxes.get(user)
        if box is not None:
            self._box_users[id(box)] = user

    def _forget_inbox(self, user: str) -> None:
        box = self._inboxes.get(user)
        if box is not None:
            self._box_users.pop(id(box), None)
        super()._forget_inbox(user)

    def _inbox_pop(self, box: list[_InboxItem], count: int) -> None:
        self._popping = self._box_users.get(id(box))
        try:
            super()._inbox_pop(box, count)
        finally:
            self._popping = None

    def _on_inbox_dropped(self, items: list[_InboxItem]) -> None:
        user = self._popping
        if self._applying or user is None or not items:
            return
        self._drop_items(user, [message_id for _, message_id, _ in items])

    def _on_idempotency_dropped(self, scope: str, key: str) -> None:
        if not self._applying:
            self.link.command("DEL", self.idem_key(scope, key))

    # --- bus entries (rule 2) ------------------------------------------------------------------

    def _on_entry(self, entry_id: bytes, fields: dict[bytes, bytes], own: bool) -> None:
        kind = fields.get(b"k", b"")
        if kind == b"m":
            room = fields[b"r"].decode()
            data = fields[b"d"]
            applied = self._apply_message(room, int(fields[b"s"]), fields[b"e"].decode(), data)
            if applied and self.listener is not None:
                exclude = fields.get(b"x", b"").decode() if own else None
                self.listener.room_message(room, data.decode(), exclude or None)
        elif kind == b"i":
            expires = float(fields[b"X"])
            user = fields[b"u"].decode()
            if (self._apply_item(user, fields[b"m"].decode(), expires, fields[b"d"],
                                 expires - self.limits.inbox_ttl)
                    and self.listener is not None):
                self.listener.inbox_item(user, fields[b"d"])
        elif kind == b"a":
            if not own:
                self._apply_drop(fields[b"u"].decode(), fields[b"ids"].decode().split(","))
        elif kind == b"g":
            if not own:
                self._apply_room_gone(fields[b"r"].decode(), fields[b"e"].decode())
        elif self.listener is not None:
            self.listener.on_entry(kind, fields, own)

    def _apply_message(self, name: str, seq: int, epoch: str, data: bytes) -> bool:
        """Keep a message from the bus in the cache; False if it was there already."""
        r = self._rooms.get(name)
        if r is None:
            try:
                r = self._room(name, epoch=epoch)
            except RoomLimitReached:
                self.uncached += 1  # delivered, not kept here (every room slot has members)
                return True
        if r.epoch != epoch:
            self._end_stream(r, epoch)
        if seq <= r.seq:
            return False  # applied before (a replay after a load)
        if r.history and seq != r.seq + 1:
            self._end_stream(r, epoch)  # a gap: keep from here (Redis has the rest)
        r.seq = seq
        self._keep(r, seq, data)
        return True

    def _end_stream(self, r: _Room, epoch: str) -> None:
        """Forget the cache's copy of a room's history: Redis holds another stream."""
        evicted = self.history_evicted
        self._applying = True
        try:
            while r.history:
                self._drop_oldest(r)
        finally:
            self._applying = False
        self.history_evicted = evicted
        r.epoch = epoch
        r.seq = 0
        r.first_seq = 1

    def _apply_item(self, user: str, message_id: str, expires: float, data: bytes,
                    now: float) -> bool:
        """Keep an inbox item from Redis; False if it was there already."""
        box = self._inboxes.get(user)
        if box is not None and any(item[1] == message_id for item in box):
            return False  # applied before
        self._inbox_add(user, (expires, message_id, data), now)
        return True

    def _apply_drop(self, user: str, ids: list[str]) -> None:
        self._applying = True
        try:
            MemoryStore.inbox_ack(self, user, ids)
        finally:
            self._applying = False

    def _apply_room_gone(self, name: str, epoch: str) -> None:
        r = self._rooms.get(name)
        if r is None or r.epoch != epoch:
            return
        self._applying = True
        try:
            if r.members:
                self._end_stream(r, self._new_epoch())
            else:
                self._delete(r)
        finally:
            self._applying = False

    # --- loading and resyncing (rule 4) --------------------------------------------------------

    async def _resync(self) -> tuple[bytes, int]:
        entry_id, q, incarnation = await self.link.snapshot()
        self.link.incarnation = incarnation
        await self._load_rooms()
        await self._load_inboxes()
        if self.listener is not None:
            await self.listener.load_presence()
        return entry_id, q

    async def _members_of(self, key: str) -> list[bytes]:
        query = self.link.query
        assert query is not None
        found: list[bytes] = []
        cursor = 0
        chunk: Any
        while True:
            async with asyncio.timeout(self.config.timeout * 2):
                cursor, chunk = await query.sscan(key, cursor, count=1000)
            found.extend(chunk)
            if not cursor:
                return sorted(set(found))

    async def _load_rooms(self) -> None:
        query = self.link.query
        assert query is not None
        names = [name.decode() for name in await self._members_of(self._rooms_key)]
        seen: set[str] = set()
        for start in range(0, len(names), LOAD_BATCH):
            chunk = names[start:start + LOAD_BATCH]
            pipe = query.pipeline(transaction=False)
            for name in chunk:
                pipe.hmget(self.room_key(name), "seq", "epoch")
                pipe.xrevrange(self.hist_key(name), count=self.limits.history_size)
            async with asyncio.timeout(self.config.timeout * 4):
                replies = await pipe.execute()
            for i, name in enumerate(chunk):
                (seq, epoch), entries = replies[2 * i], replies[2 * i + 1]
                if epoch is None:
                    continue
                seen.add(name)
                kept = [(int(entry_id.partition(b"-")[0]), fields[b"d"])
                        for entry_id, fields in reversed(entries)]
                self._reconcile_room(name, epoch.decode(), int(seq or 0), kept)
        self._applying = True
        try:
            for name, r in list(self._rooms.items()):
                if name not in seen and r.history:  # gone from Redis: that stream ended
                    if r.members:
                        self._end_stream(r, self._new_epoch())
                    else:
                        self._delete(r)
        finally:
            self._applying = False

    def _reconcile_room(self, name: str, epoch: str, seq: int,
                        kept: list[tuple[int, bytes]]) -> None:
        r = self._rooms.get(name)
        self._applying = True
        try:
            if r is None:
                if kept:
                    try:
                        self._restore_room(name, epoch, seq, kept)
                    except RoomLimitReached:
                        self.uncached += len(kept)
                return
            if r.epoch != epoch or (kept and r.history and kept[0][0] > r.seq + 1):
                self._end_stream(r, epoch)
            for entry_seq, data in kept:
                if entry_seq > r.seq:
                    if r.history and entry_seq != r.seq + 1:
                        self._end_stream(r, epoch)
                    r.seq = entry_seq
                    self._keep(r, entry_seq, data)
            r.seq = max(r.seq, seq)
        finally:
            self._applying = False

    async def _load_inboxes(self) -> None:
        query = self.link.query
        assert query is not None
        now = self._wall()
        users = [user.decode() for user in await self._members_of(self._inboxes_key)]
        found: dict[str, list[tuple[int, float, str, bytes]]] = {}
        for start in range(0, len(users), LOAD_BATCH):
            chunk = users[start:start + LOAD_BATCH]
            pipe = query.pipeline(transaction=False)
            for user in chunk:
                pipe.hgetall(self.inbox_key(user))
            async with asyncio.timeout(self.config.timeout * 4):
                replies = await pipe.execute()
            for user, fields in zip(chunk, replies, strict=True):
                items = []
                for message_id, value in fields.items():
                    order, expires, data = value.split(b"|", 2)
                    if float(expires) > now:
                        items.append((int(order), float(expires), message_id.decode(), data))
                if items:
                    found[user] = sorted(items)
        self._applying = True
        try:
            for user, box in list(self._inboxes.items()):
                keep = {item[2] for item in found.get(user, ())}
                gone = [item[1] for item in box if item[1] not in keep]
                if gone:
                    MemoryStore.inbox_ack(self, user, gone)
        finally:
            self._applying = False
        for user, items in found.items():
            for _, expires, message_id, data in items:
                self._apply_item(user, message_id, expires, data, now)


_TRIM_ALL: Final = """
for i = 1, #KEYS do redis.call('XTRIM', KEYS[i], 'MINID', ARGV[i] .. '-0') end
return #KEYS
"""


def _lazy(build: Callable[[], list[Any] | None]) -> Op:
    return Op(RedisTicket(), build=build)


class _Sum:
    """Several drop tickets as one: done when all are, their counts added."""

    __slots__ = ("tickets",)

    def __init__(self, tickets: list[RedisTicket[int]]) -> None:
        self.tickets = tickets

    def done(self) -> bool:
        return all(t.done() for t in self.tickets)

    def result(self) -> int:
        return sum(t.result() for t in self.tickets)

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        self.tickets[-1].add_done_callback(lambda _: fn(self))
