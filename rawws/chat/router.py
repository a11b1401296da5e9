"""The message router: the chat protocol's logic, without I/O.

Owns: sessions (one per WebSocket connection), what each request does, and which text goes to
which sessions. Every entry point returns a list of :class:`Send` and :class:`Close` actions; the
hub (:mod:`rawws.chat.hub`) carries them out on real connections and the tests read them
directly. The router never touches a socket, a timer or the event loop; clocks and randomness are
injected.

Does not own: queues, back-pressure and timers (the hub), HTTP (:mod:`rawws.chat.httpapi`), or
what is remembered and for how long (:mod:`rawws.chat.store`).

Rules:

1. A request is answered exactly once: its reply, or an ``error`` with the request's ``id``
   (``null`` when there is none). Exceptions: a request from an unauthenticated connection that
   is not ``auth`` closes it with 1008, and a refused token closes it with 4001 or 4002.
2. Each outgoing event is encoded to text once and that text is shared by all its recipients.
   When the request carried an ``id``, the requester's copy (which is its reply) is encoded
   separately with the ``id`` added.
3. Every incoming message costs one token of the session's bucket. Without a token the message
   is dropped with ``rate_limited``; every such reply costs a *strike*, and a session out of
   strikes (sustained excess, not one burst) is closed with 1008.
4. Validation happens before any state changes, so an error reply means nothing happened.
"""

from __future__ import annotations

import enum
import json
import secrets
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from ..sansio.codes import CloseCode
from .auth import UNRESTRICTED, Authenticator, AuthError, Grants, Identity
from .idempotency import Idem, Recalled, fingerprint, valid_key
from .limits import Limits, TokenBucket
from .metrics import Metrics
from .store import MemoryStore, RoomLimitReached, Store, Stored
from .tickets import StoreUnavailable, Ticket
from .topics import TopicIndex, split_pattern, split_topic, wildcards_in
from .wire import (
    CLOSE_AUTH_EXPIRED,
    ErrorCode,
    WireError,
    decode_message,
    encode,
    is_valid_room,
    is_valid_user,
    iso_timestamp,
    utf8_length,
)

__all__ = [
    "HTTP_SCOPE",
    "Action",
    "Answer",
    "Close",
    "Cluster",
    "Endpoint",
    "Hold",
    "Route",
    "Router",
    "Send",
    "Session",
    "route_for",
]

CLOSE_POLICY: Final = CloseCode.POLICY_VIOLATION  # 1008, RFC 6455 §7.4.1
#: (other nodes' recipients, the relay taking a record) of a live delivery in a cluster.
_Relayed = tuple[int, "Callable[[Idem | None], Ticket[Any]]"] | None
#: A request ``id`` string: at most this many bytes of UTF-8 (it is echoed in the reply).
MAX_ID_BYTES: Final = 128


class Endpoint(enum.Enum):
    GENERAL = "/ws"  # rooms and topics; also "/" for clients written against a bare server
    CHAT = "/ws/chat/{room}"  # joins {room} on connect; `message` defaults to that room
    NOTIFICATIONS = "/ws/notifications"  # personal notifications only


@dataclass(frozen=True, slots=True)
class Route:
    endpoint: Endpoint
    room: str | None = None


def route_for(path: str) -> Route | None:
    """Map a request path (query string ignored) to a WebSocket endpoint, or None."""
    path = path.split("?", 1)[0]
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    if path in ("/ws", "/"):
        return Route(Endpoint.GENERAL)
    if path == "/ws/notifications":
        return Route(Endpoint.NOTIFICATIONS)
    if path.startswith("/ws/chat/"):
        room = urllib.parse.unquote(path[len("/ws/chat/"):], errors="replace")
        if is_valid_room(room):
            return Route(Endpoint.CHAT, room)
    return None


@dataclass(eq=False, slots=True)
class Session:
    """One WebSocket connection as the router sees it. Hashable by identity."""

    id: str
    handle: Any  # the hub's connection object; the router never uses it
    route: Route
    bucket: TokenBucket
    strikes: TokenBucket
    user: str = ""
    address: str = ""  # the client address its per-address caps count it by
    grants: Grants = UNRESTRICTED
    authenticated: bool = False
    expires_at: float | None = None  # wall-clock expiry of the token, if any
    closing: bool = False  # a Close was issued: ignore further input, skip in fan-out
    rooms: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Send:
    """Deliver ``text`` to each of ``targets``. ``droppable``: a notification that the
    drop-oldest slow-consumer policy may discard."""

    targets: Sequence[Session]
    text: str
    droppable: bool = False


@dataclass(frozen=True, slots=True)
class Close:
    session: Session
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Hold:
    """Actions that wait for a store write: once ``ticket`` is done, ``then()`` returns them
    (reading the ticket's result or failure itself). Every action produced after a Hold waits
    for it too: the hub releases actions in the order the router made them (output commit,
    so that nobody sees a seq before it is durable). The memory store's tickets are done at
    once, so with it the router never emits a Hold."""

    ticket: Ticket[object]
    then: Callable[[], list[Action]]


Action = Send | Close | Hold


class Cluster(Protocol):
    """What the router asks of the other nodes when several processes serve as one
    (:mod:`rawws.chat.bus`, ``rawws serve --broker``). Without one (the default) every
    delivery is local and the router behaves exactly as a single process.

    With one, a room message's fan-out is the cluster's: it delivers every room message, this
    node's own included, to this node's members in the one order of the bus (``exclude``: the
    sender's connection, whose copy is its reply). Live deliveries to connections of other
    nodes (``recipients``) go through :meth:`relay`, whose ticket is done once the delivery
    is in Redis; the router answers then, and delivers locally then (all or nothing)."""

    def append(self, room: str, event: dict[str, Any], now: float, idem: Idem | None,
               exclude: str | None) -> Ticket[Stored]: ...

    def room_recipients(self, room: str) -> int:
        """Connections of other nodes in ``room``."""
        ...

    def user_recipients(self, user: str) -> int: ...

    def topic_recipients(self, topic: str) -> int: ...

    def all_recipients(self) -> int: ...

    def relay(self, kind: str, target: str, data: str, droppable: bool,
              idem: Idem | None, now: float) -> Ticket[Any]:
        """Deliver ``data`` on the other nodes: kind ``u`` to the connections of user
        ``target``, ``t`` to the subscribers of topic ``target`` (``data``: the event without
        its ``seq``, which each node adds), ``b`` to every connection; with ``idem``, its
        record in the same write."""
        ...


