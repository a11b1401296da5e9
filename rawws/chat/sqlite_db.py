"""The SQLite file behind :class:`~rawws.chat.sqlite_store.SqliteStore`: opening it safely, its
versioned schema, and a writer thread that commits in groups.

Owns: checking a store path (directory, file type, owner application, schema version, one
process per file), applying migrations, the pragmas (WAL, ``synchronous``, incremental
auto-vacuum), the writer thread with group commit, and the file's figures for ``/metrics``.

Does not own: what the rows mean (:mod:`rawws.chat.sqlite_store`).

Theory of operation:

1. **Opening** happens on the calling thread, before the server listens. The directory must
   exist and be writable (WAL mode keeps ``-wal`` and ``-shm`` files beside the database); an
   existing file must be a SQLite database written by rawws (``PRAGMA application_id``) at a
   schema version this code knows (``PRAGMA user_version`` <= :data:`SCHEMA_VERSION`). Older
   versions are migrated, one transaction per step. Any problem is a :exc:`StoreConfigError`
   whose message is one line (``rawws serve`` prints it and exits 2).
2. **One process per file.** An advisory lock on ``PATH.lock`` (``fcntl.flock``) is held while
   the database is open: a second server on the same file would assign the same seqs. Readers
   such as ``sqlite3 PATH .backup`` take no such lock and may run at any time (WAL lets them
   read while the server writes).
3. **Group commit.** On the event loop, :meth:`Database.write` appends a statement to the open
   :class:`Batch` and returns it (a :class:`~rawws.chat.tickets.Ticket`). A batch is handed to
   the writer thread at the end of the loop turn when the writer is idle, or the moment it
   finishes the batch in flight: one batch is committing while the next fills, so batches grow
   with the load and every write waits for at most two commits. One batch is one transaction
   (``BEGIN IMMEDIATE`` ... ``COMMIT``): all of it is durable or none of it is.
4. **The loop never waits for the disk.** After :meth:`Database.start`, only the writer
   thread touches the connection; the sqlite3 module releases the GIL while SQLite works, so
   fsync and page writes overlap with the loop's work. The loop learns of a commit through
   ``call_soon_threadsafe``.
5. **Durability.** ``synchronous=FULL`` (the default): in WAL mode, SQLite fsyncs the WAL at
   every commit, so a commit survives a power loss, not only a crash of the process. Group
   commit pays that fsync once per batch (0.2-0.5 ms on this project's machines), which is why
   FULL costs little here. ``synchronous=NORMAL`` (``sqlite:PATH?synchronous=normal``) skips
   that fsync: still safe against ``kill -9`` (the WAL is in the OS page cache), but the last
   commits before a power loss or kernel crash may be lost; a database is never corrupted by
   either.
6. **Fail-stop.** A failed commit (disk full, I/O error) is rolled back; that batch and every
   later one fail with :exc:`~rawws.chat.tickets.StoreUnavailable`, and so does every later
   write, at once. After a failed fsync the OS page cache cannot be trusted (PostgreSQL's
   "fsyncgate"), and undoing what the store above already showed would be guesswork: the
   operator fixes the disk and restarts, and the restart reads the truth from the file.
   Nothing acknowledged is lost, since nothing in a failed batch was acknowledged.
7. **Bounded file.** Deleted rows leave free pages that later inserts reuse; with
   ``auto_vacuum=INCREMENTAL`` the writer also gives free pages back to the file system a few
   at a time (``PRAGMA incremental_vacuum``) when more than :data:`FREE_PAGES_KEPT` are free,
   so the file follows what is retained without ever running ``VACUUM``. The WAL is
   checkpointed by SQLite every 1000 pages and truncated to :data:`WAL_SIZE_LIMIT` after each
   checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import IO, Any, Final

from .tickets import StoreUnavailable

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: no cross-process lock there
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Batch",
    "Database",
    "StoreConfigError",
]

_logger = logging.getLogger("rawws.chat.store")

#: ``PRAGMA application_id`` of a rawws store: "rwws" in ASCII.
APPLICATION_ID: Final = 0x72777773
#: Free pages kept for reuse before the writer returns the rest to the file system.
FREE_PAGES_KEPT: Final = 1024
#: Pages returned per maintenance step (so one step is short: a few ms of writer time).
VACUUM_STEP: Final = 256
#: Seconds a commit waits for a write lock held by another process.
BUSY_TIMEOUT: Final = 30.0
#: Bytes the WAL file is truncated to after a checkpoint.
WAL_SIZE_LIMIT: Final = 16 * 1024 * 1024

#: The schema, as the steps that build it: ``MIGRATIONS[i]`` takes a database from version
#: ``i`` to ``i + 1``. A step is a list of statements run in one transaction. Never edit a
#: published step: append a new one.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        # Rooms that have (or had) history: the epoch of their stream and the last seq
        # assigned, kept even when retention has removed every message, so that seq never
        # starts again at 1 while the epoch is the same.
        """CREATE TABLE rooms (
            name TEXT PRIMARY KEY,
            epoch TEXT NOT NULL,
            seq INTEGER NOT NULL
        ) WITHOUT ROWID""",
        # Room messages as sent (UTF-8 JSON with seq, epoch and message_id inside).
        """CREATE TABLE messages (
            room TEXT NOT NULL,
            seq INTEGER NOT NULL,
            stored REAL NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (room, seq)
        )""",
        # Offline inboxes: id is the arrival order across all users; items leave by
        # message_id (acknowledged, expired, pushed out by a bound).
        """CREATE TABLE inbox (
            id INTEGER PRIMARY KEY,
            user TEXT NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            expires REAL NOT NULL,
            data BLOB NOT NULL
        )""",
        # Idempotency keys: what the first request with the key got.
        """CREATE TABLE idempotency (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            outcome BLOB NOT NULL,
            expires REAL NOT NULL,
            PRIMARY KEY (scope, key)
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

_SYNCHRONOUS: Final = ("full", "normal", "extra")


class StoreConfigError(ValueError):
    """A store path that cannot be used; the message is one line naming the path."""


class Batch:
    """The writes of one transaction, and the ticket that is done when it committed."""

    __slots__ = ("_callbacks", "_error", "_state", "finals", "ops", "size")

    def __init__(self) -> None:
        #: (sql, [params, ...]) in order; consecutive writes of one statement share an entry
        #: (one executemany).
        self.ops: list[tuple[str, list[Sequence[Any]]]] = []
        #: Statements run last, one per key (a later one replaces it): "the room's seq is N".
        self.finals: dict[Any, tuple[str, Sequence[Any]]] = {}
        self.size = 0
        self._state = 0  # 0 open/in flight, 1 committed, 2 failed
        self._error: StoreUnavailable | None = None
        self._callbacks: list[Callable[[Any], object]] | None = []

    def add(self, sql: str, params: Sequence[Any]) -> None:
        ops = self.ops
        if ops and ops[-1][0] is sql:
            ops[-1][1].append(params)
        else:
            ops.append((sql, [params]))
        self.size += 1

    def put_final(self, key: Any, sql: str, params: Sequence[Any]) -> None:
        if key not in self.finals:
            self.size += 1
        self.finals[key] = (sql, params)

    # --- Ticket --------------------------------------------------------------------------------

    def done(self) -> bool:
        return self._state != 0

    def result(self) -> None:
        if self._state == 2:
            assert self._error is not None
            raise self._error
        if self._state == 0:
            raise asyncio.InvalidStateError("the batch has not committed yet")

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        if self._callbacks is None:
            fn(self)
        else:
            self._callbacks.append(fn)

    def _resolve(self, error: StoreUnavailable | None) -> None:
        if self._state:
            return
        self._state = 2 if error is not None else 1
        self._error = error
        callbacks, self._callbacks = self._callbacks or [], None
        for fn in callbacks:
            try:
                fn(self)
            except Exception:
                _logger.exception("store: a commit callback failed")

    def __repr__(self) -> str:
        state = ("open", "committed", "failed")[self._state]
        return f"<Batch {state}, {self.size} writes>"


class Database:
    """One SQLite file, opened and migrated at construction (see the module docstring).

    Before :meth:`start`, :meth:`query` reads on the calling thread (loading at startup);
    after it, only the writer thread touches the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "full",
        migrations: Sequence[Sequence[str]] = MIGRATIONS,
        max_backlog: int = 100_000,
        logger: logging.Logger | None = None,
    ) -> None:
        if synchronous.lower() not in _SYNCHRONOUS:
            raise StoreConfigError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, "
                                   f"not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous.lower()
        self.version = len(migrations)
        self.max_backlog = max_backlog
        self.logger = logger or _logger
        self._lock_file = _lock(self.path)
        try:
            self._conn = _open(self.path, self.synchronous, migrations)
        except BaseException:
            _unlock(self._lock_file)
            raise
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._queue: queue.SimpleQueue[Batch | _Maintenance | None] = queue.SimpleQueue()
        self._open: Batch | None = None  # filling on the loop
        self._flying: Batch | None = None  # committing on the writer thread
        self._handoff_scheduled = False
        self._maintenance: _Maintenance | None = None  # asked for, not yet handed off
        self._failure: StoreUnavailable | None = None
        self._closing = False  # close() was called: writes are refused
        self._closed = False
        # Figures for /metrics (written by the loop thread, from the writer's reports).
        self.commits = 0
        self.writes = 0
        self.commit_seconds = 0.0
        self.largest_batch = 0
        self.page_size, self.page_count, self.free_pages = self._page_figures()

    # --- startup --------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Read rows on the calling thread; only before :meth:`start`."""
        if self._thread is not None:
            raise RuntimeError("Database.query after start(): the writer thread owns the file")
        return self._conn.execute(sql, params).fetchall()

    def start(self) -> None:
        """Start the writer thread; writes made before are committed first."""
        if self._thread is not None:
            return
        if self._closed:
            raise RuntimeError("the database is closed")
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name=f"rawws-store {self.path.name}",
                                        daemon=True)
        self._thread.start()
        if self._open is not None:
            self._schedule_handoff()

    @property
    def failure(self) -> StoreUnavailable | None:
        """Why the database refuses writes (fail-stop after a failed commit), or None."""
        return self._failure

    @property
    def backlog(self) -> int:
        """Writes made but not committed yet."""
        return (self._open.size if self._open else 0) + (self._flying.size if self._flying
                                                         else 0)

    def writable(self) -> StoreUnavailable | None:
        """None if a write would be accepted now; else the reason it would be refused."""
        if self._failure is not None:
            return self._failure
        if self._closing:
            return StoreUnavailable("the store is shutting down")
        if self.backlog >= self.max_backlog:
            return StoreUnavailable(f"the store is overloaded ({self.backlog} writes waiting "
                                    "for the disk); retry later")
        return None

    # --- writes (event loop thread) -----------------------------------------------------------

    def write(self, sql: str, params: Sequence[Any]) -> Batch:
        """Add a statement to the open batch and return the batch (the caller checked
        :meth:`writable` first, before changing anything the write describes)."""
        batch = self._batch()
        batch.add(sql, params)
        return batch

    def write_final(self, key: Any, sql: str, params: Sequence[Any]) -> Batch:
        """Add a statement run at the end of the open batch; a later one with the same
        ``key`` in the same batch replaces it (e.g. "room R's last seq is N")."""
        batch = self._batch()
        batch.put_final(key, sql, params)
        return batch

    def drop_final(self, key: Any) -> None:
        """Forget the final statement of ``key`` in the open batch, if any (the thing it
        described is gone: a room deleted after its seq was written)."""
        batch = self._open
        if batch is not None and batch.finals.pop(key, None) is not None:
            batch.size -= 1

    def maintain(self) -> asyncio.Future[None]:
        """Ask the writer to return some free pages and refresh the file figures after its
        next commit (starting a batch if none is open); the future is done when they are."""
        assert self._loop is not None, "maintain() before start()"
        waiter: asyncio.Future[None] = self._loop.create_future()
        if self._maintenance is None:
            self._maintenance = _Maintenance()
        self._maintenance.waiters.append(waiter)
        self._batch()
        return waiter

    def _batch(self) -> Batch:
        batch = self._open
        if batch is None:
            batch = self._open = Batch()
            if self._failure is not None:
                batch._resolve(self._failure)
            elif self._flying is None and self._thread is not None:
                self._schedule_handoff()
        return batch

    def _schedule_handoff(self) -> None:
        if not self._handoff_scheduled:
            self._handoff_scheduled = True
            assert self._loop is not None
            # The next loop turn: every write made by this turn's callbacks joins the batch.
            self._loop.call_soon(self._handoff)

    def _handoff(self) -> None:
        self._handoff_scheduled = False
        batch = self._open
        if batch is None or self._flying is not None:
            return
        self._open = None
        if self._failure is not None:
            batch._resolve(self._failure)
            return
        self._flying = batch
        self._queue.put(batch)
        if self._maintenance is not None:
            self._queue.put(self._maintenance)
            self._maintenance = None

    def _committed(self, batch: Batch, error: BaseException | None, seconds: float) -> None:
        self._flying = None
        self.commits += 1
        self.writes += batch.size
        self.commit_seconds += seconds
        self.largest_batch = max(self.largest_batch, batch.size)
        if error is not None and self._failure is None:
            self._failure = StoreUnavailable(f"the store failed: {error}")
            self.logger.error("store %s: commit failed (%s); refusing writes from now on: "
                              "fix the cause and restart (nothing acknowledged is lost)",
                              self.path, error)
        batch._resolve(self._failure if error is not None else None)
        if self._open is not None:
            if self._failure is not None:
                failed, self._open = self._open, None
                failed._resolve(self._failure)
            else:
                self._handoff()  # what arrived during that commit is the next batch

    def _figures(self, maintenance: _Maintenance, figures: tuple[int, int, int]) -> None:
        self.page_size, self.page_count, self.free_pages = figures
        for waiter in maintenance.waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        conn = self._conn
        while True:
            item = self._queue.get()
            if item is None:
                break
            if isinstance(item, _Maintenance):
                self._to_loop(self._figures, item, self._vacuum_step())
                continue
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                self._commit(conn, item)
            except Exception as exc:  # sqlite3.Error, MemoryError...: fail-stop either way
                error = exc
                with contextlib.suppress(sqlite3.Error):
                    conn.rollback()
            self._to_loop(self._committed, item, error, time.perf_counter() - started)
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

    @staticmethod
    def _commit(conn: sqlite3.Connection, batch: Batch) -> None:
        conn.execute("BEGIN IMMEDIATE")
        for sql, rows in batch.ops:
            form = _multi_row(sql) if len(rows) > 1 else None
            if form is not None:
                # Many rows per statement: the sqlite3 module releases and retakes the GIL
                # around every step, and each step of executemany is one row; with the event
                # loop on the same core, one statement per chunk lets the loop run ~35 %
                # more between commits (measured with a busy thread beside the writer).
                prefix, group = form
                for start, count in _chunks(len(rows)):
                    chunk = rows[start:start + count]
                    conn.execute(prefix + ", ".join([group] * count),
                                 [value for row in chunk for value in row])
            elif len(rows) == 1:
                conn.execute(sql, rows[0])
            else:
                conn.executemany(sql, rows)
        for sql, params in batch.finals.values():
            conn.execute(sql, params)
        conn.execute("COMMIT")

    def _vacuum_step(self) -> tuple[int, int, int]:
        conn = self._conn
        with contextlib.suppress(sqlite3.Error):
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            if free > FREE_PAGES_KEPT:
                # executescript: the sqlite3 module steps a row-less PRAGMA once, and each
                # step of incremental_vacuum frees one page; sqlite3_exec runs it to the end.
                conn.executescript(f"PRAGMA incremental_vacuum({min(VACUUM_STEP, free)})")
        return self._page_figures()

    def _page_figures(self) -> tuple[int, int, int]:
        conn = self._conn
        try:
            return (conn.execute("PRAGMA page_size").fetchone()[0],
                    conn.execute("PRAGMA page_count").fetchone()[0],
                    conn.execute("PRAGMA freelist_count").fetchone()[0])
        except sqlite3.Error:
            return self.page_size, self.page_count, self.free_pages

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        assert loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(fn, *args)

    # --- figures and shutdown -----------------------------------------------------------------

    def file_bytes(self) -> int:
        """The database file's size on disk (not counting the WAL)."""
        return _size(self.path)

    def wal_bytes(self) -> int:
        return _size(self.path.with_name(self.path.name + "-wal"))

    async def close(self) -> None:
        """Refuse new writes, commit what is pending, stop the writer, checkpoint, close."""
        if self._closing:
            return
        self._closing = True
        if self._thread is None:
            self.close_now()
            return
        loop = asyncio.get_running_loop()
        while self._open is not None or self._flying is not None:
            target = self._flying or self._open
            assert target is not None
            waiter: asyncio.Future[None] = loop.create_future()
            target.add_done_callback(partial(_wake, waiter))
            if self._flying is None:
                self._handoff()
            await waiter
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        self._closed = True
        _unlock(self._lock_file)

    def close_now(self) -> None:
        """Close synchronously: when the event loop is gone (a test's loop ended) or was never
        there (startup failed). The writer finishes what it was given and stops; what is
        still open is committed here, on the calling thread."""
        if self._closed:
            return
        self._closing = self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            conn = self._conn = sqlite3.connect(self.path, isolation_level=None)
        else:
            conn = self._conn
        if self._open is not None:
            with contextlib.suppress(sqlite3.Error):
                self._commit(conn, self._open)
            self._open = None
        conn.close()
        _unlock(self._lock_file)


