"""``ChatClient``: the chat protocol from the client side, with reconnection that loses nothing.

Owns: one background task that connects, reads, and reconnects with exponential backoff and
jitter; re-joining rooms with ``since`` (the last ``seq`` seen per room) and re-subscribing
topics after each reconnect; request/reply matching by ``id``; the event stream.

Usage::

    async with ChatClient("ws://127.0.0.1:8765/ws", user_id="alice") as chat:
        await chat.join("lobby")
        await chat.send("lobby", "hello")
        async for event in chat:
            print(event)

Rules:

1. Every JSON object the server sends is an event, in order, replies included. Three kinds of
   events are made by the client: ``{"type": "disconnected", "code": C, "reason": R}`` when a
   connection is lost and another attempt follows; after a re-join, each missed room message
   as an ordinary ``message`` event (taken from the ``joined`` history, oldest first); and
   ``{"type": "gap", ...}`` when messages of a room cannot be recovered (rule 5). Room
   messages whose ``seq`` was already seen are never yielded twice.
2. Request methods (``join``, ``send``...) send a request with a fresh ``id`` and return the
   matching reply; an ``error`` reply raises :class:`ChatError`. They wait for a connection if
   there is none (up to ``request_timeout``).
3. A refused token (4001, 4002), a policy close (1008) or a handshake refused with a 4xx status
   ends the client: reconnecting could not help. Anything else is retried.
4. The event queue is bounded: a consumer that stops iterating stops the reader, which stops
   reading the socket (back-pressure reaches the server, whose own limit then applies).
5. A room's position is ``(epoch, seq)``: the server names each room's message stream with an
   epoch, and a stream whose history was lost (a restart of a server that keeps history in
   memory) starts again at seq 1 under a new epoch. When the epoch of a room changes, the
   client yields ``{"type": "gap", "room": R, "reason": "reset", "epoch": NEW,
   "previous_epoch": OLD, "last_seq": N}`` (messages after seq N of the old stream are lost
   for good), starts counting again, and yields the new stream's messages from seq 1. When a
   re-join finds that messages after its position are no longer kept (``complete: false``),
   it yields ``{"type": "gap", "room": R, "reason": "trimmed", "epoch": E, "last_seq": N,
   "next_seq": M}``: seqs N+1 .. M-1 are gone. The gap event comes before the messages that
   follow it.
6. Offline items (``"offline": true``, with a ``message_id``) are delivered by the server at
   least once: again on every connection until acknowledged. With ``auto_ack=True`` (the
   default) the client acknowledges an item once the application is done with it: when the
   application asks for the next event (the body of its ``async for`` loop, or the code after
   ``next_event()``, returned) the items yielded before are acknowledged, in one ``ack``
   request per batch, sent again after a reconnect if the connection was lost first. An item
   the server delivers again (its ack had not arrived before a disconnect or a restart) is not
   yielded twice: the client remembers the last 10,000 message_ids it received, and
   acknowledges such an item at once if the application was done with it. With
   ``auto_ack=False`` the application calls :meth:`ChatClient.ack` itself (after it has stored
   the item, say): until it does, the server delivers the item again to every new connection
   (this client ignores those copies; a new client gets it again). The server's ``acked``
   replies to the automatic acknowledgements are not events.
7. ``send``, ``private`` and ``publish`` carry an ``idempotency_key`` (a fresh random one
   unless given): when the connection is lost before the reply, they are sent again with the
   same key once the client has reconnected (until ``request_timeout``), and the server
   answers the retry with the first reply instead of posting twice. So a message is posted
   once even across a server restart, with the seq it was first given.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import random
import secrets
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Callable
from ssl import SSLContext
from types import TracebackType
from typing import Any, Final

import rawws

from .wire import CLOSE_AUTH_EXPIRED, CLOSE_AUTH_INVALID

__all__ = ["FATAL_CLOSE_CODES", "ChatClient", "ChatError"]

_logger = logging.getLogger("rawws.chat.client")

#: Close codes after which reconnecting cannot help.
FATAL_CLOSE_CODES: Final = frozenset({rawws.CloseCode.POLICY_VIOLATION, CLOSE_AUTH_EXPIRED,
                                      CLOSE_AUTH_INVALID})
_AUTH_CLOSE_CODES: Final = (CLOSE_AUTH_EXPIRED, CLOSE_AUTH_INVALID)
_END: Final = object()


class ChatError(Exception):
    """The server answered a request with an ``error`` (``code``: bad_request, forbidden...),
    or the client stopped for good (``code``: ``closed``, ``auth``, ``rejected``, ``tls``: the
    server's certificate is not trusted, which retrying cannot change)."""

    def __init__(self, code: str, message: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply


class ChatClient:
    """A reconnecting chat client. See the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        user_id: str | None = None,
        reconnect: bool = True,
        backoff_initial: float = 0.2,
        backoff_factor: float = 2.0,
        backoff_max: float = 10.0,
        request_timeout: float = 10.0,
        open_timeout: float = 10.0,
        max_events: int = 10_000,
        jitter: Callable[[], float] = random.random,
        compression: str | None = "deflate",
        ssl: SSLContext | None = None,
        auto_ack: bool = True,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        path = parts.path if parts.path not in ("", "/") else "/ws"
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if user_id is not None:
            query = [(k, v) for k, v in query if k != "user_id"] + [("user_id", user_id)]
        self.url = urllib.parse.urlunsplit(
            (parts.scheme, parts.netloc, path, urllib.parse.urlencode(query), ""))
        self._token = token
        #: permessage-deflate offered to the server ("deflate", the default) or not (None).
        self.compression = compression
        #: For wss:// (None: a default context): e.g. a private CA, a client certificate.
        self.ssl = ssl
        self.reconnect = reconnect
        self.backoff_initial = backoff_initial
        self.backoff_factor = backoff_factor
        self.backoff_max = backoff_max
        self.request_timeout = request_timeout
        self.open_timeout = open_timeout
        self._jitter = jitter
        self._events: asyncio.Queue[Any] = asyncio.Queue(max_events)
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ws: rawws.ClientConnection | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._failure: ChatError | None = None
        #: Rooms to be in, with the last seq seen in each (0: none yet).
        self.rooms: dict[str, int] = {}
        #: The stream epoch each room's seq in :attr:`rooms` counts in (rule 5).
        self.epochs: dict[str, str] = {}
        #: Topic patterns to be subscribed to.
        self.topics: list[str] = []
        self.user_id: str | None = None
        self.connection_id: str | None = None
        self.connections = 0  # how many times a connection was established
        #: Acknowledge offline items once the application is done with them (rule 6).
        self.auto_ack = auto_ack
        self._consumed: list[str] = []  # yielded offline items the application is done with
        self._unacked: list[str] = []  # acknowledgements not yet sent (or lost in a reconnect)
        self._ack_ids: set[str] = set()  # request ids of the client's own ack requests
        self._ack_scheduled = False
        self._last_yielded: str | None = None  # message_id of the offline item just yielded
        #: message_ids of offline items received (rule 6: a redelivery is not yielded again).
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._queued: set[str] = set()  # received, not yet yielded (nor acknowledged)

    # --- lifecycle ---------------------------------------------------------------------------

    async def connect(self) -> ChatClient:
        """Start the client and wait for the first connection (or its fatal failure)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        waiter = asyncio.ensure_future(self._connected.wait())
        try:
            await asyncio.wait([waiter, self._task], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self._failure is not None:
            raise self._failure
        return self

    async def close(self) -> None:
        """Close the connection (1000) and stop; iteration ends after the queued events."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            await ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._finish()

    async def __aenter__(self) -> ChatClient:
        return await self.connect()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def websocket(self) -> rawws.ClientConnection | None:
        """The current connection, if any (tests use it to cut the line)."""
        return self._ws

    # --- events ------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            self._done_with_last()  # the loop body returned: the application is done with it
            event = await self._events.get()
            if event is _END:
                self._events.put_nowait(_END)  # later iterations end too
                if self._failure is not None and not self._closing:
                    raise self._failure
                return
            self._yielding(event)
            yield event

    async def next_event(self, timeout: float | None = None) -> dict[str, Any]:
        """The next event (``ChatError`` once the client has stopped). Calling it again
        says the application is done with the previous one (rule 6)."""
        self._done_with_last()
        async with asyncio.timeout(timeout):
            event = await self._events.get()
        if event is _END:
            self._events.put_nowait(_END)
            raise self._failure or ChatError("closed", "the client is closed")
        result: dict[str, Any] = event
        self._yielding(result)
        return result

    # --- acknowledgements (rule 6) -------------------------------------------------------------

    def _yielding(self, event: dict[str, Any]) -> None:
        message_id = _offline_id(event)
        if message_id is not None:
            self._queued.discard(message_id)
            self._last_yielded = message_id

    def _done_with_last(self) -> None:
        message_id, self._last_yielded = self._last_yielded, None
        if message_id is not None and self.auto_ack:
            self._queue_ack([message_id])

    def _remember_seen(self, message_id: str) -> None:
        seen = self._seen
        seen[message_id] = None
        seen.move_to_end(message_id)
        while len(seen) > 10_000:
            seen.popitem(last=False)

    def _queue_ack(self, message_ids: list[str]) -> None:
        self._unacked.extend(message_ids)
        if not self._ack_scheduled:
            self._ack_scheduled = True
            # One ack request for what the application finished in this loop turn.
            asyncio.get_running_loop().call_soon(self._send_acks)

    def _send_acks(self) -> None:
        self._ack_scheduled = False
        ws = self._ws
        if not self._unacked or ws is None or not self._connected.is_set():
            return  # sent after the next welcome
        ids, self._unacked = self._unacked[:1000], self._unacked[1000:]
        rid = f"k{next(self._ids)}"
        self._ack_ids.add(rid)
        try:
            ws.send_nowait(json.dumps({"type": "ack", "message_ids": ids, "id": rid}))
        except (rawws.ConnectionClosed, rawws.InvalidState):
            self._unacked[:0] = ids  # lost with the connection: again after the welcome
            self._ack_ids.discard(rid)
            return
        if self._unacked:
            self._queue_ack([])

    async def ack(self, *items: dict[str, Any] | str) -> int:
        """Acknowledge offline items (events or their ``message_id``): the server forgets
        them, they are never delivered again. Returns how many were still waiting."""
        ids = [item if isinstance(item, str) else str(item.get("message_id")) for item in items]
        for message_id in ids:
            self._remember_seen(message_id)
        reply = await self.request({"type": "ack", "message_ids": ids})
        count: int = reply.get("count", 0)
        return count

    # --- requests ----------------------------------------------------------------------------

    async def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a request with a fresh ``id`` and return its reply (``ChatError`` on error).
        A request that carries an ``idempotency_key`` is sent again after a reconnect when
        its connection was lost before the reply (rule 7)."""
        retry = "idempotency_key" in payload
        async with asyncio.timeout(self.request_timeout):
            while True:
                try:
                    reply = await self._request_once(payload)
                except ChatError as exc:
                    if retry and exc.code == "disconnected" and exc.reply is None:
                        continue  # the same key again, on the next connection
                    raise
                break
        if reply.get("type") == "error":
            raise ChatError(str(reply.get("code")), str(reply.get("message")), reply)
        return reply

    async def _request_once(self, payload: dict[str, Any]) -> dict[str, Any]:
        rid = f"c{next(self._ids)}"
        message = {**payload, "id": rid}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            while True:
                if self._failure is not None:
                    raise self._failure
                await self._connected.wait()
                ws = self._ws
                if ws is None:
                    continue
                try:
                    await ws.send(json.dumps(message))
                except rawws.ConnectionClosed:
                    self._connected.clear()
                    continue
                break
            return await future
        finally:
            self._pending.pop(rid, None)

    async def join(self, room: str, *, since: int | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"type": "join", "room": room}
        if since is not None:
            payload["since"] = since
        return await self.request(payload)

    async def history(self, room: str, *, since: int | None = None, before: int | None = None,
                      limit: int | None = None) -> dict[str, Any]:
        """A page of a room's history (``reply["history"]``, oldest first; ``reply["more"]``:
        there is more in that direction): the messages after ``since``, or the newest
        (before ``before``). The client's own re-joins read these pages by themselves."""
        payload: dict[str, Any] = {"type": "history", "room": room}
        for name, value in (("since", since), ("before", before), ("limit", limit)):
            if value is not None:
                payload[name] = value
        return await self.request(payload)

    async def leave(self, room: str) -> dict[str, Any]:
        return await self.request({"type": "leave", "room": room})

    async def send(self, room: str, content: Any, *,
                   idempotency_key: str | None = None) -> dict[str, Any]:
        """Post to a room; returns the message as delivered (with its ``seq``). Posted once,
        also when the connection is lost before the reply (rule 7)."""
        return await self.request({"type": "message", "room": room, "content": content,
                                   "idempotency_key": idempotency_key or _new_key()})

    async def private(self, target: str, content: Any, *,
                      idempotency_key: str | None = None) -> dict[str, Any]:
        return await self.request({"type": "private", "target": target, "content": content,
                                   "idempotency_key": idempotency_key or _new_key()})

    async def subscribe(self, *topics: str) -> dict[str, Any]:
        reply = await self.request({"type": "subscribe", "topics": list(topics)})
        for topic in topics:
            if topic not in self.topics:
                self.topics.append(topic)
        return reply

    async def unsubscribe(self, *topics: str) -> dict[str, Any]:
        reply = await self.request({"type": "unsubscribe", "topics": list(topics)})
        self.topics = [t for t in self.topics if t not in topics]
        return reply

    async def publish(self, topic: str, message: Any, *,
                      idempotency_key: str | None = None) -> dict[str, Any]:
        return await self.request({"type": "publish", "topic": topic, "message": message,
                                   "idempotency_key": idempotency_key or _new_key()})

    async def ping(self) -> dict[str, Any]:
        return await self.request({"type": "ping"})

    async def list_rooms(self) -> list[dict[str, Any]]:
        """The rooms this connection may join, by name: ``[{"room": R, "user_count": N}]``
        (at most 500; the reply's ``truncated`` says whether there are more)."""
        rooms: list[dict[str, Any]] = (await self.request({"type": "rooms"}))["rooms"]
        return rooms

    async def presence(self, *users: str) -> dict[str, bool]:
        """Whether each user is online: ``{"bob": True, "carol": False}`` (at most 100)."""
        online: dict[str, bool] = (await self.request({"type": "presence",
                                                       "users": list(users)}))["online"]
        return online

    # --- the connection loop -----------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.backoff_initial
        try:
            while not self._closing:
                code, reason = 1006, ""
                last_error = ""
                try:
                    ws = await rawws.connect(self.url, compression=self.compression,
                                             ssl=self.ssl, open_timeout=self.open_timeout,
                                             extra_headers=self._auth_headers())
                except rawws.InvalidStatus as exc:
                    if 400 <= exc.status_code < 500 and exc.status_code not in (408, 429):
                        self._failure = ChatError("rejected", f"HTTP {exc.status_code}")
                        return
                    _logger.info("connect failed: HTTP %d; retrying", exc.status_code)
                except ssl.SSLCertVerificationError as exc:
                    # Not transient: retrying cannot make the certificate trusted.
                    self._failure = ChatError("tls", "certificate verify failed: "
                                              f"{exc.verify_message or exc}")
                    return
                except (OSError, TimeoutError, rawws.InvalidHandshake) as exc:
                    last_error = f": {exc}"
                    _logger.info("connect failed: %s; retrying", exc)
                else:
                    self._ws = ws
                    try:
                        if await self._session(ws):
                            delay = self.backoff_initial  # a working session resets backoff
                    finally:
                        self._ws = None
                        self._connected.clear()
                    code, reason = ws.close_code or 1006, ws.close_reason or ""
                    self._fail_pending("disconnected", f"connection closed ({code})")
                    if self._closing:
                        return
                    if code in FATAL_CLOSE_CODES:
                        kind = "auth" if code in _AUTH_CLOSE_CODES else "policy"
                        self._failure = ChatError(kind, f"closed by the server: {code} {reason}")
                        return
                    if code == 1000 or not self.reconnect:
                        self._failure = ChatError("closed", f"closed by the server: {code}")
                        return
                    await self._events.put({"type": "disconnected", "code": code,
                                            "reason": reason})
                if not self.reconnect:
                    self._failure = self._failure or ChatError("closed",
                                                               "could not connect" + last_error)
                    return
                await asyncio.sleep(delay * (0.5 + 0.5 * self._jitter()))
                delay = min(delay * self.backoff_factor, self.backoff_max)
        finally:
            self._finish()

    def _auth_headers(self) -> list[tuple[str, str]]:
        return [("Authorization", f"Bearer {self._token}")] if self._token else []

    async def _session(self, ws: rawws.ClientConnection) -> bool:
        """Read one connection until it closes; return whether it got as far as the welcome."""
        welcomed = False
        recovery = _Recovery([])
        try:
            async for raw in ws:
                event = _parse(raw)
                if event is None:
                    continue
                kind = event.get("type")
                if kind == "welcome" and not welcomed:
                    welcomed = True
                    self.connections += 1
                    self.user_id = event.get("user_id")
                    self.connection_id = event.get("connection_id")
                    await self._events.put(event)
                    recovery = _Recovery(list(self.rooms))
                    await self._restore(ws, recovery)
                    self._connected.set()
                    self._ack_ids.clear()  # replies of the old connection never come
                    if self._unacked:
                        self._queue_ack([])  # what could not be sent before
                    continue
                rid = event.get("id")
                if type(rid) is str and rid in recovery.requests:
                    await self._recovered(ws, recovery, *recovery.requests.pop(rid), event)
                    continue
                if type(rid) is str:
                    if rid in self._ack_ids:
                        self._ack_ids.discard(rid)
                        continue  # the answer to the client's own ack: not an event
                    future = self._pending.get(rid)
                    if future is not None and not future.done():
                        # Resolved even when the event is not yielded (a retried send's
                        # reply whose message was already recovered from history).
                        future.set_result(event)
                message_id = _offline_id(event)
                if message_id is not None:
                    if message_id in self._seen:
                        if (self.auto_ack and message_id not in self._queued
                                and message_id != self._last_yielded):
                            self._queue_ack([message_id])  # had come before: its ack was lost
                        continue
                    self._remember_seen(message_id)
                    self._queued.add(message_id)
                if kind == "message":
                    held = recovery.held.get(str(event.get("room")))
                    if held is not None:
                        held.append(event)  # after the pages still being read
                        continue
                    if not await self._fresh(event):
                        continue  # already yielded (recovered from history, or a duplicate)
                if kind == "joined":
                    await self._switch_epoch(event)
                    self._track(event)
                elif kind == "left":
                    room = str(event.get("room"))
                    self.rooms.pop(room, None)
                    self.epochs.pop(room, None)
                await self._events.put(event)
        except rawws.ConnectionClosed:
            pass
        return welcomed

    async def _restore(self, ws: rawws.ClientConnection, recovery: _Recovery) -> None:
        """After a (re)connect: re-subscribe topics and start re-joining rooms with ``since``
        (one room at a time: each re-join may bring a page of history as big as the server's
        reply limit, and the server closes a reader that asks for more than it reads)."""
        with contextlib.suppress(rawws.ConnectionClosed):
            if self.topics:
                await ws.send(json.dumps({"type": "subscribe", "topics": self.topics,
                                          "id": f"s{next(self._ids)}"}))
            await self._rejoin_next(ws, recovery)

    async def _rejoin_next(self, ws: rawws.ClientConnection, recovery: _Recovery) -> None:
        while recovery.todo:
            room = recovery.todo.popleft()
            if room in self.rooms:  # not left meanwhile
                await self._ask(ws, recovery, "join", room)
                return

    async def _ask(self, ws: rawws.ClientConnection, recovery: _Recovery, kind: str,
                   room: str) -> None:
        """Send a re-join (``kind`` "join") or a request for the next page ("history") of
        ``room``, from the position the client has in it."""
        rid = f"r{next(self._ids)}"
        recovery.requests[rid] = (kind, room)
        request: dict[str, Any] = {"type": kind, "room": room, "since": self.rooms[room],
                                   "id": rid}
        epoch = self.epochs.get(room)
        if epoch is not None:
            request["epoch"] = epoch  # another stream: the server sends all it has
        with contextlib.suppress(rawws.ConnectionClosed):
            await ws.send(json.dumps(request))

    async def _recovered(self, ws: rawws.ClientConnection, recovery: _Recovery, kind: str,
                         room: str, reply: dict[str, Any]) -> None:
        """The reply to a re-join or a page request: yield the missed messages, read the next
        page while there is ``more``, then the messages that arrived meanwhile."""
        if kind == "join" and reply.get("type") != "joined":
            self.rooms.pop(room, None)  # e.g. forbidden now: stop trying
            self.epochs.pop(room, None)
            await self._events.put(reply)
            await self._rejoin_next(ws, recovery)
            return
        tracked = room in self.rooms
        if kind == "join":
            since = self.rooms.get(room, 0)
            if await self._switch_epoch(reply):
                since = 0
            if reply.get("complete") is False:
                await self._events.put(_trimmed_gap(room, self.epochs.get(room), since, reply))
        elif tracked and reply.get("type") == "history":
            await self._switch_epoch(reply)  # another restart between two pages
        messages = reply.get("history") if reply.get("type") in ("joined", "history") else None
        for message in messages if isinstance(messages, list) else ():
            if isinstance(message, dict) and tracked and await self._fresh(message):
                await self._events.put(message)
        if kind == "join":
            await self._events.put(reply)
        if tracked and reply.get("more") is True and room in self.rooms:
            recovery.held.setdefault(room, [])
            await self._ask(ws, recovery, "history", room)
            return
        # Caught up: the room's position is its seq at the last page; then what came live.
        held = recovery.held.pop(room, [])
        if room in self.rooms and reply.get("type") in ("joined", "history"):
            self._track(reply)
        for message in held:
            if await self._fresh(message):
                await self._events.put(message)
        await self._rejoin_next(ws, recovery)

    async def _switch_epoch(self, event: dict[str, Any]) -> bool:
        """Follow the stream epoch an event of a tracked room carries; on a change, yield the
        ``gap`` event and count from 0 again. Return whether the epoch changed."""
        room = event.get("room")
        epoch = event.get("epoch")
        if not isinstance(room, str) or type(epoch) is not str or room not in self.rooms:
            return False
        known = self.epochs.get(room)
        self.epochs[room] = epoch
        if known is None or known == epoch:
            return False
        last = self.rooms[room]
        self.rooms[room] = 0
        await self._events.put({"type": "gap", "room": room, "reason": "reset", "epoch": epoch,
                                "previous_epoch": known, "last_seq": last})
        return True

    def _track(self, joined: dict[str, Any]) -> None:
        """In a room: remember the last seq already accounted for (the room's seq when we
        joined; the history before it was in the reply) and the stream it counts in."""
        room = joined.get("room")
        if not isinstance(room, str):
            return
        seq = joined.get("seq")
        base = seq if type(seq) is int else _seq_of(joined.get("history"))
        self.rooms[room] = max(self.rooms.get(room, 0), base)
        epoch = joined.get("epoch")
        if type(epoch) is str:
            self.epochs[room] = epoch

    async def _fresh(self, message: dict[str, Any]) -> bool:
        """Whether a room message is new to us (and remember its seq)."""
        room = message.get("room")
        seq = message.get("seq")
        if not isinstance(room, str) or type(seq) is not int:
            return True
        if room not in self.rooms:
            return True  # not a room we track (e.g. left already)
        await self._switch_epoch(message)
        if seq <= self.rooms[room]:
            return False
        self.rooms[room] = seq
        return True

    def _fail_pending(self, code: str, message: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ChatError(code, message))
        # The futures stay registered; request() removes its own on the way out.

    def _finish(self) -> None:
        self._connected.clear()
        self._fail_pending("closed", "the client stopped")
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait(_END)


class _Recovery:
    """The re-joins of one connection: rooms still to re-join (one at a time), the requests in
    flight (id -> ("join" | "history", room)), and the live messages held for a room whose
    missed history is still being read page by page."""

    __slots__ = ("held", "requests", "todo")

    def __init__(self, rooms: list[str]) -> None:
        self.todo = collections.deque(rooms)
        self.requests: dict[str, tuple[str, str]] = {}
        self.held: dict[str, list[dict[str, Any]]] = {}


def _trimmed_gap(room: str, epoch: str | None, since: int,
                 reply: dict[str, Any]) -> dict[str, Any]:
    history = reply.get("history")
    first = history[0].get("seq") if isinstance(history, list) and history and isinstance(
        history[0], dict) else None
    seq = reply.get("seq")
    return {"type": "gap", "room": room, "reason": "trimmed", "epoch": epoch, "last_seq": since,
            "next_seq": first if type(first) is int else (
                seq + 1 if type(seq) is int else None)}


def _offline_id(event: dict[str, Any]) -> str | None:
    """The message_id of an item delivered from the offline inbox, else None."""
    message_id = event.get("message_id")
    if event.get("offline") is True and isinstance(message_id, str):
        return message_id
    return None


def _new_key() -> str:
    return secrets.token_hex(16)


def _parse(raw: str | bytes) -> dict[str, Any] | None:
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _seq_of(history: Any) -> int:
    if isinstance(history, list) and history:
        last = history[-1]
        if isinstance(last, dict) and type(last.get("seq")) is int:
            seq: int = last["seq"]
            return seq
    return 0
