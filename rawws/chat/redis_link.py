"""The connection to Redis: pipelined writes, the bus reader, outage detection and recovery.

Owns: the redis-py clients (imported here and in no other rawws module but the Redis store, and
only when ``--broker`` is given), the Lua scripts' loading, the write queue and its batches, the
reader of the bus stream, the broker's up/down state, and the figures for ``/metrics``.

Does not own: what the writes mean or what an entry changes (:mod:`rawws.chat.redis_store`,
:mod:`rawws.chat.bus`).

Theory of operation:

1. **Writes are batched, in order.** :meth:`RedisLink.submit` queues an op (a script call or a
   command) and returns its :class:`RedisTicket`. At the end of the loop turn the queue goes to
   Redis as one pipeline (one round trip) when no batch is in flight, or the moment the batch in
   flight returns; so batches grow with the load, and every op waits at most two round trips.
   One writer, one connection at a time: Redis executes ops in the order they were queued.
2. **Acknowledged means in Redis.** A ticket is done when Redis answered its op. An *ordered*
   op (a room message, an inbox item) is done only once the bus reader has also read the bus
   entry the op wrote: the reader applies every entry, this node's included, in the one order of
   the bus, and an ordered op's ticket is done right after its entry was applied. So the sender's
   reply, the node's fan-out and its cache follow the same order on every node.
3. **The reader** blocks on ``XREAD`` from the last entry it read, so a reconnect resumes where
   it stopped: nothing is missed while the bus keeps the entries (``bus_length``). Each entry is
   numbered (``q``); a jump in the numbers is a gap (the bus was trimmed past it, or Redis lost
   data) and the store resyncs from Redis before reading on.
4. **Outage: loud, not lossy.** A batch or a read that fails or takes longer than ``timeout``
   puts the link *down*: queued ops and every op submitted while down fail at once with
   :exc:`~rawws.chat.tickets.StoreUnavailable` (the client is told ``unavailable``, nothing was
   acknowledged); connections and same-node delivery go on. A recovery task probes Redis every
   :data:`RECOVERY_INTERVAL` seconds; when it answers, the link reloads the scripts, checks that
   Redis kept its data (``incarnation``), lets the store resync and re-announce this node, and
   the reader resumes from where it stopped. An op that timed out may still have been executed
   by Redis (a paused server executes its input when resumed): ``unavailable`` means "not
   acknowledged", and a retry with the same idempotency key cannot deliver twice.
5. **No retries inside redis-py**: a retried write would run twice. The link decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoScriptError, RedisError, ResponseError

import rawws

from .broker import BrokerConfig, BrokerConfigError
from .redis_ops import Op, RedisTicket, stream_id
from .redis_scripts import SCRIPTS
from .tickets import StoreUnavailable

__all__ = ["Entry", "RedisLink"]

_logger = logging.getLogger("rawws.chat.broker")

#: Seconds between two probes of a Redis that is down.
RECOVERY_INTERVAL: Final = 0.25
#: Milliseconds one XREAD blocks waiting for new entries.
READ_BLOCK_MS: Final = 1000
#: Entries read at most per XREAD.
READ_COUNT: Final = 1000
#: Bytes of messages applied in one go, in one write batch (the size of a socket read).
RUN_BYTES: Final = 256 * 1024
#: Oldest Redis with what the scripts use (XADD/XTRIM MINID: 6.2).
MIN_VERSION: Final = (6, 2)

#: A bus entry: its id and its fields (bytes -> bytes).
Entry = tuple[bytes, dict[bytes, bytes]]


class RedisLink:
    """The node's connection to Redis (see the module docstring).

    ``on_entry(entry_id, fields, own)`` is called for every bus entry in order;
    ``resync()`` reloads the store from Redis and returns the bus position to read on from
    (``(entry id, entry number)``); ``on_up()`` / ``on_down(reason)`` report state changes.
    """

    def __init__(self, config: BrokerConfig, *, node: str) -> None:
        self.config = config
        self.node = node
        self._node_bytes = node.encode()
        prefix = config.prefix + ":"
        self.prefix = prefix
        self.bus_key = prefix + "bus"
        self.bus_counter = prefix + "bus:q"
        self.incarnation_key = prefix + "incarnation"
        self._shas = {name: hashlib.sha1(text.encode()).hexdigest()
                      for name, text in SCRIPTS.items()}
        self._writer: aioredis.Redis | None = None
        self._reader: aioredis.Redis | None = None
        self.query: aioredis.Redis | None = None  # loads and checks, off the write queue
        self.up = False
        #: Until the first connection succeeds or fails, ops wait in the queue.
        self.starting = True
        self.closed = False
        self.failure: str | None = "not connected"
        self.incarnation: str | None = None
        self.last_id = b"0-0"
        self.last_q = 0
        self._queue: list[Op] = []
        self._scheduled = False
        self._in_flight = False
        self._flushed: asyncio.Event | None = None
        self._w = 0
        self._ordered: dict[int, RedisTicket[Any]] = {}  # ordered ops not yet read back
        self._passed_w = 0  # the newest of this node's ordered ops whose entry was applied
        self._reply_waiter: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._read_task: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self.up_since = 0.0  # loop time of the last (re)connection
        # Callbacks, set by the store.
        self.on_entry: Callable[[bytes, dict[bytes, bytes], bool], None] = (
            lambda entry_id, fields, own: None)
        self.resync: Callable[[], Awaitable[tuple[bytes, int]]] | None = None
        self.on_up: Callable[[], None] = lambda: None
        self.on_down: Callable[[str], None] = lambda reason: None
        # Figures (/metrics, benchmarks).
        self.round_trips = 0  # write batches sent
        self.commands = 0  # ops in them
        self.reads = 0  # XREAD calls that returned entries
        self.entries = 0  # bus entries read
        self.outages = 0
        self.refused = 0  # ops failed because the broker was down
        self.gaps = 0

    # --- connecting ----------------------------------------------------------------------------

    def _client(self, *, name: str) -> aioredis.Redis:
        c = self.config
        options: dict[str, Any] = {}
        if c.tls:
            options.update(ssl=True, ssl_ca_certs=c.ca_certs, ssl_certfile=c.certfile,
                           ssl_keyfile=c.keyfile)
        return aioredis.Redis(
            host=c.host, port=c.port, db=c.db, username=c.username, password=c.password,
            socket_timeout=None, socket_connect_timeout=c.timeout,
            retry=Retry(NoBackoff(), 0), decode_responses=False, health_check_interval=0,
            client_name=f"rawws-{name}-{self.node}", **options)

    async def _open(self, *, first: bool) -> None:
        """(Re)create the clients and check the server; raise on any problem."""
        await self._close_clients()
        self._writer = self._client(name="w")
        self._reader = self._client(name="r")
        self.query = self._client(name="q")
        try:
            async with asyncio.timeout(self.config.timeout * 2):
                await self.query.ping()
                info = await self.query.info("server")
                version = tuple(int(p) for p in str(info.get("redis_version", "0.0"))
                                .split(".")[:2])
                if version < MIN_VERSION:
                    raise BrokerConfigError(
                        f"{self.config.display}: Redis {info.get('redis_version')} is too old "
                        f"(rawws needs {MIN_VERSION[0]}.{MIN_VERSION[1]} or later)")
                await self._check_persistence(first=first)
                for text in SCRIPTS.values():
                    await self.query.script_load(text)
        except AuthenticationError as exc:
            raise BrokerConfigError(f"{self.config.display}: authentication failed "
                                    f"({exc})") from None
        except ResponseError as exc:
            if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
                raise BrokerConfigError(f"{self.config.display}: authentication failed "
                                        f"({exc})") from None
            raise

    async def _check_persistence(self, *, first: bool) -> None:
        assert self.query is not None
        try:
            reply: Any = await self.query.config_get("appendonly")
        except ResponseError:
            if first:
                _logger.warning("broker %s: cannot read CONFIG appendonly (command disabled?): "
                                "make sure Redis keeps an AOF, or acknowledged messages are "
                                "lost when it restarts", self.config.display)
            return
        value = reply.get(b"appendonly", reply.get("appendonly", b""))
        if value in (b"yes", "yes"):
            return
        if self.config.require_persistence:
            raise BrokerConfigError(
                f"{self.config.display} has appendonly no: acknowledged messages would be "
                "lost when Redis restarts. Turn AOF on (appendonly yes) or accept that with "
                "?persistence=off in the broker URL")
        if first:
            _logger.warning("broker %s: appendonly no (?persistence=off): a restart of Redis "
                            "loses what it held", self.config.display)

    async def _close_clients(self) -> None:
        for client in (self._writer, self._reader, self.query):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._writer = self._reader = self.query = None

    async def snapshot(self) -> tuple[bytes, int, str]:
        """A consistent starting point: the bus's last entry id and number, the incarnation."""
        assert self.query is not None
        async with asyncio.timeout(self.config.timeout * 2):
            entry_id, q, incarnation = await self.query.evalsha(
                self._shas["snapshot"], 3, self.bus_key, self.bus_counter,
                self.incarnation_key, secrets.token_hex(8))
        return bytes(entry_id), int(q), incarnation.decode()

    async def connect(self) -> None:
        """Connect for the first time (before the server listens); errors propagate."""
        await self._open(first=True)
        self.incarnation = (await self.snapshot())[2]

    def start(self, position: tuple[bytes, int]) -> None:
        """Start reading the bus after ``position`` and accepting writes."""
        self.last_id, self.last_q = position
        self._set_up()

    def _set_up(self) -> None:
        self.up = True
        self.starting = False
        self.failure = None
        self.up_since = asyncio.get_running_loop().time()
        self._read_task = self._spawn(self._read_loop())
        if self._queue and not self._scheduled and not self._in_flight:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start_batch)
        self.on_up()

    def abandon(self, reason: str) -> None:
        """The first connection failed: fail what waited for it."""
        self.starting = False
        self.failure = reason
        queued, self._queue = self._queue, []
        self._fail_ops(queued, f"broker unavailable: {reason}")

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- writing -------------------------------------------------------------------------------

    def next_w(self) -> int:
        self._w += 1
        return self._w

    def refusal(self) -> StoreUnavailable | None:
        """What a write submitted now would fail with (the broker is down), or None."""
        if self.up or self.starting:
            return None
        return StoreUnavailable(f"broker unavailable: {self.failure}")

    def submit(self, op: Op) -> RedisTicket[Any]:
        """Queue ``op``; its ticket fails at once when the broker is down."""
        ticket = op.ticket
        if not self.up and not self.starting:
            self.refused += 1
            ticket._fail(StoreUnavailable(f"broker unavailable: {self.failure}"))
            return ticket
        if ticket.ordered:
            self._ordered[ticket.w] = ticket
        self._queue.append(op)
        if not self._scheduled and not self._in_flight and self.up:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start_batch)
        return ticket

    def script(self, name: str, keys: Sequence[str], args: Sequence[Any],
               ticket: RedisTicket[Any]) -> RedisTicket[Any]:
        return self.submit(Op(ticket, script=name, args=(len(keys), *keys, *args)))

    def command(self, *args: Any, parse: Callable[[Any], Any] | None = None
                ) -> RedisTicket[Any]:
        return self.submit(Op(RedisTicket(parse), args=args))

    def _start_batch(self) -> None:
        self._scheduled = False
        if self._in_flight or not self._queue:
            return
        ops, self._queue = self._queue, []
        self._in_flight = True
        self._spawn(self._run_batch(ops))

    def _args_of(self, op: Op) -> Sequence[Any] | None:
        if op.build is not None:
            built = op.build()
            if built is None:
                return None
            op.args = built
        if op.script is not None:
            return ("EVALSHA", self._shas[op.script], *op.args)
        return op.args

    async def _run_batch(self, ops: list[Op]) -> None:
        try:
            sent: list[tuple[Op, Sequence[Any]]] = []
            for op in ops:
                args = self._args_of(op)
                if args is None:
                    op.ticket._finish()
                else:
                    sent.append((op, args))
            if sent:
                await self._execute(sent)
        finally:
            self._in_flight = False
            if self._flushed is not None and not self._queue:
                self._flushed.set()
            if self._queue and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._start_batch)

    async def _execute(self, sent: list[tuple[Op, Sequence[Any]]], *, retried: bool = False
                       ) -> None:
        writer = self._writer
        if writer is None or not self.up:
            self._fail_ops([op for op, _ in sent], f"broker unavailable: {self.failure}")
            return
        pipe = writer.pipeline(transaction=False)
        for _, args in sent:
            pipe.execute_command(*args)
        self.round_trips += 1
        self.commands += len(sent)
        try:
            async with asyncio.timeout(self.config.timeout):
                replies = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError, TimeoutError) as exc:
            reason = _describe(exc)
            self._fail_ops([op for op, _ in sent], f"broker unavailable: {reason}")
            self.down(reason)
            return
        missing: list[tuple[Op, Sequence[Any]]] = []
        for (op, args), reply in zip(sent, replies, strict=True):
            if isinstance(reply, NoScriptError) and not retried:
                missing.append((op, args))
            elif isinstance(reply, Exception):
                op.ticket._fail(StoreUnavailable(f"broker refused the write: {reply}"))
            else:
                self._replied(op.ticket, reply)
        if missing:  # the script cache was flushed (SCRIPT FLUSH): load and send those again
            with contextlib.suppress(RedisError, OSError):
                for text in SCRIPTS.values():
                    await writer.script_load(text)
            await self._execute(missing, retried=True)

    def _replied(self, ticket: RedisTicket[Any], reply: Any) -> None:
        waits = ticket._reply(reply)
        if not waits:
            self._ordered.pop(ticket.w, None)
            return
        if self._read_task is None or not self.up or ticket.w <= self._passed_w:
            # Durable; its entry was applied already, or will be once the reader is back.
            self._ordered.pop(ticket.w, None)
            ticket._finish()
        waiter = self._reply_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail_ops(self, ops: list[Op], reason: str) -> None:
        for op in ops:
            self._ordered.pop(op.ticket.w, None)
            op.ticket._fail(StoreUnavailable(reason))

    async def flush(self) -> None:
        """Wait until every op queued so far has been answered (or failed)."""
        while (self._queue or self._in_flight) and self.up:
            self._flushed = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.timeout * 2):
                    await self._flushed.wait()

    # --- reading the bus -----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reader = self._reader
        assert reader is not None
        block = min(READ_BLOCK_MS, max(50, int(self.config.timeout * 500)))
        while self.up:
            reply: Any
            try:
                async with asyncio.timeout(block / 1000 + self.config.timeout):
                    reply = await reader.xread({self.bus_key: self.last_id}, count=READ_COUNT,
                                               block=block)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as exc:
                self.down(_describe(exc))
                return
            if not reply:
                continue
            self.reads += 1
            for _, entries in reply:
                if not await self._apply_all(entries):
                    break

    async def _apply_all(self, entries: list[Entry]) -> bool:
        """Apply entries in order; False if the rest must be read again (after a gap)."""
        i = 0
        while i < len(entries):
            # Synchronous runs of entries share one write batch: a subscriber gets the
            # messages of a run in one send() (rawws.write_batch; benchmarks/cluster.py). A
            # run holds at most RUN_BYTES of messages, about what one socket read brings a
            # single process, then the loop runs: a reader is never handed a whole bus read
            # (up to READ_COUNT messages) at once, which its slow-consumer bounds would see
            # as a reader that does not keep up.
            run = 0
            with rawws.write_batch():
                while i < len(entries) and run < RUN_BYTES:
                    entry_id, fields = entries[i]
                    run += len(fields.get(b"d", b""))
                    if not self.up:
                        return False
                    q = int(fields.get(b"q", b"0"))
                    if self.last_q and q != self.last_q + 1:
                        break
                    if self._waiting_reply(fields) is not None:
                        break
                    self._apply(entry_id, fields)
                    self.last_id = entry_id
                    self.last_q = q
                    i += 1
            if i == len(entries):
                return True
            if run >= RUN_BYTES:
                await asyncio.sleep(0)  # let the loop write out (and read) before going on
                continue
            entry_id, fields = entries[i]
            q = int(fields.get(b"q", b"0"))
            if self.last_q and q != self.last_q + 1:
                await self._gap(q)
                return False
            await self._wait_reply(fields)
            if not self.up:
                return False
            self._apply(entry_id, fields)
            self.last_id = entry_id
            self.last_q = q
            i += 1
        return True

    def _waiting_reply(self, fields: dict[bytes, bytes]) -> RedisTicket[Any] | None:
        """This node's ordered op whose entry this is, if its reply has not arrived yet."""
        if b"w" not in fields or fields.get(b"n") != self._node_bytes:
            return None
        ticket = self._ordered.get(int(fields[b"w"]))
        return ticket if ticket is not None and not ticket.replied else None

    async def _wait_reply(self, fields: dict[bytes, bytes]) -> None:
        # The op's reply and its entry race over two connections: wait for the reply, so the
        # sender's answer is released when its entry is applied, in bus order (rule 2).
        while self._waiting_reply(fields) is not None and self.up:
            self._reply_waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(self.config.timeout * 2):
                    await self._reply_waiter
            except TimeoutError:
                return
            finally:
                self._reply_waiter = None

    def _apply(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        self.entries += 1
        own = fields.get(b"n") == self._node_bytes
        ticket = None
        if own and b"w" in fields:
            w = int(fields[b"w"])
            self._passed_w = max(self._passed_w, w)
            ticket = self._ordered.pop(w, None)
        try:
            self.on_entry(entry_id, fields, own)
        except Exception:
            _logger.exception("applying bus entry %s failed", entry_id.decode())
        if ticket is not None and ticket.replied:
            ticket._finish()

    async def _gap(self, q: int) -> None:
        """Entries were lost between last_q and q: reload what matters from Redis."""
        self.gaps += 1
        _logger.warning("broker: bus entries %d..%d are gone (trimmed, or Redis lost data): "
                        "resyncing from Redis", self.last_q + 1, q - 1)
        await self._resync()

    async def _resync(self) -> None:
        if self.resync is None:
            return
        try:
            self.last_id, self.last_q = await self.resync()
        except (RedisError, OSError, TimeoutError) as exc:
            self.down(_describe(exc))
            return
        self._release_replied()

    def _release_replied(self) -> None:
        """Ordered ops answered whose entries will never be read (a gap, an outage): done."""
        for w, ticket in list(self._ordered.items()):
            if ticket.replied:
                del self._ordered[w]
                ticket._finish()

    # --- outage and recovery -------------------------------------------------------------------

    def down(self, reason: str) -> None:
        """The broker failed: refuse writes until it is back (theory of operation, 4)."""
        if not self.up or self.closed:
            return
        self.up = False
        self.failure = reason
        self.outages += 1
        queued, self._queue = self._queue, []
        self._fail_ops(queued, f"broker unavailable: {reason}")
        self._release_replied()
        if self._read_task is not None:
            self._read_task.cancel()
            self._read_task = None
        waiter = self._reply_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        _logger.warning("broker %s unavailable: %s (writes answer 'unavailable'; retrying every "
                        "%g s)", self.config.display, reason, RECOVERY_INTERVAL)
        self.on_down(reason)
        self._recovery = self._spawn(self._recover())

    async def _recover(self) -> None:
        started = time.monotonic()
        while not self.closed:
            await asyncio.sleep(RECOVERY_INTERVAL)  # probing a remote server, not a test wait
            try:
                await self._open(first=False)
                entry_id, q, incarnation = await self.snapshot()
            except BrokerConfigError as exc:
                self.failure = str(exc)
                continue
            except (RedisError, OSError, TimeoutError) as exc:
                self.failure = _describe(exc)
                continue
            lost = incarnation != self.incarnation
            if lost:
                _logger.warning("broker %s: Redis lost its data (a new incarnation): "
                                "resyncing", self.config.display)
                self.incarnation = incarnation
            gap = lost or q < self.last_q or stream_id(entry_id) < stream_id(self.last_id)
            if gap and self.resync is not None:
                try:
                    self.last_id, self.last_q = await self.resync()
                except (RedisError, OSError, TimeoutError) as exc:
                    self.failure = _describe(exc)
                    continue
            _logger.warning("broker %s is back after %.1f s", self.config.display,
                            time.monotonic() - started)
            self._set_up()
            return

    async def close(self) -> None:
        """Flush what is queued, stop reading, close the connections."""
        if self.up:
            await self.flush()
        self.closed = True
        self.up = False
        self.failure = "closed"
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self._close_clients()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "no answer within the timeout"
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."