@dataclass(slots=True)
class Answer:
    """What an HTTP API request gets, filled in by the router: at once, or when the write it
    made is durable (the HTTP API answers once the hub has released the request's actions).
    ``error``: the code and message of a failure instead; ``replayed``: the body is the one
    the request's idempotency key got the first time."""

    body: dict[str, Any] | None = None
    error: tuple[ErrorCode, str] | None = None
    replayed: bool = False

    def ok(self, body: dict[str, Any]) -> None:
        self.body = body

    def fail(self, code: ErrorCode, message: str, out: list[Action] | None = None) -> None:
        self.error = (code, message)


#: Answers a request with an ``error``: (code, message, the actions to add it to).
Fail = Callable[[ErrorCode, str, list[Action]], None]
#: (session, request, its ``id`` or None (an ``"id": null`` is no id), actions out)
Handler = Callable[[Session, dict[str, Any], Any, list[Action]], None]


def _valid_id(value: object) -> bool:
    if type(value) is str:
        return utf8_length(value) <= MAX_ID_BYTES
    return type(value) is int and -(2**53) < value < 2**53


def _nonnegative_int(value: object) -> bool:
    return type(value) is int and value >= 0


def _offline(data: bytes) -> str:
    """A stored event (encoded JSON object) with ``"offline": true`` added."""
    return data.decode()[:-1] + ',"offline":true}'


def _personal(record: Recalled) -> dict[str, Any]:
    """The answer a personal delivery got, from its idempotency record."""
    if record.data is None:
        return dict(record.extra)  # delivered live: {"status": "sent", "recipients": K}
    return {"status": "queued", "recipients": 0,
            "message_id": json.loads(record.data)["message_id"]}


def _with_id(text: str, rid: Any) -> str:
    """An encoded event (JSON object) with the request's ``"id"`` added last, as
    ``encode({**event, "id": rid})`` would write it."""
    return f'{text[:-1]},"id":{encode(rid)}}}'


#: The idempotency scope of the HTTP API (WebSocket users have ``user:NAME``).
HTTP_SCOPE: Final = "http"