_VALUES: Final = re.compile(r"(INSERT\b.*\bVALUES )(\((?:\?, )*\?\))", re.S)
#: Rows per multi-row INSERT: 128, then powers of two for the rest (few distinct statements,
#: so the connection's statement cache keeps them all).
CHUNK: Final = 128


@functools.lru_cache(maxsize=64)
def _multi_row(sql: str) -> tuple[str, str] | None:
    """``("INSERT ... VALUES ", "(?, ?)")`` for a plain one-row INSERT, else None."""
    found = _VALUES.fullmatch(sql)
    return (found.group(1), found.group(2)) if found is not None else None


def _chunks(total: int) -> list[tuple[int, int]]:
    """(start, count) covering ``total`` rows in chunks of CHUNK, then powers of two."""
    chunks = []
    start = 0
    size = CHUNK
    while start < total:
        while size > total - start:
            size //= 2
        chunks.append((start, size))
        start += size
    return chunks


class _Maintenance:
    """A step of maintenance on the writer's queue, and who waits for its figures."""

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list[asyncio.Future[None]] = []


def _wake(waiter: asyncio.Future[None], _: object) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --- opening -------------------------------------------------------------------------------------


def _lock(path: Path) -> IO[str] | None:
    directory = path.parent
    if path.is_dir():
        raise StoreConfigError(f"{path} is a directory, not a database file")
    if not directory.is_dir():
        raise StoreConfigError(f"directory {directory} does not exist (create it first)")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreConfigError(f"directory {directory} is not writable (SQLite in WAL mode "
                               "writes its -wal and -shm files beside the database)")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StoreConfigError(f"{path} is not readable and writable by this user")
    if fcntl is None:
        return None
    try:
        handle = open(f"{path}.lock", "a+", encoding="ascii")  # noqa: SIM115 - held open
    except OSError as exc:
        raise StoreConfigError(f"cannot create the lock file {path}.lock: "
                               f"{exc.strerror or exc}") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StoreConfigError(f"{path} is in use by another rawws process "
                               f"(it holds {path}.lock)") from None
    return handle


