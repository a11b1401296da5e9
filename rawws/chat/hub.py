"""The hub: the chat router wired to real WebSocket connections through ``rawws.Listener``.

Owns: the handshake checks (endpoint, Origin, connection caps, ``user_id``, where the token
comes from), the per-connection outbound queue and slow-consumer policy, the auth and token
expiry timers, and carrying out the router's :class:`~rawws.chat.router.Send` and
:class:`~rawws.chat.router.Close` actions.

Does not own: what messages mean (:mod:`rawws.chat.router`), HTTP (:mod:`rawws.chat.httpapi`),
or starting the server (:mod:`rawws.chat.server`).

Theory of operation:

1. Callbacks, not tasks: a connection costs a :class:`Peer` (a few slots and an empty deque),
   no coroutine. Everything runs on the event loop thread, in order.
2. Fan-out writes each frame once: connections that can take data now get it through
   ``rawws.broadcast`` (serialized once per distinct ``broadcast_key``).
3. A connection whose transport is paused (its write buffer went over ``write_limit``) gets its
   messages in its own queue instead, drained by ``on_writable``. The queue is bounded in
   messages and bytes (UTF-8); when it is full the connection is closed with 1013 (try again
   later) or, with ``slow_consumer="drop-oldest"``, its oldest queued notification is dropped
   and counted. Replies count against the same budget: a message for one connection is refused
   the same way if the transport's buffer, the queue and it would exceed ``write_limit +
   max_queue_bytes`` (and the router builds no reply bigger than ``max_reply_bytes``). So one
   stalled reader costs at most ``write_limit + max_queue_bytes`` and never delays others.
   The 1013 close frame waits behind everything the reader has not read, so a reader that is
   stalled (not just slow) would never see it: ``slow_consumer_grace`` seconds later the TCP
   connection is aborted, which frees its buffers at once (not after ``close_timeout``).
4. Connection caps are checked in ``process_request`` (HTTP 503), which rawws runs in the same
   callback as the switch to OPEN, so counts cannot race.
5. Output commit: actions are carried out in the order the router produced them. A ``Hold``
   (a durable store's write that is not committed yet) parks itself and everything after it,
   also the actions of later messages, until its ticket is done; so a recipient never reads a
   room message, nor a history that contains it, before it is durable, and a crash cannot
   re-assign a seq anyone saw. Tickets are done in the order they were made, so one callback
   (on the first parked ticket) is registered at a time. With the memory store there is never
   a Hold, and nothing waits. What waits is bounded: the store refuses writes beyond its
   backlog, and above ``max_held`` held actions (a disk that stalls while requests keep coming)
   the hub stops reading every connection, new ones included, until a quarter are left: the
   clients' requests wait in TCP buffers, not in the server's memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal

import rawws

from .httpapi import client_key
from .router import Action, Close, Hold, Route, Router, Send, Session, route_for
from .wire import bearer_token, encode, is_valid_user, utf8_length

__all__ = ["ChatHub", "Peer", "ip_of"]

_logger = logging.getLogger("rawws.chat")

SlowConsumerPolicy = Literal["close", "drop-oldest"]
TOKEN_COOKIE: Final = "rawws_token"


def cookie_value(headers: rawws.Headers, name: str) -> str | None:
    for header in headers.get_all("Cookie"):
        for part in header.split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name:
                return value.strip().strip('"') or None
    return None


def same_origin(origin: str, host: str | None) -> bool:
    """Whether ``origin`` is the page's own origin: http(s) plus the request's Host."""
    if not host:
        return False
    origin = origin.lower()
    host = host.lower()
    return origin in (f"http://{host}", f"https://{host}")


class _Call:
    """A callback queued behind held actions (:meth:`ChatHub.when_released`)."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], object]) -> None:
        self.callback = callback


class Peer:
    """The hub's state for one connection."""

    __slots__ = ("ip", "queue", "queued_bytes", "session", "timers", "ws")

    def __init__(self, ws: rawws.Connection, ip: str) -> None:
        self.ws = ws
        self.ip = ip
        self.session: Session | None = None
        self.queue: deque[tuple[str, bool, int]] = deque()  # (text, droppable, UTF-8 bytes)
        self.queued_bytes = 0
        self.timers: list[asyncio.TimerHandle] = []