class Router:
    """The chat protocol core. One per server; not thread-safe (one event loop)."""

    def __init__(
        self,
        *,
        store: Store | None = None,
        limits: Limits | None = None,
        authenticator: Authenticator | None = None,
        metrics: Metrics | None = None,
        client_publish: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        token_hex: Callable[[int], str] = secrets.token_hex,
    ) -> None:
        self.limits = limits or Limits()
        self.store: Store = store if store is not None else MemoryStore(self.limits)
        self.authenticator = authenticator
        self.metrics = metrics or Metrics()
        self.client_publish = client_publish
        self._clock = clock
        self._wall = wall
        self._token_hex = token_hex
        self.sessions: dict[str, Session] = {}  # authenticated sessions by connection id
        self.pending: dict[str, Session] = {}  # connections still owing a token
        self.index: TopicIndex[Session] = TopicIndex()
        #: The other nodes (``rawws serve --broker``), or None: a single process.
        self.cluster: Cluster | None = None
        self._handlers: dict[str, Handler] = {
            "join": self._join,
            "history": self._history,
            "leave": self._leave,
            "message": self._message,
            "private": self._private,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "publish": self._publish,
            "ping": self._ping,
            "auth": self._auth_again,
            "rooms": self._rooms,
            "presence": self._presence,
            "ack": self._ack,
        }

    @property
    def auth_required(self) -> bool:
        return self.authenticator is not None

    # --- connection lifecycle ------------------------------------------------------------------

    def open(self, handle: Any, route: Route, *, token: str | None = None,
             user_id: str | None = None, address: str = "") -> tuple[Session, list[Action]]:
        """A connection was accepted. Without auth, ``user_id`` (or a guest name) is the user;
        with auth, ``token`` (from a header, the query or a cookie) is verified now, or, if
        absent, the session waits for an ``auth`` message (the hub enforces the deadline).
        ``address``: the client, as per-address caps count it (rooms created)."""
        now = self._clock()
        limits = self.limits
        session = Session(
            id=self._new_connection_id(),
            handle=handle,
            route=route,
            bucket=TokenBucket(limits.rate, limits.burst, now),
            strikes=TokenBucket(limits.rate_strike_refill, limits.rate_strikes, now),
            address=address,
        )
        out: list[Action] = []
        if self.authenticator is not None:
            if token is None:
                self.pending[session.id] = session
                return session, out
            try:
                identity = self.authenticator.verify(token)
            except AuthError as exc:
                self._close(session, exc.close_code, exc.reason, out)
                return session, out
        elif user_id is not None:
            if not is_valid_user(user_id):
                self._close(session, CLOSE_POLICY, "invalid user_id", out)
                return session, out
            identity = Identity(user_id)
        else:
            identity = Identity(self._guest_name())
        self._admit(session, identity, None, out)
        return session, out

    def close(self, session: Session) -> list[Action]:
        """The connection is gone (closed by either side): forget it, tell the rooms."""
        session.closing = True
        if self.pending.pop(session.id, None) is not None:
            return []
        if self.sessions.pop(session.id, None) is None:
            return []
        out: list[Action] = []
        for room in sorted(session.rooms):
            self._leave_room(session, room, out)
        session.rooms.clear()
        for pattern in session.patterns:
            self.index.remove(pattern, session)
        session.patterns.clear()
        self.store.remove_connection(session.user, session.id)
        return out

    def auth_deadline(self, session: Session) -> list[Action]:
        """The auth timeout fired: close the session if it still has not authenticated."""
        out: list[Action] = []
        if session.id in self.pending and not session.closing:
            self._close(session, CLOSE_POLICY, "authentication timeout", out)
        return out

    def token_expired(self, session: Session) -> list[Action]:
        """The token's ``exp`` passed while connected: close with 4001."""
        out: list[Action] = []
        if session.authenticated and not session.closing:
            self._close(session, CLOSE_AUTH_EXPIRED, "token expired", out)
        return out

    def _new_connection_id(self) -> str:
        while True:
            conn_id = self._token_hex(8)
            if conn_id not in self.sessions and conn_id not in self.pending:
                return conn_id

    def _guest_name(self) -> str:
        for _ in range(8):
            name = "guest-" + self._token_hex(3)
            if not self.store.user_connections(name):
                return name
        return "guest-" + self._token_hex(8)

    def _admit(self, session: Session, identity: Identity, rid: Any, out: list[Action]) -> None:
        self.pending.pop(session.id, None)
        session.user = identity.user
        session.grants = identity.grants
        session.expires_at = identity.expires_at
        session.authenticated = True
        self.sessions[session.id] = session
        self.store.add_connection(session.user, session.id)
        # At least once: the items stay in the inbox until the user acknowledges them (`ack`),
        # so every new connection gets those still unacknowledged.
        inbox = self.store.inbox_pending(session.user, self._wall())
        welcome: dict[str, Any] = {
            "type": "welcome",
            "user_id": session.user,
            "connection_id": session.id,
            "offline_items": len(inbox),
        }
        self._reply(session, welcome, rid, out)
        for item in inbox:
            # Marked, so that a client tells "waited for you" from "just happened".
            out.append(Send([session], _offline(item.data)))
        if session.route.endpoint is Endpoint.CHAT:
            try:
                self._join(session, {"room": session.route.room}, None, out)
            except WireError as exc:
                self._error(session, exc.code, exc.message, None, out)

    def _close(self, session: Session, code: int, reason: str, out: list[Action]) -> None:
        session.closing = True
        out.append(Close(session, code, reason))

    # --- incoming messages ---------------------------------------------------------------------

    def receive(self, session: Session, message: str | bytes) -> list[Action]:
        """One WebSocket message from ``session``: the actions it causes."""
        out: list[Action] = []
        if session.closing:
            return out
        now = self._clock()
        if not session.bucket.take(now):
            if session.strikes.take(now):
                self._error(session, ErrorCode.RATE_LIMITED,
                            f"over {self.limits.rate:g} messages per second; message dropped",
                            None, out)
            else:
                self._close(session, CLOSE_POLICY, "rate limit exceeded", out)
            return out
        if not session.authenticated:
            self._first_message(session, message, out)
            return out
        if type(message) is not str:
            self._error(session, ErrorCode.BAD_JSON, "binary messages are not accepted; "
                        "send JSON text", None, out)
            return out
        if message == "ping":
            out.append(Send([session], '{"type":"pong"}'))
            return out
        rid: Any = None
        try:
            msg = decode_message(message, max_depth=self.limits.max_json_depth)
            if msg.get("id") is not None:
                if not _valid_id(msg["id"]):
                    raise WireError(ErrorCode.BAD_REQUEST, "id must be a string (at most "
                                    f"{MAX_ID_BYTES} bytes of UTF-8) or an integer")
                rid = msg["id"]
            kind = msg["type"] if "type" in msg else msg.get("action")
            if kind is None:
                raise WireError(ErrorCode.BAD_REQUEST, "missing type")
            if type(kind) is not str:
                raise WireError(ErrorCode.BAD_REQUEST, "type must be a string")
            handler = self._handlers.get(kind)
            if handler is None:
                raise WireError(ErrorCode.UNKNOWN_TYPE, f"unknown type {kind[:40]!r}")
            handler(session, msg, rid, out)
        except WireError as exc:
            self._error(session, exc.code, exc.message, rid, out)
        return out

    def _first_message(self, session: Session, message: str | bytes, out: list[Action]) -> None:
        # RFC 6455 §7.4.1: 1008 "policy violation" for anything but a token.
        token: Any = None
        rid: Any = None
        if type(message) is str:
            try:
                msg = decode_message(message, max_depth=self.limits.max_json_depth)
            except WireError:
                msg = {}
            kind = msg["type"] if "type" in msg else msg.get("action")
            # {"token": ...} without a type is accepted too: tutorials' clients send that.
            if kind == "auth" or (kind is None and "token" in msg):
                token = msg.get("token")
                if "id" in msg and _valid_id(msg["id"]):
                    rid = msg["id"]
        if type(token) is not str:
            self._close(session, CLOSE_POLICY, "authentication required", out)
            return
        assert self.authenticator is not None
        try:
            identity = self.authenticator.verify(token)
        except AuthError as exc:
            self._close(session, exc.close_code, exc.reason, out)
            return
        self._admit(session, identity, rid, out)

    # --- replies -------------------------------------------------------------------------------

    def _reply(self, session: Session, event: dict[str, Any], rid: Any,
               out: list[Action]) -> None:
        if rid is not None:
            event["id"] = rid
        out.append(Send([session], encode(event)))

    def _reply_with_history(self, session: Session, event: dict[str, Any], room: str, *,
                            since: int | None, before: int | None, epoch: str | None,
                            limit: int, rid: Any, out: list[Action]) -> None:
        """Reply ``event`` (``joined``, ``history``) with a page of the room's history, the
        whole reply within ``max_reply_bytes``: it counts against the same outbound budget as
        fan-out (the hub's), so no request makes the server hold more for a reader than its
        slow-consumer limit. What does not fit is marked ``more`` and read with ``history``."""
        store = self.store
        seq = store.room_seq(room)
        current = store.room_epoch(room)
        other_stream = since is not None and (since > seq
                                              or (epoch is not None and epoch != current))
        if other_stream:
            # Another stream than the one the client counted in (the room was re-created, or
            # the server lost its history): everything we have of this one is new to it.
            since = 0
        event["seq"] = seq
        event["epoch"] = current
        if rid is not None:
            event["id"] = rid
        # The head is measured first; the page gets the rest (a comma per message, and room
        # for "more", "complete" and the brackets).
        limits = self.limits
        budget = (min(limits.max_reply_bytes, limits.max_queue_bytes)
                  - utf8_length(encode(event)) - limit - 64)
        page = store.history(room, since=since, before=before, limit=limit,
                             max_bytes=max(0, budget))
        event["more"] = page.more
        if since is not None:
            # Some messages after `since` are no longer kept: the client cannot fully recover.
            oldest = page.entries[0][0] if page.entries else seq + 1
            event["complete"] = oldest <= since + 1
            # Whether the client's own position was recovered: its stream still exists and
            # nothing after its `since` is missing.
            event["recovered"] = event["complete"] and not other_stream
        # The stored messages are already encoded: spliced in as they are, never re-encoded.
        head = encode(event)
        history = b",".join([data for _, data in page.entries]).decode()
        out.append(Send([session], f'{head[:-1]},"history":[{history}]}}'))

    def _error(self, session: Session, code: ErrorCode, message: str, rid: Any,
               out: list[Action]) -> None:
        self.metrics.errors[code.value] += 1
        out.append(Send([session], encode(
            {"type": "error", "code": code.value, "message": message, "id": rid})))

    def _members(self, room: str, exclude: Session | None = None) -> list[Session]:
        sessions = self.sessions
        return [
            s for c in self.store.room_connections(room)
            if (s := sessions.get(c)) is not None and s is not exclude
        ]

    def _ws_fail(self, session: Session, rid: Any) -> Fail:
        def fail(code: ErrorCode, message: str, out: list[Action]) -> None:
            self._error(session, code, message, rid, out)
        return fail

    def _then(self, ticket: Ticket[Any], done: Callable[[list[Action]], None],
              out: list[Action], fail: Fail) -> None:
        """Run ``done`` once ``ticket`` is durable: now if it is (the memory store: the
        actions are exactly those of a synchronous store), else in a :class:`Hold`. ``done``
        reads the ticket's result; a store failure (or a refusal it raises as a WireError)
        becomes an error answer instead."""
        if ticket.done():
            self._guarded(done, out, fail)
            return

        def later() -> list[Action]:
            into: list[Action] = []
            self._guarded(done, into, fail)
            return into

        out.append(Hold(ticket, later))

    @staticmethod
    def _guarded(step: Callable[[list[Action]], None], out: list[Action], fail: Fail) -> None:
        """Run ``step``; a store failure or a refusal (WireError) becomes ``fail``."""
        try:
            step(out)
        except StoreUnavailable as exc:
            fail(ErrorCode.UNAVAILABLE, str(exc), out)
        except WireError as exc:
            fail(exc.code, exc.message, out)

    def _idempotent(self, scope: str, key: str | None, request: tuple[Any, ...],
                    out: list[Action], fail: Fail,
                    proceed: Callable[[Idem | None, list[Action]], None],
                    replay: Callable[[Recalled, list[Action]], None]) -> None:
        """Run a request once per idempotency key (rawws.chat.idempotency, rules 2-4):
        ``proceed(idem)`` the first time (its write carries ``idem``), ``replay(record)``
        for the same request again (``request``: the operation and its arguments, whose
        fingerprint tells), ``conflict`` for another request under the key."""
        if key is None:
            self._guarded(lambda into: proceed(None, into), out, fail)
            return
        print_ = fingerprint(*request)
        ticket = self.store.recall(scope, key, self._wall())

        def decide(into: list[Action]) -> None:
            record = ticket.result()
            if record is None:
                proceed(Idem(scope, key, print_, {}), into)
            elif record.fingerprint != print_:
                raise WireError(ErrorCode.CONFLICT, "this idempotency key was used for "
                                "another request; use a new key for a new request")
            else:
                self.metrics.idempotent_replays += 1
                replay(record, into)

        self._then(ticket, decide, out, fail)

    @staticmethod
    def _key_of(msg: dict[str, Any]) -> str | None:
        key = msg.get("idempotency_key")
        if key is not None and not valid_key(key):
            raise WireError(ErrorCode.BAD_REQUEST, "idempotency_key must be 1-255 visible "
                            "ASCII characters")
        return key

    def _user_sessions(self, user: str) -> list[Session]:
        sessions = self.sessions
        return [s for c in self.store.user_connections(user) if (s := sessions.get(c)) is not None]

    def _check_size(self, value: object, what: str) -> None:
        # Bytes of UTF-8, as sent: a string's own, or the JSON text of any other value.
        size = utf8_length(value if type(value) is str else encode(value))
        if size > self.limits.max_content_size:
            raise WireError(ErrorCode.TOO_LARGE,
                            f"{what} is {size} bytes; the limit is {self.limits.max_content_size}")

    def _room_of(self, session: Session, msg: dict[str, Any]) -> str:
        room = msg.get("room")
        if room is None and session.route.endpoint is Endpoint.CHAT:
            room = session.route.room
        if room is None:
            raise WireError(ErrorCode.BAD_REQUEST, "missing room")
        if not is_valid_room(room):
            raise WireError(ErrorCode.BAD_REQUEST, "invalid room name")
        assert isinstance(room, str)
        return room

    def _forbid_on_notifications(self, session: Session, what: str) -> None:
        if session.route.endpoint is Endpoint.NOTIFICATIONS:
            raise WireError(ErrorCode.FORBIDDEN,
                            f"{what} is not available on /ws/notifications; use /ws")

    # --- handlers (validate everything, then change state) -------------------------------------

    def _ping(self, session: Session, msg: dict[str, Any], rid: Any, out: list[Action]) -> None:
        self._reply(session, {"type": "pong"}, rid, out)

    def _auth_again(self, session: Session, msg: dict[str, Any], rid: Any,
                    out: list[Action]) -> None:
        raise WireError(ErrorCode.BAD_REQUEST, "already authenticated")

    def _join(self, session: Session, msg: dict[str, Any], rid: Any, out: list[Action]) -> None:
        self._forbid_on_notifications(session, "join")
        room = self._room_of(session, msg)
        since = msg.get("since")
        if since is not None and not _nonnegative_int(since):
            raise WireError(ErrorCode.BAD_REQUEST, "since must be a non-negative integer")
        epoch = msg.get("epoch")
        if epoch is not None and type(epoch) is not str:
            raise WireError(ErrorCode.BAD_REQUEST, "epoch must be a string")
        if not session.grants.may_join(room):
            raise WireError(ErrorCode.FORBIDDEN, f"your token does not allow room {room!r}")
        already = room in session.rooms
        if not already and len(session.rooms) >= self.limits.max_rooms_per_connection:
            raise WireError(ErrorCode.FORBIDDEN, "too many rooms on this connection "
                            f"(max {self.limits.max_rooms_per_connection})")
        try:
            arrived = self.store.join(room, session.user, session.id, address=session.address)
        except RoomLimitReached as exc:
            raise WireError(ErrorCode.FORBIDDEN, str(exc)) from None
        session.rooms.add(room)
        all_users = self.store.room_users(room)
        users = all_users[: self.limits.max_users_listed]
        joined: dict[str, Any] = {
            "type": "joined", "room": room, "users": users, "user_count": len(all_users),
        }
        limit = self.limits.history_on_join if since is None else self.limits.history_size
        self._reply_with_history(session, joined, room, since=since, before=None, epoch=epoch,
                                 limit=limit, rid=rid, out=out)
        if arrived and not already:
            others = self._members(room, exclude=session)
            if others:
                out.append(Send(others, encode({
                    "type": "user_joined", "room": room, "user_id": session.user,
                    "users": users, "user_count": len(all_users),
                    "timestamp": iso_timestamp(self._wall()),
                })))

    def _history(self, session: Session, msg: dict[str, Any], rid: Any,
                 out: list[Action]) -> None:
        # A page of a room's history: for a client catching up after a `joined` (or a
        # `history`) with "more": true, or scrolling back. Reading needs what joining needs.
        self._forbid_on_notifications(session, "history")
        room = self._room_of(session, msg)
        since = msg.get("since")
        before = msg.get("before")
        limit = msg.get("limit", self.limits.history_size)
        epoch = msg.get("epoch")
        for name, value in (("since", since), ("before", before)):
            if value is not None and not _nonnegative_int(value):
                raise WireError(ErrorCode.BAD_REQUEST, f"{name} must be a non-negative integer")
        if since is not None and before is not None:
            raise WireError(ErrorCode.BAD_REQUEST, "give since or before, not both")
        if type(limit) is not int or limit < 1:
            raise WireError(ErrorCode.BAD_REQUEST, "limit must be a positive integer")
        if epoch is not None and type(epoch) is not str:
            raise WireError(ErrorCode.BAD_REQUEST, "epoch must be a string")
        if not session.grants.may_join(room):
            raise WireError(ErrorCode.FORBIDDEN, f"your token does not allow room {room!r}")
        if not self.store.has_room(room):
            raise WireError(ErrorCode.NOT_FOUND, f"no room {room!r}")
        self._reply_with_history(session, {"type": "history", "room": room}, room, since=since,
                                 before=before, epoch=epoch,
                                 limit=min(limit, self.limits.history_size), rid=rid, out=out)

    def _rooms(self, session: Session, msg: dict[str, Any], rid: Any, out: list[Action]) -> None:
        # The rooms this session could join: a token's `rooms` claim also limits which room
        # names it learns. Sorted by name, at most max_rooms_listed.
        self._forbid_on_notifications(session, "rooms")
        cap = self.limits.max_rooms_listed
        counts = self.store.room_counts()
        grants = session.grants
        visible: list[tuple[str, int]]
        if grants.rooms is None:
            visible = list(counts[: cap + 1])
        else:
            visible = []
            for entry in counts:
                if grants.may_join(entry[0]):
                    visible.append(entry)
                    if len(visible) > cap:
                        break
        self._reply(session, {
            "type": "rooms",
            "rooms": [{"room": name, "user_count": count} for name, count in visible[:cap]],
            "truncated": len(visible) > cap,
        }, rid, out)

    def _presence(self, session: Session, msg: dict[str, Any], rid: Any,
                  out: list[Action]) -> None:
        # Whether users are online (have at least one connection). Nothing new to a client:
        # a `private` to anyone already answers "sent" or "queued".
        self._forbid_on_notifications(session, "presence")
        users = msg.get("users")
        if type(users) is not list:
            raise WireError(ErrorCode.BAD_REQUEST, "users must be a list of user names")
        if len(users) > self.limits.max_presence_users:
            raise WireError(ErrorCode.TOO_LARGE, "too many users in one request "
                            f"(max {self.limits.max_presence_users})")
        for name in users:
            if not is_valid_user(name):
                raise WireError(ErrorCode.BAD_REQUEST, "invalid user name in users")
        store = self.store
        self._reply(session, {
            "type": "presence",
            "online": {name: bool(store.user_connections(name)) for name in users},
        }, rid, out)

    def _leave(self, session: Session, msg: dict[str, Any], rid: Any, out: list[Action]) -> None:
        room = self._room_of(session, msg)
        if room not in session.rooms:
            raise WireError(ErrorCode.NOT_FOUND, f"not in room {room!r}")
        session.rooms.discard(room)
        self._reply(session, {"type": "left", "room": room}, rid, out)
        self._leave_room(session, room, out)

    def _leave_room(self, session: Session, room: str, out: list[Action]) -> None:
        if self.store.leave(room, session.user, session.id):
            others = self._members(room, exclude=session)
            if others:
                users = self.store.room_users(room)
                out.append(Send(others, encode({
                    "type": "user_left", "room": room, "user_id": session.user,
                    "users": users[: self.limits.max_users_listed], "user_count": len(users),
                    "timestamp": iso_timestamp(self._wall()),
                })))

    def _message(self, session: Session, msg: dict[str, Any], rid: Any,
                 out: list[Action]) -> None:
        room = self._room_of(session, msg)
        if "content" not in msg:
            raise WireError(ErrorCode.BAD_REQUEST, "missing content")
        content = msg["content"]
        self._check_size(content, "content")
        key = self._key_of(msg)
        if room not in session.rooms:
            raise WireError(ErrorCode.NOT_FOUND, f"not in room {room!r}; join it first")

        def proceed(idem: Idem | None, into: list[Action]) -> None:
            # Without an id, the sender's copy is the same text as everyone's (one encoding).
            # In a cluster the fan-out is the cluster's, in bus order (Cluster).
            excluded = session if rid is not None else None
            targets = self._members(room, exclude=excluded) if self.cluster is None else []
            ticket = self._append(room, session.user, content, idem,
                                  excluded.id if excluded is not None else None)

            def done(into: list[Action]) -> None:
                stored = ticket.result()
                if targets:
                    into.append(Send(targets, stored.text))
                if rid is not None:
                    into.append(Send([session], _with_id(stored.text, rid)))

            self._then(ticket, done, into, fail)

        def replay(record: Recalled, into: list[Action]) -> None:
            assert record.data is not None
            text = record.data.decode()
            into.append(Send([session], text if rid is None else _with_id(text, rid)))

        fail = self._ws_fail(session, rid)
        self._idempotent(f"user:{session.user}", key, ("message", room, content),
                         out, fail, proceed, replay)

    def _append(self, room: str, user: str, content: Any, idem: Idem | None,
                exclude: str | None = None) -> Ticket[Stored]:
        """Store a room message (the store adds seq, epoch and message_id)."""
        now = self._wall()
        event = {"type": "message", "room": room, "user_id": user, "content": content,
                 "timestamp": iso_timestamp(now)}
        try:
            if self.cluster is not None:
                return self.cluster.append(room, event, now, idem, exclude)
            return self.store.append(room, event, now, idem)
        except RoomLimitReached as exc:
            raise WireError(ErrorCode.FORBIDDEN, str(exc)) from None

    def _private(self, session: Session, msg: dict[str, Any], rid: Any,
                 out: list[Action]) -> None:
        self._forbid_on_notifications(session, "private")
        target = msg.get("target")
        if target is None:
            raise WireError(ErrorCode.BAD_REQUEST, "missing target")
        if not is_valid_user(target):
            raise WireError(ErrorCode.BAD_REQUEST, "invalid target user name")
        if "content" not in msg:
            raise WireError(ErrorCode.BAD_REQUEST, "missing content")
        content = msg["content"]
        self._check_size(content, "content")
        key = self._key_of(msg)
        fail = self._ws_fail(session, rid)

        def answer(reply: dict[str, Any], into: list[Action]) -> None:
            self._reply(session, {"type": "private_ack", "target": target, **reply}, rid, into)

        def proceed(idem: Idem | None, into: list[Action]) -> None:
            event = {"type": "private", "from": session.user, "content": content,
                     "timestamp": iso_timestamp(self._wall())}
            self._deliver_personal(target, event, False, idem, into, fail, answer)

        self._idempotent(f"user:{session.user}", key, ("private", target, content),
                         out, fail, proceed, lambda record, into: answer(_personal(record), into))

    def _deliver_personal(self, user: str, event: dict[str, Any], droppable: bool,
                          idem: Idem | None, out: list[Action], fail: Fail,
                          answer: Callable[[dict[str, Any], list[Action]], None]) -> None:
        """To every connection of ``user`` now, or, with none, into the user's inbox. The
        answer: ``{"status": "sent", "recipients": K}`` or ``{"status": "queued",
        "recipients": 0, "message_id": M}``, once durable."""
        targets = self._user_sessions(user)
        remote = self.cluster.user_recipients(user) if self.cluster is not None else 0
        now = self._wall()
        if targets or remote:
            text = encode(event)
            sent = {"status": "sent", "recipients": len(targets) + remote}
            ticket: Ticket[Any]
            if remote:
                assert self.cluster is not None
                ticket = self.cluster.relay("u", user, text, droppable,
                                            idem and idem._replace(extra=sent), now)
            elif idem is None:
                out.append(Send(targets, text, droppable))
                answer(sent, out)
                return
            else:
                ticket = self.store.remember(idem._replace(extra=sent), now)

            def delivered(into: list[Action]) -> None:
                ticket.result()
                if targets:
                    into.append(Send(targets, text, droppable))
                answer(sent, into)

            self._then(ticket, delivered, out, fail)
            return
        queued = self.store.inbox_push(user, event, now, idem)

        def stored(into: list[Action]) -> None:
            answer({"status": "queued", "recipients": 0,
                    "message_id": queued.result().message_id}, into)

        self._then(queued, stored, out, fail)

    def _topic_list(self, msg: dict[str, Any]) -> list[str]:
        topics = msg.get("topics")
        if topics is None and type(msg.get("topic")) is str:
            topics = [msg["topic"]]
        if type(topics) is not list or not topics:
            raise WireError(ErrorCode.BAD_REQUEST, "topics must be a non-empty list of strings")
        if len(topics) > self.limits.max_topics_per_request:
            raise WireError(ErrorCode.TOO_LARGE, "too many topics in one request "
                            f"(max {self.limits.max_topics_per_request})")
        for pattern in topics:
            try:
                split_pattern(pattern)
            except ValueError as exc:
                raise WireError(ErrorCode.BAD_REQUEST, str(exc)) from None
        return list(dict.fromkeys(topics))  # de-duplicated, in order

    def _subscribe(self, session: Session, msg: dict[str, Any], rid: Any,
                   out: list[Action]) -> None:
        self._forbid_on_notifications(session, "subscribe")
        topics = self._topic_list(msg)
        limits = self.limits
        for pattern in topics:
            # What one pattern may cost a publish (topics.py, rule 3): its depth and wildcards.
            depth = pattern.count(".") + 1
            if depth > limits.max_pattern_depth:
                raise WireError(ErrorCode.TOO_LARGE, f"topic pattern {pattern[:80]!r} has "
                                f"{depth} segments (max {limits.max_pattern_depth})")
            wild = wildcards_in(pattern)
            if wild > limits.max_pattern_wildcards:
                raise WireError(ErrorCode.TOO_LARGE, f"topic pattern {pattern[:80]!r} has "
                                f"{wild} wildcards (max {limits.max_pattern_wildcards})")
            if not session.grants.may_subscribe(pattern):
                raise WireError(ErrorCode.FORBIDDEN,
                                f"your token does not allow topic {pattern!r}")
        new = [p for p in topics if p not in session.patterns]
        if len(session.patterns) + len(new) > limits.max_topics_per_connection:
            raise WireError(ErrorCode.FORBIDDEN, "too many topics on this connection "
                            f"(max {limits.max_topics_per_connection})")
        index = self.index
        if len(index) + len(new) > limits.max_patterns:
            raise WireError(ErrorCode.FORBIDDEN, "the server's subscription budget is full "
                            f"(max {limits.max_patterns} subscriptions)")
        shapes = index.new_wildcard_shapes(new) if new else 0
        if shapes and index.wildcard_shapes + shapes > limits.max_pattern_shapes:
            raise WireError(ErrorCode.FORBIDDEN, "too many distinct wildcard pattern shapes on "
                            f"this server (max {limits.max_pattern_shapes}; a shape is the "
                            "number of segments and where the '*' are): subscribe to a literal "
                            "topic or to a pattern of a shape in use")
        for pattern in new:
            session.patterns.add(pattern)
            self.index.add(pattern, session)
        self._reply(session, {"type": "subscribed", "topics": topics}, rid, out)

    def _unsubscribe(self, session: Session, msg: dict[str, Any], rid: Any,
                     out: list[Action]) -> None:
        topics = self._topic_list(msg)
        for pattern in topics:
            if pattern in session.patterns:
                session.patterns.discard(pattern)
                self.index.remove(pattern, session)
        self._reply(session, {"type": "unsubscribed", "topics": topics}, rid, out)

    def _publish(self, session: Session, msg: dict[str, Any], rid: Any,
                 out: list[Action]) -> None:
        self._forbid_on_notifications(session, "publish")
        topic = msg.get("topic")
        try:
            split_topic(topic)
        except ValueError as exc:
            raise WireError(ErrorCode.BAD_REQUEST, str(exc)) from None
        assert isinstance(topic, str)
        if "message" not in msg:
            raise WireError(ErrorCode.BAD_REQUEST, "missing message")
        message = msg["message"]
        self._check_size(message, "message")
        if not self.client_publish:
            raise WireError(ErrorCode.FORBIDDEN, "publishing is disabled on this server")
        if not session.grants.may_publish(topic):
            raise WireError(ErrorCode.FORBIDDEN, f"your token does not allow publishing "
                            f"to {topic!r}")
        key = self._key_of(msg)
        fail = self._ws_fail(session, rid)

        def answer(recipients: int, into: list[Action]) -> None:
            self._reply(session, {"type": "published", "topic": topic,
                                  "recipients": recipients}, rid, into)

        self._idempotent(
            f"user:{session.user}", key, ("publish", topic, message), out, fail,
            lambda idem, into: self._fan_out_topic(topic, message, idem, into, fail, answer),
            lambda record, into: answer(record.extra.get("recipients", 0), into))

    def _fan_out_topic(self, topic: str, message: Any, idem: Idem | None, out: list[Action],
                       fail: Fail, answer: Callable[[int, list[Action]], None]) -> None:
        subscribers = [s for s in self.index.match(topic) if not s.closing]
        event: dict[str, Any] = {"type": "notification", "topic": topic, "message": message,
                                 "timestamp": iso_timestamp(self._wall())}
        # In a cluster every node numbers what it delivers: the other nodes get no seq.
        relayed = self._relayed("t", topic, event, self.cluster.topic_recipients(topic)
                                if self.cluster is not None else 0)
        event["seq"] = self.store.next_topic_seq(topic)
        self._live(subscribers, event, idem, out, fail, answer, relayed)

    def _relayed(self, kind: str, target: str, event: dict[str, Any], remote: int
                 ) -> _Relayed:
        cluster = self.cluster
        if cluster is None or not remote:
            return None
        text = encode(event)
        now = self._wall()
        return remote, lambda idem: cluster.relay(kind, target, text, True, idem, now)

    def _live(self, targets: list[Session], event: dict[str, Any], idem: Idem | None,
              out: list[Action], fail: Fail, answer: Callable[[int, list[Action]], None],
              relayed: _Relayed = None) -> None:
        """A notification to connections, nothing stored; with an idempotency key, only once
        its record is durable (a crash before that delivers nothing, and a retry delivers).
        ``relayed``: its recipients on other nodes, reached once the relay is in Redis."""
        recipients = len(targets) + (relayed[0] if relayed is not None else 0)

        def deliver(into: list[Action]) -> None:
            if targets:
                into.append(Send(targets, encode(event), True))
            answer(recipients, into)

        record = idem and idem._replace(extra={"recipients": recipients})
        ticket: Ticket[Any]
        if relayed is not None:
            ticket = relayed[1](record)
        elif record is None:
            deliver(out)
            return
        else:
            ticket = self.store.remember(record, self._wall())

        def remembered(into: list[Action]) -> None:
            ticket.result()
            deliver(into)

        self._then(ticket, remembered, out, fail)

    def _ack(self, session: Session, msg: dict[str, Any], rid: Any, out: list[Action]) -> None:
        """Offline items received: never delivered again (rawws.chat.store, message identity)."""
        ids = msg.get("message_ids")
        if ids is None and "message_id" in msg:
            ids = [msg["message_id"]]
        if type(ids) is not list or not all(type(i) is str and 0 < len(i) <= 128 for i in ids):
            raise WireError(ErrorCode.BAD_REQUEST, "message_id must be a string, or "
                            "message_ids a list of strings (as the items carried them)")
        if len(ids) > self.limits.max_acks_per_request:
            raise WireError(ErrorCode.TOO_LARGE, "too many message_ids in one ack "
                            f"(max {self.limits.max_acks_per_request})")
        ticket = self.store.inbox_ack(session.user, ids)

        def acked(into: list[Action]) -> None:
            self._reply(session, {"type": "acked", "count": ticket.result()}, rid, into)

        self._then(ticket, acked, out, self._ws_fail(session, rid))

    # --- entry points for the HTTP API (inputs already validated by the caller) ----------------
    #
    # Each fills in an Answer (now, or once its write is durable) and returns the actions; the
    # HTTP API executes them and answers when the hub has released them. ``key``: the
    # request's Idempotency-Key.

    def notify(self, user: str, message: Any, answer: Answer,
               key: str | None = None) -> list[Action]:
        """A personal notification: ``{"status": "sent", "recipients": K}``, or, the user
        having no connection, ``{"status": "queued", "recipients": 0, "message_id": M}``."""
        out: list[Action] = []

        def proceed(idem: Idem | None, into: list[Action]) -> None:
            event = {"type": "notification", "message": message,
                     "timestamp": iso_timestamp(self._wall())}
            self._deliver_personal(user, event, True, idem, into, answer.fail,
                                   lambda reply, _: answer.ok(reply))

        self._idempotent(HTTP_SCOPE, key, ("notify", user, message), out,
                         answer.fail, proceed, self._replayed(answer, _personal))
        return out

    def broadcast(self, message: Any, answer: Answer, key: str | None = None) -> list[Action]:
        """A notification to every authenticated connection: ``{"status": "sent",
        "recipients": K}``."""
        out: list[Action] = []

        def proceed(idem: Idem | None, into: list[Action]) -> None:
            targets = [s for s in self.sessions.values() if not s.closing]
            event = {"type": "notification", "message": message,
                     "timestamp": iso_timestamp(self._wall())}
            self._live(targets, event, idem, into, answer.fail,
                       lambda n, _: answer.ok({"status": "sent", "recipients": n}),
                       self._relayed("b", "", event, self.cluster.all_recipients()
                                     if self.cluster is not None else 0))

        self._idempotent(HTTP_SCOPE, key, ("broadcast", message), out, answer.fail,
                         proceed, self._replayed(answer, lambda r: {
                             "status": "sent", "recipients": r.extra.get("recipients", 0)}))
        return out

    def publish(self, topic: str, message: Any, answer: Answer, key: str | None = None, *,
                scope: str = HTTP_SCOPE) -> list[Action]:
        """A topic notification: ``{"status": "sent", "topic": T, "recipients": K}``."""
        out: list[Action] = []

        def reply(recipients: int) -> dict[str, Any]:
            return {"status": "sent", "topic": topic, "recipients": recipients}

        self._idempotent(
            scope, key, ("publish", topic, message), out, answer.fail,
            lambda idem, into: self._fan_out_topic(topic, message, idem, into, answer.fail,
                                                   lambda n, _: answer.ok(reply(n))),
            self._replayed(answer, lambda r: reply(r.extra.get("recipients", 0))))
        return out

    def post(self, room: str, user: str, content: Any, answer: Answer,
             key: str | None = None, *, scope: str = HTTP_SCOPE) -> list[Action]:
        """A room message from outside: ``{"status": "sent", "room": R, "seq": N,
        "message_id": M, "recipients": K}`` (the room is created if needed; at the room limit
        the answer is the ``unavailable`` error)."""
        out: list[Action] = []

        def proceed(idem: Idem | None, into: list[Action]) -> None:
            targets = self._members(room)
            recipients = len(targets)
            if self.cluster is not None:  # the cluster fans out, on every node
                recipients += self.cluster.room_recipients(room)
                targets = []
            try:
                ticket = self._append(room, user, content, idem and idem._replace(
                    extra={"recipients": recipients}))
            except WireError as exc:
                raise WireError(ErrorCode.UNAVAILABLE, exc.message) from None

            def done(into: list[Action]) -> None:
                stored = ticket.result()
                if targets:
                    into.append(Send(targets, stored.text))
                answer.ok({"status": "sent", "room": room, "seq": stored.seq,
                           "message_id": stored.message_id, "recipients": recipients})

            self._then(ticket, done, into, answer.fail)

        def replayed(record: Recalled) -> dict[str, Any]:
            assert record.data is not None
            event = json.loads(record.data)
            return {"status": "sent", "room": room, "seq": event["seq"],
                    "message_id": event["message_id"],
                    "recipients": record.extra.get("recipients", 0)}

        self._idempotent(scope, key, ("post", room, user, content), out,
                         answer.fail, proceed, self._replayed(answer, replayed))
        return out

    @staticmethod
    def _replayed(answer: Answer, body: Callable[[Recalled], dict[str, Any]]
                  ) -> Callable[[Recalled, list[Action]], None]:
        def replay(record: Recalled, into: list[Action]) -> None:
            answer.ok(body(record))
            answer.replayed = True
        return replay

    # --- what the cluster delivers on this node (rawws.chat.bus) --------------------------------

    def room_members(self, room: str, exclude: str | None = None) -> list[Session]:
        """This node's sessions in ``room`` (but the connection ``exclude``)."""
        return self._members(room, self.sessions.get(exclude) if exclude else None)

    def user_sessions(self, user: str) -> list[Session]:
        """This node's sessions of ``user``."""
        return self._user_sessions(user)

    def live_sessions(self) -> list[Session]:
        """Every authenticated session of this node (a broadcast's recipients)."""
        return [s for s in self.sessions.values() if not s.closing]

    def topic_delivery(self, topic: str, event: dict[str, Any]) -> tuple[list[Session], str]:
        """This node's subscribers of ``topic`` and the notification numbered for them."""
        subscribers = [s for s in self.index.match(topic) if not s.closing]
        event["seq"] = self.store.next_topic_seq(topic)
        return subscribers, encode(event)

    def membership_changed(self, room: str, user: str, joined: bool) -> list[Action]:
        """``user`` (connected to another node) arrived in or left ``room``: the event this
        node's members get, as :meth:`_join` / :meth:`_leave_room` make it."""
        others = self._members(room)
        if not others:
            return []
        users = self.store.room_users(room)
        return [Send(others, encode({
            "type": "user_joined" if joined else "user_left", "room": room, "user_id": user,
            "users": users[: self.limits.max_users_listed], "user_count": len(users),
            "timestamp": iso_timestamp(self._wall()),
        }))]

    # --- read-only views (HTTP API) ------------------------------------------------------------

    def rooms_summary(self) -> list[dict[str, Any]]:
        store = self.store
        return [
            {"room": name, "user_count": len(store.room_users(name)), "seq": store.room_seq(name)}
            for name in store.room_names()
        ]

    def room_detail(self, room: str) -> dict[str, Any] | None:
        store = self.store
        if not store.has_room(room):
            return None
        page = store.history(room, since=None, limit=self.limits.history_on_join)
        return {
            "room": room,
            "users": store.room_users(room),
            "history": [json.loads(data) for _, data in page.entries],
            "seq": store.room_seq(room),
            "epoch": store.room_epoch(room),
        }

    def online_users(self) -> list[str]:
        return sorted(self.store.online_users())

    def topic_count(self) -> int:
        return len(self.index.patterns())
