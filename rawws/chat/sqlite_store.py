"""``SqliteStore``: the memory store's state, also kept in a SQLite file, so that a restart (a
deploy, a crash, ``kill -9``, a power loss) loses nothing that was acknowledged.

Owns: mirroring every durable change of :class:`~rawws.chat.store.MemoryStore` into the
database (:mod:`rawws.chat.sqlite_db`: the file, its schema, the writer thread) and reading it
back at startup; ``sqlite:PATH`` store specs.

Does not own: the bounds and rules of what is retained (the memory store's, unchanged), or
when output may be sent (the router's ``Hold``, the hub's output commit).

Theory of operation:

1. **Memory is the cache, the file is the truth.** A ``SqliteStore`` *is* a ``MemoryStore``
   (same bounds, and every read answered from memory, so the event loop never reads the disk)
   whose every change to what is retained is also written to the database, in the order it
   happened: a message appended and its room's seq and epoch; history dropped (per-room count,
   byte budget, age) or a room deleted; an inbox item pushed, acknowledged, expired or pushed
   out; an idempotency record kept or dropped. So the file holds what memory holds, and its size
   is bounded by the same budgets. Live state (presence, membership) and topic seqs are not
   written: they describe connections, which a restart ends anyway.
2. **A write's ticket is its batch.** Each write joins the database's open batch (group
   commit); its ticket (:class:`~rawws.chat.tickets.Pending`) is done when the transaction
   holding it has committed. Before a write changes memory, the store asks the database whether
   it accepts writes (fail-stop after a failed commit, a bound on the backlog): a refused write
   changes nothing and fails at once with ``unavailable``.
3. **Startup** reads the file back, in write order, into the memory structures, applying the
   current limits (lowered limits trim now, and the trim is written). A room's epoch and seq
   come back with it: seq continues, the epoch stays, ``since=`` recovery works across the
   restart. A room with nothing left to keep is not restored: its stream ended.
4. **Message ids** carry a prefix per run; a prefix already used by an item still in the inbox
   is never reused.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from .idempotency import Idem, Recalled, decode_outcome, encode_outcome
from .limits import Limits
from .metrics import Metrics
from .sqlite_db import Batch, Database, StoreConfigError
from .store import MemoryStore, MessageIds, Stored, _InboxItem, _Room
from .tickets import Done, Failed, Pending, Ticket

__all__ = ["SqliteStore", "StoreConfigError", "parse_store_spec"]

_logger = logging.getLogger("rawws.chat.store")

INSERT_MESSAGE: Final = "INSERT INTO messages (room, seq, stored, data) VALUES (?, ?, ?, ?)"
UPSERT_ROOM: Final = ("INSERT INTO rooms (name, epoch, seq) VALUES (?, ?, ?) ON CONFLICT (name) "
                      "DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq")
TRIM_ROOM: Final = "DELETE FROM messages WHERE room = ? AND seq < ?"
DELETE_MESSAGES: Final = "DELETE FROM messages WHERE room = ?"
DELETE_ROOM: Final = "DELETE FROM rooms WHERE name = ?"
INSERT_INBOX: Final = "INSERT INTO inbox (user, message_id, expires, data) VALUES (?, ?, ?, ?)"
DELETE_INBOX: Final = "DELETE FROM inbox WHERE message_id = ?"
PUT_RECORD: Final = ("INSERT OR REPLACE INTO idempotency (scope, key, fingerprint, outcome, "
                     "expires) VALUES (?, ?, ?, ?, ?)")
DELETE_RECORD: Final = "DELETE FROM idempotency WHERE scope = ? AND key = ?"

#: ``maintain`` calls between two steps of the file's own maintenance (free pages, figures).
FILE_MAINTENANCE_EVERY: Final = 10


def parse_store_spec(spec: str) -> tuple[str, Path | None, dict[str, str]]:
    """``memory`` -> ("memory", None, {}); ``sqlite:PATH[?synchronous=normal]`` ->
    ("sqlite", PATH, options). ``ValueError`` (one line) for anything else."""
    if spec == "memory":
        return "memory", None, {}
    kind, sep, rest = spec.partition(":")
    if kind != "sqlite" or not sep or not rest.partition("?")[0]:
        raise ValueError(f"--store must be 'memory' or 'sqlite:PATH', not {spec!r}")
    path, _, query = rest.partition("?")
    options = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise ValueError(f"--store {spec}: unknown option {sorted(unknown)[0]!r} "
                         "(known: synchronous)")
    return "sqlite", Path(path), options


class SqliteStore(MemoryStore):
    """A :class:`MemoryStore` kept in the SQLite file at ``path`` (see the module docstring).
    Opening checks and loads the file (:exc:`~rawws.chat.sqlite_db.StoreConfigError` for a
    path that cannot be used); :meth:`start` starts the writer (on the running loop)."""

    def __init__(self, path: str | Path, limits: Limits | None = None, *,
                 synchronous: str = "full", wall: Callable[[], float] = time.time,
                 epochs: Callable[[], str] | None = None, ids: Callable[[], str] | None = None,
                 max_backlog: int = 100_000) -> None:
        self.db = Database(path, synchronous=synchronous, max_backlog=max_backlog)
        self._persisted: set[str] = set()  # rooms with a row in the file
        self._record_batches: dict[tuple[str, str], Batch] = {}  # records not yet durable
        self._last: Batch | None = None  # the batch the latest write joined
        self._loading = True
        self._ticks = 0
        try:
            options: dict[str, Any] = {} if epochs is None else {"epochs": epochs}
            super().__init__(limits, ids=ids, **options)
            try:
                self._load(wall())
            except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
                raise StoreConfigError(f"cannot read {self.db.path}: {exc} (restore it from "
                                       "a backup, or start on a new file)") from None
        except BaseException:
            self.db.close_now()
            raise
        self._loading = False

    @property
    def path(self) -> Path:
        return self.db.path

    def start(self) -> None:
        """Start committing (the writer thread), on the running event loop."""
        self.db.start()

    async def close(self) -> None:
        await self.db.close()

    @property
    def failure(self) -> str | None:
        """Why the store refuses writes (fail-stop), or None while it is healthy."""
        failure = self.db.failure
        return None if failure is None else str(failure)

    # --- writes --------------------------------------------------------------------------------

    def _write(self, sql: str, params: tuple[Any, ...]) -> Batch:
        self._last = batch = self.db.write(sql, params)
        return batch

    def append(self, room: str, event: dict[str, Any], now: float,
               idem: Idem | None = None) -> Ticket[Stored]:
        refusal = self.db.writable()
        if refusal is not None:
            return Failed(refusal)
        stored = super().append(room, event, now, idem).result()
        batch = self._write(INSERT_MESSAGE, (room, stored.seq, now, stored.data))
        self.db.write_final(("room", room), UPSERT_ROOM,
                            (room, self._rooms[room].epoch, stored.seq))
        self._persisted.add(room)
        return Pending(batch, stored)

    def inbox_push(self, user: str, event: dict[str, Any], now: float,
                   idem: Idem | None = None) -> Ticket[Stored]:
        refusal = self.db.writable()
        if refusal is not None:
            return Failed(refusal)
        stored = super().inbox_push(user, event, now, idem).result()
        batch = self._write(INSERT_INBOX, (user, stored.message_id, now + self.limits.inbox_ttl,
                                           stored.data))
        return Pending(batch, stored)

    def inbox_ack(self, user: str, message_ids: Iterable[str]) -> Ticket[int]:
        refusal = self.db.writable()
        if refusal is not None:
            return Failed(refusal)
        self._last = None
        count = super().inbox_ack(user, message_ids).result()
        if self._last is None:
            return Done(count)  # nothing was pending: nothing to wait for
        return Pending(self._last, count)

    def remember(self, idem: Idem, now: float) -> Ticket[None]:
        refusal = self.db.writable()
        if refusal is not None:
            return Failed(refusal)
        super().remember(idem, now)
        assert self._last is not None
        return Pending(self._last, None)

    def recall(self, scope: str, key: str, now: float) -> Ticket[Recalled | None]:
        record = super().recall(scope, key, now).result()
        batch = self._record_batches.get((scope, key))
        if batch is not None:
            if not batch.done():
                return Pending(batch, record)  # the first request is not durable yet
            del self._record_batches[(scope, key)]
        return Done(record)

    def maintain(self, now: float) -> None:
        super().maintain(now)
        self._ticks += 1
        if self._ticks % FILE_MAINTENANCE_EVERY == 0 and self.db.writable() is None:
            self.db.maintain()

    # --- the file follows every change of memory (MemoryStore's _on_* points) ------------------

    def _on_history_dropped(self, room: _Room) -> None:
        if room.name in self._persisted:
            # One statement per room per batch: "everything below the first kept seq".
            self.db.write_final(("trim", room.name), TRIM_ROOM, (room.name, room.first_seq))

    def _on_room_deleted(self, room: _Room) -> None:
        name = room.name
        if name not in self._persisted:
            return  # never written (members only): nothing to delete
        self._persisted.discard(name)
        self.db.drop_final(("trim", name))
        self.db.drop_final(("room", name))
        self._write(DELETE_MESSAGES, (name,))
        self._write(DELETE_ROOM, (name,))

    def _on_inbox_dropped(self, items: list[_InboxItem]) -> None:
        for _, message_id, _ in items:
            self._write(DELETE_INBOX, (message_id,))

    def _on_idempotency_dropped(self, scope: str, key: str) -> None:
        self._record_batches.pop((scope, key), None)
        self._write(DELETE_RECORD, (scope, key))

    def _keep_record(self, idem: Idem, data: bytes | None, now: float) -> None:
        batch = self._write(PUT_RECORD, (idem.scope, idem.key, idem.fingerprint,
                                         encode_outcome(data, idem.extra),
                                         now + self.limits.idempotency_ttl))
        self._record_batches[(idem.scope, idem.key)] = batch

    # The records are kept by MemoryStore.append / inbox_push / remember through this table.
    def _record(self, idem: Idem, data: bytes | None, now: float) -> Recalled:
        record = super()._record(idem, data, now)
        if not self._loading:
            self._keep_record(idem, data, now)
        return record

    # --- startup -------------------------------------------------------------------------------

    def _load(self, now: float) -> None:
        db = self.db
        started = time.perf_counter()
        rooms = db.query(
            "SELECT name, epoch, seq, (SELECT stored FROM messages WHERE room = name "
            "ORDER BY seq DESC LIMIT 1) AS last FROM rooms ORDER BY last, name")
        messages = 0
        for name, epoch, seq, _ in rooms:
            entries = db.query("SELECT seq, data FROM messages WHERE room = ? ORDER BY seq",
                               (name,))
            messages += len(entries)
            self._persisted.add(name)
            if not entries:
                self._on_room_deleted(_Room(name, epoch, None))  # nothing kept: the stream ended
                continue
            self._restore_room(name, epoch, seq, ((s, bytes(d)) for s, d in entries))
        prefixes: set[str] = set()
        items = 0
        for user, message_id, expires, data in db.query(
                "SELECT user, message_id, expires, data FROM inbox ORDER BY id"):
            if expires <= now:
                self._write(DELETE_INBOX, (message_id,))
                continue
            prefixes.add(message_id.rpartition("-")[0])
            self._restore_inbox_item(user, expires, message_id, bytes(data), now)
            items += 1
        records = 0
        for scope, key, print_, outcome, expires in db.query(
                "SELECT scope, key, fingerprint, outcome, expires FROM idempotency "
                "ORDER BY expires"):
            if expires <= now:
                self._write(DELETE_RECORD, (scope, key))
                continue
            data, extra = decode_outcome(bytes(outcome))
            self.idempotency.put(Idem(scope, key, print_, extra), data, now, expires=expires)
            records += 1
        ids = self._new_id
        if isinstance(ids, MessageIds):
            while ids.prefix in prefixes:
                ids = self._new_id = MessageIds()
        if rooms or items or records:
            _logger.info("store %s: loaded %d rooms, %d messages, %d inbox items, %d "
                         "idempotency keys in %.2f s", db.path, len(self._rooms), messages,
                         items, records, time.perf_counter() - started)

    # --- figures -------------------------------------------------------------------------------

    def register_metrics(self, metrics: Metrics) -> None:
        db = self.db
        metrics.gauge("store_file_bytes", "Size of the SQLite store's database file plus its "
                      "WAL, in bytes.", lambda: db.file_bytes() + db.wal_bytes())
        metrics.gauge("store_free_bytes", "Free pages inside the database file (reused by "
                      "later writes, returned to the file system a step at a time).",
                      lambda: db.free_pages * db.page_size)
        metrics.gauge("store_backlog", "Writes made but not yet committed.", lambda: db.backlog)
        metrics.gauge("store_commits", "Transactions committed (group commits) since start.",
                      lambda: db.commits)
        metrics.gauge("store_writes", "Statements committed since start.", lambda: db.writes)
        metrics.gauge("store_commit_seconds", "Seconds the writer spent committing since "
                      "start.", lambda: db.commit_seconds)
        metrics.gauge("store_failed", "1 once a commit failed (the store refuses writes "
                      "until restarted), else 0.", lambda: 0 if db.failure is None else 1)