class ChatHub(rawws.Listener):
    """A ``rawws.Listener`` serving the chat endpoints with a :class:`Router`."""

    def __init__(
        self,
        router: Router,
        *,
        allowed_origins: Sequence[str] | None = None,
        slow_consumer: SlowConsumerPolicy = "close",
        slow_consumer_grace: float = 1.0,
        write_limit: int = 64 * 1024,
        wall: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
        max_held: int = 100_000,
    ) -> None:
        if slow_consumer not in ("close", "drop-oldest"):
            raise ValueError(f"slow_consumer must be 'close' or 'drop-oldest', "
                             f"not {slow_consumer!r}")
        self.router = router
        self.limits = router.limits
        self.metrics = router.metrics
        self.allowed_origins = None if allowed_origins is None else frozenset(allowed_origins)
        if not slow_consumer_grace >= 0:
            raise ValueError(f"slow_consumer_grace must be >= 0, not {slow_consumer_grace!r}")
        self.slow_consumer = slow_consumer
        self.slow_consumer_grace = slow_consumer_grace
        #: What the server holds for one reader at most: its transport's buffer (paused above
        #: ``write_limit``) plus its queue (theory of operation, 3).
        self.outbound_budget = write_limit + self.limits.max_queue_bytes
        self._wall = wall
        self.logger = logger or _logger
        self.peers: set[Peer] = set()
        self.per_ip: Counter[str] = Counter()
        #: Actions waiting for a store write (the first is a Hold whose ticket is not done).
        self._held: deque[Action | _Call] = deque()
        #: Above this many held actions (a disk that stalls), every connection stops being
        #: read until a quarter are left (theory of operation, 5).
        self.max_held = max_held
        self.reading_paused = False
        metrics = self.metrics
        metrics.gauge("connections", "Open WebSocket connections.", lambda: len(self.peers))
        metrics.gauge("users_online", "Users with at least one connection.",
                      lambda: len(router.store.online_users()))
        metrics.gauge("rooms", "Rooms alive (with members or history).",
                      lambda: len(router.store.room_names()))
        metrics.gauge("topics", "Distinct topic patterns subscribed.", router.topic_count)
        metrics.gauge("subscriptions", "Topic subscriptions (pattern, connection).",
                      lambda: len(router.index))
        metrics.gauge("pattern_shapes", "Distinct shapes of wildcard patterns (each costs "
                      "every publish one lookup).", lambda: router.index.wildcard_shapes)
        metrics.gauge("queued_messages", "Outbound messages waiting on slow readers.",
                      lambda: self.queued_messages)
        metrics.gauge("inbox_items", "Offline items waiting in inboxes.",
                      router.store.inbox_count)

    @property
    def queued_messages(self) -> int:
        """Outbound messages waiting in the queues of slow readers (read at scrape time)."""
        return sum(len(peer.queue) for peer in self.peers)

    # --- handshake ---------------------------------------------------------------------------

    def _reject(self, status: int, reason: str, text: str,
                headers: Sequence[tuple[str, str]] = ()) -> rawws.Response:
        self.metrics.handshake_rejections[reason] += 1
        body = encode({"error": reason, "message": text}).encode("utf-8")
        return rawws.Response(status, rawws.Headers([
            ("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff"),
            *headers]), body)

    def process_request(self, ws: rawws.Connection, request: rawws.Request
                        ) -> rawws.Response | None:
        """The ``process_request`` hook of ``rawws.serve``: refuse or accept the upgrade."""
        route = route_for(request.target)
        if route is None:
            return self._reject(404, "not_found", "no WebSocket endpoint here; use /ws, "
                                "/ws/chat/{room} or /ws/notifications")
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin, request.headers.get("Host")):
            return self._reject(403, "origin", "origin not allowed")
        limits = self.limits
        if len(self.peers) >= limits.max_connections:
            return self._reject(503, "max_connections", "too many connections",
                                [("Retry-After", "5")])
        ip = ip_of(ws)
        if self.per_ip[ip] >= limits.max_connections_per_ip:
            return self._reject(503, "per_ip", "too many connections from this address",
                                [("Retry-After", "5")])
        query = request.query
        user_id = query.get("user_id")
        token: str | None = None
        if self.router.auth_required:
            user_id = None  # the identity comes from the token
            token = (bearer_token(request.headers.get("Authorization"))
                     or query.get("token") or cookie_value(request.headers, TOKEN_COOKIE))
        elif user_id is not None and not is_valid_user(user_id):
            return self._reject(400, "bad_user_id", "invalid user_id: 1-64 characters from "
                                "A-Z a-z 0-9 _ - . ~ @")
        ws.user_data["chat"] = (route, token, user_id, ip)
        return None

    def _origin_allowed(self, origin: str, host: str | None) -> bool:
        if self.allowed_origins is not None:
            return "*" in self.allowed_origins or origin in self.allowed_origins
        return same_origin(origin, host)

    # --- rawws.Listener ----------------------------------------------------------------------

    def on_connect(self, ws: rawws.Connection) -> None:
        route: Route
        token: str | None
        user_id: str | None
        ip: str
        route, token, user_id, ip = ws.user_data.pop("chat")
        peer = Peer(ws, ip)
        ws.user_data["peer"] = peer
        self.peers.add(peer)
        if self.reading_paused:
            ws.pause_reading()
        self.per_ip[peer.ip] += 1
        self.metrics.connections_opened += 1
        session, actions = self.router.open(peer, route, token=token, user_id=user_id,
                                            address=client_key(ip))
        peer.session = session
        loop = asyncio.get_running_loop()
        if session.id in self.router.pending:
            peer.timers.append(loop.call_later(self.limits.auth_timeout, self._auth_deadline,
                                               peer))
        self._schedule_expiry(peer)
        self.execute(actions)

    def on_message(self, ws: rawws.Connection, message: str | bytes) -> None:
        peer: Peer = ws.user_data["peer"]
        metrics = self.metrics
        metrics.messages_received += 1
        metrics.bytes_received += payload_size(message)
        session = peer.session
        assert session is not None
        was_pending = not session.authenticated
        self.execute(self.router.receive(session, message))
        if was_pending and session.authenticated:
            self._schedule_expiry(peer)

    def on_writable(self, ws: rawws.Connection) -> None:
        peer: Peer | None = ws.user_data.get("peer")
        if peer is not None:
            self._drain(peer)

    def on_close(self, ws: rawws.Connection, code: int, reason: str) -> None:
        peer: Peer | None = ws.user_data.pop("peer", None)
        if peer is None or peer not in self.peers:
            return
        self.peers.discard(peer)
        self.per_ip[peer.ip] -= 1
        if self.per_ip[peer.ip] <= 0:
            del self.per_ip[peer.ip]
        for timer in peer.timers:
            timer.cancel()
        peer.timers.clear()
        self._clear_queue(peer)
        if peer.session is not None:
            self.execute(self.router.close(peer.session))

    # --- timers ------------------------------------------------------------------------------

    def _auth_deadline(self, peer: Peer) -> None:
        if peer.session is not None:
            self.execute(self.router.auth_deadline(peer.session))

    def _schedule_expiry(self, peer: Peer) -> None:
        session = peer.session
        if session is None or session.expires_at is None or session.closing:
            return
        delay = max(0.0, session.expires_at - self._wall())
        loop = asyncio.get_running_loop()
        peer.timers.append(loop.call_later(delay, self._expired, peer))

    def _expired(self, peer: Peer) -> None:
        if peer.session is not None:
            self.execute(self.router.token_expired(peer.session))

    # --- carrying out actions ----------------------------------------------------------------

    def execute(self, actions: list[Action]) -> None:
        """Carry out the router's actions in order (theory of operation, 5): a
        :class:`~rawws.chat.router.Hold` whose ticket is not done parks itself and every
        action after it, also those of later calls, until the ticket is done."""
        held = self._held
        if held:
            held.extend(actions)
            if len(held) > self.max_held:
                self._pause_reading()
            return
        for i, action in enumerate(actions):
            if type(action) is Send:
                self.deliver(action.targets, action.text, action.droppable)
            elif type(action) is Close:
                self.close_peer(action.session.handle, action.code, action.reason)
            else:
                assert type(action) is Hold
                if not action.ticket.done():
                    held.extend(actions[i:])
                    action.ticket.add_done_callback(self._release)
                    if len(held) > self.max_held:
                        self._pause_reading()
                    return
                self.execute(self._then(action))
                if held:  # what it released waits for another ticket: so does the rest
                    held.extend(actions[i + 1:])
                    return

    def when_released(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once every action executed so far is carried out (at once when
        nothing waits for a store write): the HTTP API answers then."""
        if self._held:
            self._held.append(_Call(callback))
        else:
            callback()

    @property
    def held_actions(self) -> int:
        """Actions waiting for a store write to be durable."""
        return len(self._held)

    def _release(self, _: object) -> None:
        try:
            self._release_held()
        finally:
            if self.reading_paused and len(self._held) <= self.max_held // 4:
                self._resume_reading()

    def _pause_reading(self) -> None:
        if not self.reading_paused:
            self.reading_paused = True
            self.logger.warning("%d actions wait for the store: reading no connection until "
                                "it catches up", len(self._held))
            for peer in self.peers:
                peer.ws.pause_reading()

    def _resume_reading(self) -> None:
        self.reading_paused = False
        for peer in self.peers:
            peer.ws.resume_reading()

    def _release_held(self) -> None:
        held = self._held
        while held:
            action = held.popleft()
            if type(action) is Send:
                self.deliver(action.targets, action.text, action.droppable)
            elif type(action) is Close:
                self.close_peer(action.session.handle, action.code, action.reason)
            elif type(action) is Hold:
                if not action.ticket.done():
                    held.appendleft(action)
                    action.ticket.add_done_callback(self._release)
                    return
                held.extendleft(reversed(self._then(action)))
            else:
                assert type(action) is _Call
                try:
                    action.callback()
                except Exception:
                    self.logger.exception("a callback waiting for the store failed")

    def _then(self, hold: Hold) -> list[Action]:
        try:
            return hold.then()
        except Exception:
            self.logger.exception("building the actions after a store write failed")
            return []

    def deliver(self, targets: Sequence[Session], text: str, droppable: bool = False) -> None:
        """Send ``text`` to every target: at once where possible, else through its queue."""
        if len(targets) == 1:
            self._deliver_one(targets[0], text, droppable)
            return
        ready: list[rawws.Connection] = []
        for session in targets:
            if session.closing:
                continue
            peer: Peer = session.handle
            if peer.queue or peer.ws.writing_paused:
                self._enqueue(peer, text, droppable)
            else:
                ready.append(peer.ws)
        if ready:
            sent = rawws.broadcast(ready, text) if len(ready) > 1 else self._send_one(ready[0],
                                                                                    text)
            self._count_sent(sent, text)

    def _deliver_one(self, session: Session, text: str, droppable: bool) -> None:
        # A reply, or anything else for one connection. A reply may be big (a page of
        # history), so it is checked against everything held for this reader, the transport's
        # buffer included: no request makes the server hold more than outbound_budget for a
        # reader that does not read. (Fan-out messages are small: the queue bounds them.)
        if session.closing:
            return
        peer: Peer = session.handle
        ws = peer.ws
        size = payload_size(text)
        if ws.write_buffer_size + peer.queued_bytes + size > self.outbound_budget:
            if droppable and self.slow_consumer == "drop-oldest":
                self.metrics.dropped["slow_consumer"] += 1
            else:
                self._overflow(peer)
            return
        if peer.queue or ws.writing_paused:
            self._enqueue(peer, text, droppable)
        else:
            self._count_sent(self._send_one(ws, text), text)

    def _send_one(self, ws: rawws.Connection, text: str) -> int:
        try:
            ws.send_nowait(text)
        except (rawws.ConnectionClosed, rawws.InvalidState):
            return 0
        return 1

    def _count_sent(self, count: int, text: str) -> None:
        if count:
            self.metrics.messages_sent += count
            self.metrics.bytes_sent += count * payload_size(text)

    def _enqueue(self, peer: Peer, text: str, droppable: bool) -> None:
        limits = self.limits
        size = payload_size(text)
        if (len(peer.queue) >= limits.max_queue
                or peer.queued_bytes + size > limits.max_queue_bytes):
            if self.slow_consumer == "close":
                self._overflow(peer)
                return
            # drop-oldest: make room by dropping the oldest queued notification; with none
            # queued, a new notification is the one dropped, anything else closes.
            if not self._drop_oldest_notification(peer):
                if droppable:
                    self.metrics.dropped["slow_consumer"] += 1
                else:
                    self._overflow(peer)
                return
            if peer.queued_bytes + size > limits.max_queue_bytes:
                self._overflow(peer)  # still over the byte budget after one drop
                return
        peer.queue.append((text, droppable, size))
        peer.queued_bytes += size

    def _drop_oldest_notification(self, peer: Peer) -> bool:
        for i, (_, droppable, size) in enumerate(peer.queue):
            if droppable:
                del peer.queue[i]
                peer.queued_bytes -= size
                self.metrics.dropped["slow_consumer"] += 1
                return True
        return False

    def _overflow(self, peer: Peer) -> None:
        self.metrics.dropped["queue_full"] += len(peer.queue) + 1
        if peer.session is not None:
            peer.session.closing = True
        self.logger.info("connection %s: outbound queue full (slow reader): closing with 1013, "
                         "dropping it in %g s", peer.session.id if peer.session else "?",
                         self.slow_consumer_grace)
        self.close_peer(peer, rawws.CloseCode.TRY_AGAIN_LATER,
                        "outbound queue full: reading too slowly")
        # A reader that caught up gets the close frame within the grace and the closing
        # handshake ends the connection (on_close cancels this timer); a stalled one is dropped.
        loop = asyncio.get_running_loop()
        peer.timers.append(loop.call_later(self.slow_consumer_grace, self._abort_stalled, peer))

    def _abort_stalled(self, peer: Peer) -> None:
        if peer in self.peers:
            self.metrics.aborts["slow_consumer"] += 1
            peer.ws.abort()

    def _clear_queue(self, peer: Peer) -> None:
        peer.queue.clear()
        peer.queued_bytes = 0

    def _drain(self, peer: Peer) -> None:
        ws = peer.ws
        queue = peer.queue
        sent = 0
        size = 0
        while queue and not ws.writing_paused:
            text, _, length = queue.popleft()
            peer.queued_bytes -= length
            try:
                ws.send_nowait(text)
            except (rawws.ConnectionClosed, rawws.InvalidState):
                self._clear_queue(peer)
                break
            sent += 1
            size += length
        self.metrics.messages_sent += sent
        self.metrics.bytes_sent += size

    def close_peer(self, peer: Peer, code: int, reason: str) -> None:
        self._clear_queue(peer)
        if peer.session is not None:
            peer.session.closing = True
        if peer.ws.state is rawws.State.OPEN:
            self.metrics.closes[code] += 1
            peer.ws.close_nowait(code, reason)


def payload_size(message: str | bytes) -> int:
    """The bytes of a message's payload: its UTF-8 length for text (before compression)."""
    return utf8_length(message) if isinstance(message, str) else len(message)


def ip_of(ws: rawws.Connection) -> str:
    """The client's IP address as text: the one the server chose to believe (``client_ip``,
    set by ChatServer from ``X-Forwarded-For`` when the peer is a trusted proxy), else the
    peer's ("" when unknown, e.g. a Unix socket)."""
    believed = ws.user_data.get("client_ip")
    if believed is not None:
        return str(believed)
    address: Any = ws.remote_address
    if isinstance(address, tuple) and address:
        return str(address[0])
    return str(address or "")
