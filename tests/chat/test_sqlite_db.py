"""rawws.chat.sqlite_db: opening real files (and refusing bad ones), migrations, group commit,
fail-stop, the bounded file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rawws.chat.sqlite_db import (
    APPLICATION_ID,
    FREE_PAGES_KEPT,
    SCHEMA_VERSION,
    Batch,
    Database,
    StoreConfigError,
)
from rawws.chat.tickets import StoreUnavailable

INSERT = "INSERT INTO messages (room, seq, stored, data) VALUES (?, ?, ?, ?)"


def rows(path: Path, sql: str) -> list[Any]:
    """Read with a second, independent connection: what another process would see."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def committed(ticket: Batch) -> None:
    waiter = asyncio.get_running_loop().create_future()
    ticket.add_done_callback(lambda _: waiter.done() or waiter.set_result(None))
    await waiter


@contextlib.contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """Make ``directory`` unwritable, for root too (the immutable attribute) when possible."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(directory)],
                                        capture_output=True).returncode != 0:
        pytest.skip("running as root without chattr +i: cannot make a directory unwritable")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


# --- opening -------------------------------------------------------------------------------------


def test_a_new_file_gets_the_schema_and_the_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    db = Database(path)
    try:
        assert db.query("PRAGMA user_version") == [(SCHEMA_VERSION,)]
        assert db.query("PRAGMA application_id") == [(APPLICATION_ID,)]
        assert db.query("PRAGMA journal_mode") == [("wal",)]
        assert db.query("PRAGMA synchronous") == [(2,)]  # FULL
        assert db.query("PRAGMA auto_vacuum") == [(2,)]  # INCREMENTAL
        names = {name for (name,) in db.query("SELECT name FROM sqlite_master "
                                              "WHERE type = 'table'")}
        assert {"rooms", "messages", "inbox", "idempotency"} <= names
    finally:
        db.close_now()
    reopened = Database(path, synchronous="normal")
    try:
        assert reopened.query("PRAGMA synchronous") == [(1,)]
    finally:
        reopened.close_now()


def test_an_empty_file_is_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    path.touch()
    db = Database(path)
    db.close_now()
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError, match=r"directory .*nowhere does not exist"):
        Database(tmp_path / "nowhere" / "chat.db")


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError, match="is a directory"):
        Database(tmp_path)


def test_unwritable_directory(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    with unwritable(directory), pytest.raises(StoreConfigError, match="is not writable"):
        Database(directory / "chat.db")


def test_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreConfigError, match="is not a SQLite database"):
        Database(path)
    assert path.read_text().startswith("these are my notes")  # untouched


def test_a_database_of_another_application(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreConfigError, match="another application"):
        Database(path)


def test_a_database_from_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    Database(path).close_now()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreConfigError,
                       match=f"schema version {SCHEMA_VERSION + 1}, newer than this rawws "
                             f"knows \\({SCHEMA_VERSION}\\)"):
        Database(path)


def test_one_process_per_file(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    first = Database(path)
    try:
        with pytest.raises(StoreConfigError, match="in use by another rawws process"):
            Database(path)
    finally:
        first.close_now()
    Database(path).close_now()  # released


def test_bad_synchronous_value(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError, match="synchronous must be one of"):
        Database(tmp_path / "chat.db", synchronous="sometimes")


def test_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"\x00garbage\n" * 500)
    with pytest.raises(StoreConfigError) as info:
        Database(path)
    assert "\n" not in str(info.value)


# --- migrations ----------------------------------------------------------------------------------


def test_migrations_run_in_order_and_keep_data(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    v1 = (("CREATE TABLE things (name TEXT)", "INSERT INTO things VALUES ('kept')"),)
    Database(path, migrations=v1).close_now()
    v2 = (*v1, ("ALTER TABLE things ADD COLUMN size INTEGER NOT NULL DEFAULT 7",))
    db = Database(path, migrations=v2)
    try:
        assert db.query("PRAGMA user_version") == [(2,)]
        assert db.query("SELECT name, size FROM things") == [("kept", 7)]  # v1 ran once
    finally:
        db.close_now()


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    v1 = (("CREATE TABLE things (name TEXT)",),)
    Database(path, migrations=v1).close_now()
    broken = (*v1, ("CREATE TABLE more (x)", "THIS IS NOT SQL"))
    with pytest.raises(StoreConfigError, match="cannot use"):
        Database(path, migrations=broken)
    assert rows(path, "PRAGMA user_version") == [(1,)]
    assert rows(path, "SELECT name FROM sqlite_master WHERE name = 'more'") == []


# --- group commit --------------------------------------------------------------------------------


async def test_writes_of_one_loop_turn_share_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    db = Database(path)
    db.start()
    try:
        tickets = [db.write(INSERT, ("r", seq, 0.0, b"x")) for seq in range(1, 501)]
        assert all(t is tickets[0] for t in tickets)  # one batch
        assert not tickets[0].done()
        await committed(tickets[0])
        assert db.commits == 1 and db.writes == 500
        assert rows(path, "SELECT count(*) FROM messages") == [(500,)]
    finally:
        await db.close()


async def test_writes_during_a_commit_form_the_next_batch(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    db = Database(path)
    db.start()
    try:
        first = db.write(INSERT, ("r", 1, 0.0, b"x"))
        await asyncio.sleep(0)  # hand-off: the first batch is now in flight
        later = [db.write(INSERT, ("r", seq, 0.0, b"x")) for seq in range(2, 100)]
        assert later[0] is not first and all(t is later[0] for t in later)
        order: list[str] = []
        first.add_done_callback(lambda _: order.append("first"))
        later[0].add_done_callback(lambda _: order.append("second"))
        await committed(later[0])
        assert order == ["first", "second"]  # done in the order written
        assert db.commits == 2
        assert rows(path, "SELECT max(seq) FROM messages") == [(99,)]
    finally:
        await db.close()


async def test_final_statements_run_once_per_key(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    db = Database(path)
    db.start()
    upsert = ("INSERT INTO rooms (name, epoch, seq) VALUES (?, ?, ?) "
              "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq")
    try:
        for seq in range(1, 11):
            ticket = db.write_final(("seq", "r"), upsert, ("r", "e", seq))
        assert ticket.size == 1
        await committed(ticket)
        assert rows(path, "SELECT name, epoch, seq FROM rooms") == [("r", "e", 10)]
    finally:
        await db.close()


async def test_close_commits_what_is_pending(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    db = Database(path)
    db.start()
    ticket = db.write(INSERT, ("r", 1, 0.0, b"last words"))
    await db.close()
    assert ticket.done()
    ticket.result()
    assert rows(path, "SELECT data FROM messages") == [(b"last words",)]
    assert db.writable() is not None  # closed: refuses


async def test_writes_before_start_are_committed_by_start(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    db = Database(path)
    ticket = db.write(INSERT, ("r", 1, 0.0, b"x"))
    db.start()
    await committed(ticket)
    await db.close()
    assert rows(path, "SELECT count(*) FROM messages") == [(1,)]


# --- fail-stop -----------------------------------------------------------------------------------


async def test_a_failed_commit_fails_everything_after_it(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    db = Database(path)
    db.start()
    try:
        good = db.write(INSERT, ("r", 1, 0.0, b"x"))
        await committed(good)
        bad = db.write(INSERT, ("r", 2, 0.0, b"y"))
        db.write(INSERT, ("r", 1, 0.0, b"duplicate key"))  # the whole batch fails
        await asyncio.sleep(0)  # in flight
        queued = db.write(INSERT, ("r", 3, 0.0, b"z"))
        await committed(bad)
        with pytest.raises(StoreUnavailable, match="the store failed"):
            bad.result()
        await committed(queued)
        with pytest.raises(StoreUnavailable):
            queued.result()
        assert isinstance(db.writable(), StoreUnavailable)
        assert db.failure is not None
        later = db.write(INSERT, ("r", 4, 0.0, b"w"))
        assert later.done()
        with pytest.raises(StoreUnavailable):
            later.result()
    finally:
        await db.close()
    assert rows(path, "SELECT seq FROM messages") == [(1,)]  # the failed batch left nothing


async def test_backlog_bound(tmp_path: Path) -> None:
    db = Database(tmp_path / "chat.db", max_backlog=10)
    db.start()
    try:
        for seq in range(10):
            assert db.writable() is None
            db.write(INSERT, ("r", seq, 0.0, b"x"))
        refusal = db.writable()
        assert refusal is not None and "overloaded" in str(refusal)
    finally:
        await db.close()


# --- the file stays bounded ----------------------------------------------------------------------


async def test_free_pages_go_back_to_the_file_system(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    db = Database(path)
    db.start()
    try:
        blob = b"x" * 3000
        for seq in range(6000):
            db.write(INSERT, ("r", seq, 0.0, blob))
        ticket = db.write("DELETE FROM messages WHERE seq < ?", (5900,))
        await committed(ticket)
        await db.maintain()
        assert db.free_pages > FREE_PAGES_KEPT
        steps = 1
        while db.free_pages > FREE_PAGES_KEPT:
            await db.maintain()  # one bounded step each
            steps += 1
            assert steps < 200
        assert steps > 1  # incremental: a few pages at a time, not one long VACUUM
        assert db.free_pages <= FREE_PAGES_KEPT
        assert db.page_count * db.page_size < 6000 * 3000 // 4
    finally:
        await db.close()
    assert rows(path, "SELECT count(*) FROM messages") == [(100,)]
