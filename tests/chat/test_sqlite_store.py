"""rawws.chat.sqlite_store: what only a durable store does. Restarts keep history, seq, epochs,
inboxes and keys; tickets are done when committed; a store that cannot commit refuses writes
and changes nothing; a server on it holds every answer until the commit (output commit)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from rawws.chat.idempotency import Idem, Recalled
from rawws.chat.limits import Limits
from rawws.chat.server import ChatConfig, ChatServer
from rawws.chat.sqlite_db import WAL_SIZE_LIMIT, StoreConfigError
from rawws.chat.sqlite_store import SqliteStore, parse_store_spec
from rawws.chat.store import MessageIds
from rawws.chat.tickets import StoreUnavailable

from .e2e import connect, eventually, http, http_json, recv, request, user
from .stores import done, message_event


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_store_specs() -> None:
    assert parse_store_spec("memory") == ("memory", None, {})
    assert parse_store_spec("sqlite:var/chat.db") == ("sqlite", Path("var/chat.db"), {})
    assert parse_store_spec("sqlite:/x/c.db?synchronous=normal") == (
        "sqlite", Path("/x/c.db"), {"synchronous": "normal"})
    for bad in ("redis://x", "sqlite:", "sqlite", "SQLITE:x", "sqlite:x?fast=1"):
        with pytest.raises(ValueError):
            parse_store_spec(bad)


async def test_a_restart_keeps_history_seq_epochs_inboxes_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path, wall=lambda: 100.0)
    store.start()
    first = [await done(store.append("lobby", message_event("lobby", f"m{n}"), 100.0))
             for n in range(1, 4)]
    await done(store.append("news", message_event("news", "n1"), 100.0))
    kept = await done(store.inbox_push("zoe", {"type": "notification", "message": "a"}, 100.0))
    acked = await done(store.inbox_push("zoe", {"type": "notification", "message": "b"}, 100.0))
    assert await done(store.inbox_ack("zoe", [acked.message_id])) == 1
    await done(store.remember(Idem("http", "key-1", "print", {"recipients": 3}), 100.0))
    epoch = store.room_epoch("lobby")
    await store.close()

    again = SqliteStore(path, wall=lambda: 200.0)
    again.start()
    try:
        assert again.room_seq("lobby") == 3 and again.room_epoch("lobby") == epoch
        page = again.history("lobby", since=0, limit=10)
        assert page.entries == [(s.seq, s.data) for s in first]
        following = await done(again.append("lobby", message_event("lobby", "m4"), 200.0))
        assert following.seq == 4  # seq goes on, never starts at 1 again
        assert json.loads(following.data)["epoch"] == epoch
        assert following.message_id.partition("-")[0] != first[0].message_id.partition("-")[0]
        assert again.inbox_pending("zoe", 200.0) == [kept]  # the acknowledged one is gone
        assert again.recall("http", "key-1", 200.0).result() == Recalled(
            "print", None, {"recipients": 3})
        assert again.room_seq("news") == 1
    finally:
        await again.close()


async def test_a_ticket_is_done_when_its_write_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path)
    store.start()
    try:
        ticket = store.append("r", message_event("r"), 0.0)
        assert not ticket.done()  # the writer has not even seen it: the loop has not turned
        assert rows(path, "SELECT count(*) FROM messages") == [(0,)]
        stored = await done(ticket)
        assert rows(path, "SELECT seq, data FROM messages") == [(1, stored.data)]
        assert rows(path, "SELECT name, seq FROM rooms") == [("r", 1)]
        # A duplicate of a request whose record is not durable yet waits for it too.
        store.remember(Idem("http", "k", "p", {}), 0.0)
        recalled = store.recall("http", "k", 0.0)
        assert not recalled.done()
        assert await done(recalled) == Recalled("p", None, {})
        assert store.recall("http", "k", 0.0).done()
        # Nothing to acknowledge: nothing to wait for.
        assert store.inbox_ack("nobody", ["x"]).done()
    finally:
        await store.close()


async def test_a_store_that_cannot_commit_refuses_writes_and_changes_nothing(
        tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path)
    pages = store.db.query("PRAGMA page_count")[0][0]
    store.db.query(f"PRAGMA max_page_count = {pages + 8}")  # a disk that is nearly full
    store.start()
    try:
        ok = await done(store.append("r", message_event("r", "small"), 0.0))
        big = store.append("r", message_event("r", "x" * 100_000), 0.0)
        with pytest.raises(StoreUnavailable, match="the store failed: database or disk is full"):
            await done(big)
        assert store.failure is not None
        seq, inbox = store.room_seq("r"), store.inbox_count()
        refused = store.append("r", message_event("r"), 0.0)
        assert refused.done()
        with pytest.raises(StoreUnavailable):
            refused.result()
        with pytest.raises(StoreUnavailable):
            store.inbox_push("zoe", {"n": 1}, 0.0).result()
        with pytest.raises(StoreUnavailable):
            store.remember(Idem("http", "k", "p", {}), 0.0).result()
        assert (store.room_seq("r"), store.inbox_count()) == (seq, inbox)  # nothing changed
    finally:
        await store.close()
    assert rows(path, "SELECT seq, data FROM messages") == [(1, ok.data)]  # only the durable


async def test_lowered_limits_trim_at_startup_and_the_trim_is_written(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path)
    store.start()
    for n in range(10):
        store.append("r", message_event("r", n), 0.0)
    for n in range(5):
        store.inbox_push("zoe", {"n": n}, 0.0)
    await store.close()
    smaller = SqliteStore(path, Limits(history_size=3, inbox_size=2), wall=lambda: 0.0)
    smaller.start()
    assert [s for s, _ in smaller.history("r", since=0, limit=99).entries] == [8, 9, 10]
    assert [json.loads(s.data)["n"] for s in smaller.inbox_pending("zoe", 0.0)] == [3, 4]
    await smaller.close()
    assert rows(path, "SELECT min(seq), max(seq), count(*) FROM messages") == [(8, 10, 3)]
    assert rows(path, "SELECT count(*) FROM inbox") == [(2,)]


async def test_expired_items_are_not_loaded_and_leave_the_file(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path, Limits(inbox_ttl=10.0, idempotency_ttl=10.0))
    store.start()
    store.inbox_push("zoe", {"n": 1}, 0.0)
    store.remember(Idem("http", "k", "p", {}), 0.0)
    await store.close()
    later = SqliteStore(path, wall=lambda: 20.0)
    later.start()
    assert later.inbox_pending("zoe", 20.0) == [] and len(later.idempotency) == 0
    await later.close()
    assert rows(path, "SELECT count(*) FROM inbox") == [(0,)]
    assert rows(path, "SELECT count(*) FROM idempotency") == [(0,)]


async def test_a_room_with_nothing_kept_is_not_restored(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path, Limits(history_max_age=10.0))
    store.start()
    store.join("r", "alice", "c1")
    await done(store.append("r", {**message_event("r"), "timestamp": "1970-01-01T00:00:01.000Z"},
                            1.0))
    store.maintain(100.0)
    store.maintain(100.0)  # aged out; the room lives on for its member, seq 1
    assert store.room_seq("r") == 1 and store.history("r", since=0, limit=9).entries == []
    await store.close()
    assert rows(path, "SELECT count(*) FROM messages") == [(0,)]
    again = SqliteStore(path)
    try:
        assert not again.has_room("r")  # its stream ended: a new one gets a new epoch
    finally:
        again.db.close_now()
    assert rows(path, "SELECT count(*) FROM rooms") == [(0,)]


def test_a_file_with_broken_rows_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    SqliteStore(path).db.close_now()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO rooms VALUES ('r', 'e', 5)")
    conn.executemany("INSERT INTO messages VALUES ('r', ?, 0, ?)", [(1, b"{}"), (3, b"{}")])
    conn.commit()
    conn.close()
    with pytest.raises(StoreConfigError, match=r"cannot read .*not consecutive") as info:
        SqliteStore(path)
    assert "\n" not in str(info.value)
    SqliteStore(tmp_path / "other.db").db.close_now()  # and the lock was released


def test_message_id_prefixes_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path, ids=MessageIds("samepfx"))
    store.inbox_push("zoe", {"n": 1}, 0.0)
    store.db.close_now()
    again = SqliteStore(path, ids=MessageIds("samepfx"), wall=lambda: 0.0)
    try:
        fresh = again._new_id()
        assert not fresh.startswith("samepfx-")
    finally:
        again.db.close_now()


# --- a server on the SQLite store ------------------------------------------------------------


async def test_nothing_is_answered_or_delivered_before_the_commit(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    async with ChatServer(ChatConfig(port=0, ping_interval=None,
                                     store=f"sqlite:{path}")) as server:
        alice = await user(server, "alice")
        bob = await user(server, "bob")
        for ws in (alice, bob):
            await request(ws, {"type": "join", "room": "r"})
        await recv(alice)  # bob joined
        # Another process holds the write lock: the store's next commit has to wait for it.
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            await alice.send(json.dumps({"type": "message", "room": "r", "content": "m1",
                                         "id": 1}))
            await eventually(lambda: server.hub.held_actions > 0)  # parked, not sent
            await bob.send(json.dumps({"type": "join", "room": "r", "since": 0, "id": 2}))
            await bob.send('{"type": "ping", "id": 3}')
            await eventually(lambda: server.hub.held_actions >= 3)  # behind it, in order
            assert rows(path, "SELECT count(*) FROM messages") == [(0,)]
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        ack = await recv(alice)
        assert (ack["seq"], ack["id"], ack["content"]) == (1, 1, "m1")
        assert rows(path, "SELECT seq FROM messages") == [(1,)]  # durable before it was sent
        live = await recv(bob)
        assert (live["seq"], "id" not in live) == (1, True)
        joined = await recv(bob)
        assert [m["seq"] for m in joined["history"]] == [1]
        assert (await recv(bob))["type"] == "pong"
        await alice.close()
        await bob.close()


async def test_a_failed_store_answers_unavailable_everywhere(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path)
    pages = store.db.query("PRAGMA page_count")[0][0]
    store.db.query(f"PRAGMA max_page_count = {pages + 8}")
    async with ChatServer(ChatConfig(port=0, ping_interval=None), store=store) as server:
        alice = await user(server, "alice")
        await request(alice, {"type": "join", "room": "r"})
        # 15 KB messages into a file that may grow by 32 KB: a commit fails soon.
        replies = []
        for n in range(1, 20):
            replies.append(await request(alice, {"type": "message", "room": "r",
                                                 "content": "x" * 15000, "id": n}))
            if replies[-1]["type"] == "error":
                break
        *fitted, failed = replies
        assert fitted and all(r["type"] == "message" for r in fitted)
        assert failed["code"] == "unavailable" and failed["id"] == len(replies)
        assert "database or disk is full" in failed["message"]
        refused = await request(alice, {"type": "message", "room": "r", "content": "", "id": 0})
        assert refused["code"] == "unavailable"  # fail-stop: refused at once now
        status, body = await http_json(server, "POST", "/api/notify/zoe", {"message": "n"})
        assert status == 503 and body["error"] == "unavailable"
        status, body = await http_json(server, "GET", "/healthz")
        assert status == 503 and body["status"] == "degraded"
        assert "store" in body["reason"]
        status, _ = await http_json(server, "GET", "/api/rooms/r")
        assert status == 200  # reads go on
        assert (await request(alice, {"type": "ping"}))["type"] == "pong"
        await alice.close()


async def test_metrics_report_the_file(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    async with ChatServer(ChatConfig(port=0, ping_interval=None,
                                     store=f"sqlite:{path}")) as server:
        status, body = await http_json(server, "POST", "/api/rooms/r/messages",
                                       {"content": "hello"})
        assert status == 200 and body["seq"] == 1
        status, _, text = await http(server, "GET", "/metrics")
        metrics = dict(line.split(" ") for line in text.decode().splitlines()
                       if line.startswith("rawws_store_"))
        assert int(metrics["rawws_store_file_bytes"]) > 0
        assert int(metrics["rawws_store_commits"]) >= 1
        assert metrics["rawws_store_failed"] == "0"
        assert metrics["rawws_store_backlog"] == "0"


async def test_the_file_stays_bounded_by_what_is_retained(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path, Limits(history_size=20, inbox_size=5))
    store.start()
    try:
        files, wals = [], []
        for _ in range(12):
            for n in range(500):  # 1 KB messages in 5 rooms, 5 inboxes: 100 + 25 kept
                store.append(f"r{n % 5}", message_event(f"r{n % 5}", "x" * 1000), 0.0)
                ticket = store.inbox_push(f"u{n % 5}", {"n": "y" * 1000}, 0.0)
            await done(ticket)
            files.append(path.stat().st_size)
            wals.append((tmp_path / "chat.db-wal").stat().st_size)
            assert rows(path, "SELECT count(*) FROM messages") == [(100,)]
            assert rows(path, "SELECT count(*) FROM inbox") == [(25,)]
        # 6,000 messages and 6,000 items written, 125 KB retained: the file stops growing
        # (free pages are reused); the WAL is reused after each checkpoint (every 1000 pages)
        # and truncated to WAL_SIZE_LIMIT.
        assert max(files) < 2 * 1024 * 1024, files
        assert len(set(files[-6:])) == 1, files  # the last half: not a byte more
        assert max(wals) <= max(WAL_SIZE_LIMIT, 1100 * store.db.page_size), wals
        await store.db.maintain()
        assert store.db.free_pages * store.db.page_size < 8 * 1024 * 1024
    finally:
        await store.close()


async def test_a_stalled_disk_stops_reading_instead_of_holding_without_bound(
        tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    async with ChatServer(ChatConfig(port=0, ping_interval=None, limits=Limits(
            rate=1e9, burst=1e9, max_queue=100_000, max_queue_bytes=16 << 20),
            store=f"sqlite:{path}")) as server:
        server.hub.max_held = 50
        alice = await user(server, "alice")
        await request(alice, {"type": "join", "room": "r"})
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the disk "stalls": no commit can happen
        try:
            await alice.send(json.dumps({"type": "message", "room": "r", "content": "m",
                                         "id": 0}))
            for n in range(1, 301):
                await alice.send(json.dumps({"type": "ping", "id": n}))
            await eventually(lambda: server.hub.reading_paused)
            [peer] = server.hub.peers
            assert peer.ws._reading_paused  # the connection is not read any more
            held = server.hub.held_actions
            late = await connect(server, "/ws?user_id=late")  # connects; is not read either
            await eventually(lambda: server.hub.held_actions > held)  # its welcome waits
            assert all(p.ws._reading_paused for p in server.hub.peers)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert (await recv(alice))["seq"] == 1
        for n in range(1, 301):
            assert (await recv(alice)) == {"type": "pong", "id": n}  # all, in order
        assert not server.hub.reading_paused and not peer.ws._reading_paused
        assert (await recv(late))["type"] == "welcome"
        assert (await request(late, {"type": "ping", "id": "x"}))["type"] == "pong"
        await alice.close()
        await late.close()