def _unlock(handle: IO[str] | None) -> None:
    if handle is not None:
        with contextlib.suppress(OSError):
            handle.close()  # closing the descriptor releases the flock


def _open(path: Path, synchronous: str,
          migrations: Sequence[Sequence[str]]) -> sqlite3.Connection:
    try:
        # timeout: how long a commit waits for another process's write lock before it fails
        # (and the store with it). Nothing else should write the file; readers, such as an
        # online backup, never block the writer in WAL mode.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT)
    except sqlite3.Error as exc:
        raise StoreConfigError(f"cannot open {path}: {exc}") from None
    try:
        _prepare(conn, path, synchronous, migrations)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path, synchronous: str,
             migrations: Sequence[Sequence[str]]) -> None:
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreConfigError(f"{path} is not a SQLite database ({exc})") from None
    if app != APPLICATION_ID and (app != 0 or version != 0 or tables):
        raise StoreConfigError(f"{path} is a SQLite database of another application "
                               f"(application_id {app:#x}); use a new file for rawws")
    if version > len(migrations):
        raise StoreConfigError(f"{path} has schema version {version}, newer than this rawws "
                               f"knows ({len(migrations)}): upgrade rawws or use another file")
    try:
        if version == 0 and not tables:
            # Only effective before the first page is written (WAL mode writes one): a new
            # file gives free pages back (theory of operation, 7).
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreConfigError(f"{path}: SQLite refused WAL mode (journal_mode is {mode}); "
                                   "use a local file system")
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        conn.execute("PRAGMA foreign_keys=OFF")
        for step in range(version, len(migrations)):
            _migrate(conn, step, migrations[step])
        # A write, so that a read-only file or file system fails now, not at the first ack.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StoreConfigError(f"cannot use {path}: {exc}") from None


def _migrate(conn: sqlite3.Connection, step: int, statements: Iterable[str]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={step + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.rollback()
        raise
