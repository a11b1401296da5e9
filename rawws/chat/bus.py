"""Many ``rawws serve`` processes as one: what crosses between nodes, and how each node sees
the others' connections.

Owns: :class:`ClusterNode`, one per process with ``--broker``: the router's
:class:`~rawws.chat.router.Cluster` (room fan-out in bus order, recipients on other nodes,
relayed live deliveries), and the :class:`~rawws.chat.redis_store.StoreListener` of the Redis
store (presence announcements, heartbeats, dead nodes, applying other nodes' entries). Standard
library only: it talks to Redis through the store's link.

Does not own: what is stored (:mod:`rawws.chat.redis_store`), the connection to Redis
(:mod:`rawws.chat.redis_link`), or what a request does (:mod:`rawws.chat.router`).

Theory of operation (docs/scaling.md, "Architecture"):

1. **Through Redis**: room messages (stored, then fanned out by every node from the bus, in
   seq order), inbox items and acknowledgements, presence (each local connection's user, rooms
   and topic patterns), heartbeats, and live deliveries (private messages and notifications to
   users, topics or everyone) that have recipients on other nodes. **Local**: connections,
   outbound queues and the slow-consumer policy, rate limits, authentication, timers, and
   deliveries whose recipients are all on this node.
2. **Another node's connections live in this node's store** under ids ``NODE/CONN``: so every
   count, user list and ``online`` answer is cluster-wide with no change to the memory store's
   rules, and a room with members anywhere is never idle here. Their topic patterns live in a
   :class:`~rawws.chat.topics.TopicIndex` of their own, which counts a topic's recipients on
   other nodes.
3. **Presence changes** of local connections are collected during a loop turn and written as
   one op at the batch's position (the connection's whole state: idempotent), with a bus entry
   that every node applies (``user_joined`` / ``user_left`` to its members of the room, as the
   router makes them). A node announces its whole presence when it starts and whenever it
   reconnects after an outage; others replace what they knew of it.
4. **Liveness**: every node heartbeats every ``heartbeat`` seconds (Redis's clock, a sorted
   set); the reply lists nodes silent for ``presence_ttl`` seconds, which the node removes from
   Redis and from every node (a ``x`` entry): their members leave their rooms and go offline
   within ``presence_ttl + heartbeat`` seconds of the last heartbeat. After an outage a node
   waits ``presence_ttl`` before removing anyone (the others need time to heartbeat again). A
   node that finds itself removed while alive announces itself again. A node that stops
   cleanly removes itself at once.
5. **Outage**: the view of other nodes stays as it was; a delivery that needs them gets
   ``unavailable`` (the router: all or nothing), one whose recipients are all here goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from .idempotency import Idem
from .redis_ops import Op, RedisTicket
from .router import Action, Router, Send, Session
from .router import _offline as offline_text
from .store import RoomLimitReached, Stored
from .tickets import Ticket
from .topics import TopicIndex
from .wire import encode

if TYPE_CHECKING:
    from .hub import ChatHub
    from .metrics import Metrics
    from .redis_store import RedisStore

__all__ = ["ClusterNode", "ConnState"]

_logger = logging.getLogger("rawws.chat.cluster")


class ConnState(NamedTuple):
    """What other nodes know of one connection."""

    user: str
    rooms: frozenset[str]
    patterns: frozenset[str]

    @classmethod
    def decode(cls, raw: str | bytes) -> ConnState:
        value = json.loads(raw)
        return cls(str(value["u"]), frozenset(value.get("r", ())),
                   frozenset(value.get("p", ())))

    def encode(self) -> str:
        return encode({"u": self.user, "r": sorted(self.rooms), "p": sorted(self.patterns)})


class _WatchedIndex(TopicIndex[Session]):
    """The router's topic index, telling the cluster which connections' patterns changed."""

    def __init__(self, node: ClusterNode) -> None:
        super().__init__()
        self._node = node

    def add(self, pattern: str, subscriber: Session) -> bool:
        added = super().add(pattern, subscriber)
        if added:
            self._node.presence_changed(subscriber.id)
        return added

    def remove(self, pattern: str, subscriber: Session) -> bool:
        removed = super().remove(pattern, subscriber)
        if removed:
            self._node.presence_changed(subscriber.id)
        return removed


class ClusterNode:
    """This process as one node of a cluster (see the module docstring). Built by
    :class:`~rawws.chat.server.ChatServer` when a broker is configured; it hooks itself into
    the router (``router.cluster``, ``router.index``) and the store (``store.listener``)."""

    def __init__(self, store: RedisStore, router: Router, hub: ChatHub,
                 metrics: Metrics | None = None) -> None:
        self.store = store
        self.link = store.link
        self.config = store.config
        self.node = store.node
        self.router = router
        self.hub = hub
        self.remote: dict[str, dict[str, ConnState]] = {}  # node -> connection -> state
        self.remote_index: TopicIndex[str] = TopicIndex()  # their patterns, by NODE/CONN
        self.remote_connections = 0
        self._dirty: dict[str, None] = {}  # local connections whose state changed
        self._presence_queued = False
        self._announced = False
        self._heartbeat: asyncio.TimerHandle | None = None
        self.reaped = 0  # dead nodes removed by this node
        self.expired = 0  # nodes dropped from the view (reaped by anyone)
        self.uncached_members = 0  # remote memberships not kept: every room slot is in use
        p = self.link.prefix
        self._nodes_key = p + "nodes"
        store.listener = self
        router.cluster = self
        router.index = _WatchedIndex(self)
        if metrics is not None:
            self.register_metrics(metrics)

    def node_key(self, node: str) -> str:
        return f"{self.link.prefix}node:{node}"

    # --- the router's Cluster ------------------------------------------------------------------

    def append(self, room: str, event: dict[str, Any], now: float, idem: Idem | None,
               exclude: str | None) -> Ticket[Stored]:
        return self.store.append(room, event, now, idem, exclude=exclude)

    def room_recipients(self, room: str) -> int:
        return sum(1 for conn in self.store.room_connections(room) if "/" in conn)

    def user_recipients(self, user: str) -> int:
        return sum(1 for conn in self.store.user_connections(user) if "/" in conn)

    def topic_recipients(self, topic: str) -> int:
        return len(self.remote_index.match(topic))

    def all_recipients(self) -> int:
        return self.remote_connections

    def relay(self, kind: str, target: str, data: str, droppable: bool,
              idem: Idem | None, now: float) -> Ticket[Any]:
        return self.store.relay(kind, target, data, droppable, idem, now)

    # --- the store's listener: fan-out and other nodes' entries --------------------------------

    def room_message(self, room: str, text: str, exclude: str | None) -> None:
        # Straight to the connections, not behind the hub's held actions: this message is in
        # Redis already, and every held action waits for a write later in the bus order.
        targets = self.router.room_members(room, exclude)
        if targets:
            self.hub.deliver(targets, text)

    def inbox_item(self, user: str, data: bytes) -> None:
        # Queued for a user who was offline as the queuing node saw it, but who is connected
        # here (presence had not reached that node yet): delivered now, kept until acked.
        targets = self.router.user_sessions(user)
        if targets:
            self.hub.deliver(targets, offline_text(data))

    def on_entry(self, kind: bytes, fields: dict[bytes, bytes], own: bool) -> None:
        if kind == b"p" and not own:
            node = fields[b"n"].decode()
            for conn, raw in json.loads(fields[b"c"]).items():
                self._apply(node, conn, raw)
        elif kind == b"P" and not own:
            node = fields[b"n"].decode()
            self._replace(node, json.loads(fields[b"c"]))
        elif kind == b"x":
            gone = fields[b"t"].decode()
            if gone == self.node:
                if self._announced:
                    _logger.warning("cluster: this node was taken for dead; announcing it "
                                    "again")
                    self.announce()
            else:
                self._drop_node(gone)
        elif kind == b"l" and not own:
            self._deliver_relayed(fields)

    def _deliver_relayed(self, fields: dict[bytes, bytes]) -> None:
        kind = fields[b"v"]
        target = fields[b"a"].decode()
        text = fields[b"d"].decode()
        targets: list[Session]
        if kind == b"u":
            targets = self.router.user_sessions(target)
        elif kind == b"t":
            targets, text = self.router.topic_delivery(target, json.loads(text))
        else:
            targets = self.router.live_sessions()
        if targets:
            self.hub.deliver(targets, text, fields.get(b"o") == b"1")

    # --- other nodes' connections --------------------------------------------------------------

    def _apply(self, node: str, conn: str, raw: str | None) -> None:
        """Another node's connection is now ``raw`` (its state; None: gone)."""
        conns = self.remote.setdefault(node, {})
        old = conns.get(conn)
        new = ConnState.decode(raw) if raw else None
        if old == new:
            return
        if old is not None and new is not None and old.user != new.user:
            self._apply(node, conn, None)
            old = None
        rid = f"{node}/{conn}"
        store = self.store
        actions: list[Action] = []
        user = (new or old).user  # type: ignore[union-attr]
        if old is None:
            store.add_connection(user, rid)
            self.remote_connections += 1
        before = old.rooms if old is not None else frozenset()
        after = new.rooms if new is not None else frozenset()
        for room in sorted(before - after):
            if store.leave(room, user, rid):
                actions += self.router.membership_changed(room, user, joined=False)
        for room in sorted(after - before):
            try:
                if store.join(room, user, rid):
                    actions += self.router.membership_changed(room, user, joined=True)
            except RoomLimitReached:
                self.uncached_members += 1
        was = old.patterns if old is not None else frozenset()
        now = new.patterns if new is not None else frozenset()
        for pattern in was - now:
            self.remote_index.remove(pattern, rid)
        for pattern in now - was:
            self.remote_index.add(pattern, rid)
        if new is None:
            store.remove_connection(user, rid)
            self.remote_connections -= 1
            del conns[conn]
            if not conns:
                del self.remote[node]
        else:
            conns[conn] = new
        self._execute(actions)

    def _replace(self, node: str, states: dict[str, str]) -> None:
        for conn in list(self.remote.get(node, {})):
            if conn not in states:
                self._apply(node, conn, None)
        for conn, raw in states.items():
            self._apply(node, conn, raw)

    def _drop_node(self, node: str) -> None:
        if node in self.remote:
            self.expired += 1
            _logger.info("cluster: node %s is gone: its %d connections leave", node,
                         len(self.remote[node]))
            self._replace(node, {})

    def _execute(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if type(action) is Send:
                self.hub.deliver(action.targets, action.text, action.droppable)

    async def load_presence(self) -> None:
        """What Redis says every live node has (startup, after a gap)."""
        query = self.link.query
        assert query is not None
        ttl_ms = int(self.config.presence_ttl * 1000)
        async with asyncio.timeout(self.config.timeout * 4):
            seconds, micros = await query.time()
            now_ms = int(seconds) * 1000 + int(micros) // 1000
            raw_nodes: Any = await query.zrangebyscore(self._nodes_key, now_ms - ttl_ms, "+inf")
            nodes = [n.decode() for n in raw_nodes if n.decode() != self.node]
            pipe = query.pipeline(transaction=False)
            for node in nodes:
                pipe.hgetall(self.node_key(node))
            replies = await pipe.execute() if nodes else []
        found = {node: {conn.decode(): raw.decode() for conn, raw in fields.items()}
                 for node, fields in zip(nodes, replies, strict=True)}
        for node in list(self.remote):
            if node not in found:
                self._replace(node, {})
        for node, states in found.items():
            self._replace(node, states)

    # --- this node's connections ---------------------------------------------------------------

    def presence_changed(self, conn_id: str) -> None:
        self._dirty[conn_id] = None
        if not self._presence_queued and self._announced and self.link.up:
            self._presence_queued = True
            self.link.submit(Op(RedisTicket(), script="presence", build=self._changes))

    def _state_of(self, conn_id: str) -> str:
        """A local connection's state as other nodes keep it ('' once it is gone)."""
        session = self.router.sessions.get(conn_id)
        if session is None or not session.authenticated:
            return ""
        return ConnState(session.user, frozenset(session.rooms),
                         frozenset(session.patterns)).encode()

    def _presence_args(self, states: dict[str, str], whole: bool) -> list[Any]:
        keys = [self.link.bus_key, self.link.bus_counter, self.node_key(self.node),
                self._nodes_key]
        pairs: list[str] = []
        for conn, state in states.items():
            pairs += (conn, state)
        changes = encode({conn: state or None for conn, state in states.items()})
        return [len(keys), *keys, self.config.bus_length, self.node, 0,
                int(self.config.presence_ttl * 2000), "1" if whole else "0", changes, *pairs]

    def _changes(self) -> list[Any] | None:
        self._presence_queued = False
        dirty, self._dirty = self._dirty, {}
        if not dirty:
            return None
        return self._presence_args({conn: self._state_of(conn) for conn in dirty}, False)

    def announce(self) -> None:
        """Write this node's whole presence (start, recovery, found itself removed)."""
        self._dirty.clear()
        states = {conn: self._state_of(conn) for conn in self.router.sessions}
        self._announced = True
        self.link.submit(Op(RedisTicket(), script="presence",
                            args=self._presence_args({c: s for c, s in states.items() if s},
                                                     True)[:]))

    # --- liveness ------------------------------------------------------------------------------

    def on_up(self) -> None:
        self.announce()
        if self._heartbeat is None:
            self._beat()

    def on_down(self, reason: str) -> None:
        """Keep the view of the others as it was (theory of operation, 5); this node's
        changes wait for the announcement that follows the recovery."""
        self._presence_queued = False

    def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        self._heartbeat = loop.call_later(self.config.heartbeat, self._beat)
        if not self.link.up:
            return
        ttl_ms = int(self.config.presence_ttl * 1000)
        self.link.script("heartbeat", [self.link.bus_key, self.link.bus_counter,
                                       self._nodes_key, self.node_key(self.node)],
                         [self.config.bus_length, self.node, 0, ttl_ms],
                         RedisTicket(self._heard))

    def _heard(self, reply: list[Any]) -> None:
        added, dead = int(reply[0]), [n.decode() for n in reply[1]]
        if added and self._announced:
            self.announce()  # removed as dead while alive (a long pause): here again
        settled = (asyncio.get_running_loop().time() - self.link.up_since
                   >= self.config.presence_ttl)
        if not settled:
            return  # just (re)connected: the others may not have heartbeaten yet
        ttl_ms = int(self.config.presence_ttl * 1000)
        for node in dead:
            if node != self.node:
                self.reaped += 1
                self.link.script("reap", [self.link.bus_key, self.link.bus_counter,
                                          self._nodes_key, self.node_key(node)],
                                 [self.config.bus_length, self.node, 0, node, ttl_ms],
                                 RedisTicket())

    async def close(self) -> None:
        """Leave the cluster at once (others drop this node's connections now)."""
        self._announced = False  # its own removal is no reason to announce itself again
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        if self.link.up:
            self.link.script("reap", [self.link.bus_key, self.link.bus_counter,
                                      self._nodes_key, self.node_key(self.node)],
                             [self.config.bus_length, self.node, 0, self.node, 0],
                             RedisTicket())
            await self.link.flush()

    # --- figures -------------------------------------------------------------------------------

    def register_metrics(self, metrics: Metrics) -> None:
        link = self.link
        metrics.gauge("broker_up", "1 while the broker (Redis) answers, 0 during an outage.",
                      lambda: 1 if link.up else 0)
        metrics.gauge("cluster_nodes", "Nodes this node knows to be alive, itself included.",
                      lambda: len(self.remote) + 1)
        metrics.gauge("cluster_remote_connections", "Connections of the other nodes.",
                      lambda: self.remote_connections)
        metrics.counter("broker_outages_total", "Times the broker became unavailable.",
                        lambda: link.outages)
        metrics.counter("broker_refused_total", "Writes refused at once because the broker "
                        "was unavailable (answered 'unavailable').", lambda: link.refused)
        metrics.counter("broker_round_trips_total", "Pipelined write batches sent to Redis.",
                        lambda: link.round_trips)
        metrics.counter("broker_commands_total", "Commands and scripts in those batches.",
                        lambda: link.commands)
        metrics.counter("broker_bus_reads_total", "XREADs of the bus that returned entries.",
                        lambda: link.reads)
        metrics.counter("broker_bus_entries_total", "Bus entries applied.",
                        lambda: link.entries)
        metrics.counter("broker_bus_gaps_total", "Times entries were missing from the bus "
                        "and the node resynced from Redis.", lambda: link.gaps)
        metrics.counter("cluster_nodes_expired_total", "Nodes dropped for silence or gone.",
                        lambda: self.expired)
