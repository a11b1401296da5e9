"""The store implementations the shared store suite (tests/chat/test_store.py) runs against.

``make_store`` (a pytest fixture, parameterised over :data:`KINDS`) makes stores of one kind;
for a durable kind, the fixture also checks, after the test, that what the store retained is
exactly what a fresh store opened on the same file finds: the file mirrors memory. The Redis
kind (issue 16, docs/scaling.md) runs on a real redis-server (tests/redis_server.py), each store
under its own key prefix; after the test, a fresh RedisStore loading from Redis finds what
memory held, and Redis keeps exactly the idempotency keys memory keeps.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from rawws.chat.limits import Limits
from rawws.chat.sqlite_store import SqliteStore
from rawws.chat.store import MemoryStore
from rawws.chat.tickets import Ticket
from rawws.chat.wire import encode

KINDS = ("memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis))
#: Message ids of a fixed width (so tests can make messages of an exact encoded size).
ID_WIDTH = 7


def fixed_ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"m{next(counter):06d}"


MakeStore = Callable[..., MemoryStore]
T = TypeVar("T")


async def done(ticket: Ticket[T]) -> T:
    """The ticket's value once it is done (durable); its failure raised."""
    if not ticket.done():
        waiter = asyncio.get_running_loop().create_future()
        ticket.add_done_callback(lambda _: waiter.done() or waiter.set_result(None))
        await waiter
    return ticket.result()


def retained(store: MemoryStore) -> dict[str, Any]:
    """Everything a store keeps beyond the process: histories (epoch, seq, messages),
    inboxes, idempotency records."""
    return {
        "rooms": {name: (r.epoch, r.seq, r.first_seq, list(r.history))
                  for name, r in store._rooms.items() if r.history},
        "inboxes": {user: list(box) for user, box in store._inboxes.items() if box},
        "records": [(scope, key, record) for scope, key, _, record in store.idempotency.items()],
    }


@pytest.fixture(params=KINDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    kind = request.param
    if kind == "redis":
        yield from _make_redis_store(request)
        return
    made: list[tuple[MemoryStore, Limits | None, Path | None]] = []
    counter = itertools.count(1)

    def make(limits: Limits | None = None, **options: Any) -> MemoryStore:
        options.setdefault("ids", fixed_ids())
        if kind == "memory":
            store = MemoryStore(limits, **options)
            made.append((store, limits, None))
        else:
            path = tmp_path / f"store-{next(counter)}.db"
            store = SqliteStore(path, limits, wall=lambda: 0.0, **options)
            store.start()  # the writer thread, bound to the test's event loop
            made.append((store, limits, path))
        return store

    yield make
    for store, limits, path in made:
        if path is None:
            continue
        assert isinstance(store, SqliteStore)
        before = retained(store)
        # Rooms with a row: those with history, and those whose history was all trimmed
        # while members are in them (their seq and epoch go on while the room lives).
        persisted = set(store._persisted)
        assert set(before["rooms"]) <= persisted <= set(store._rooms)
        store.db.close_now()  # the test's loop is gone: stop the writer, commit what is open
        # The file holds nothing more than memory (what is trimmed there is deleted here)...
        conn = sqlite3.connect(path)
        try:
            counts = [conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                      for table in ("messages", "rooms", "inbox", "idempotency")]
        finally:
            conn.close()
        assert counts == [sum(len(h) for _, _, _, h in before["rooms"].values()),
                          len(persisted),
                          sum(len(box) for box in before["inboxes"].values()),
                          len(before["records"])], ("the file keeps what memory dropped", counts)
        # Reopened at the dawn of time, so that nothing counts as expired.
        again = SqliteStore(path, limits, wall=lambda: float("-inf"))
        try:
            after = retained(again)
        finally:
            again.db.close_now()
        # ... and nothing less: a fresh store on the file finds what memory held.
        assert after == before, "the file does not hold what memory held"


def message_event(room: str, content: Any = "x") -> dict[str, Any]:
    return {"type": "message", "room": room, "content": content}


def padded(store: MemoryStore, room: str, size: int) -> dict[str, Any]:
    """A message event whose encoded form (with the seq, epoch and id the store adds) is
    exactly ``size`` bytes."""
    seq = store.room_seq(room) + 1
    epoch = store.room_epoch(room) or "0" * 16
    base = len(encode({**message_event(room, ""), "seq": seq, "epoch": epoch,
                       "message_id": "m" * ID_WIDTH}))
    assert size >= base, (size, base)
    return message_event(room, "x" * (size - base))


def _make_redis_store(request: pytest.FixtureRequest) -> Iterator[MakeStore]:
    from rawws.chat.broker import parse_broker_url
    from rawws.chat.redis_store import RedisStore
    from tests.conftest import ASYNC_FINALIZERS

    server = request.getfixturevalue("redis_server")
    made: list[tuple[RedisStore, Limits | None, str]] = []
    counter = itertools.count(1)

    def make(limits: Limits | None = None, **options: Any) -> MemoryStore:
        options.setdefault("ids", fixed_ids())
        url = f"{server.url}?prefix=t{next(counter)}"
        store = RedisStore(parse_broker_url(url), limits, wall=lambda: 0.0, **options)
        store.start()  # connects and loads on the test's loop; writes wait for it
        made.append((store, limits, url))
        return store

    async def finish() -> None:
        for store, _, _ in made:
            await store.connect()
            await store.link.flush()  # what the test wrote without waiting reaches Redis
        for store, limits, url in made:
            await _check_redis_mirror(store, limits, url)
        for store, _, _ in made:
            await store.close()

    ASYNC_FINALIZERS.append(finish)
    yield make


async def _check_redis_mirror(store: Any, limits: Limits | None, url: str) -> None:
    from rawws.chat.broker import parse_broker_url
    from rawws.chat.redis_store import RedisStore

    before = retained(store)
    # Loaded at the dawn of time, so that nothing counts as expired.
    again = RedisStore(parse_broker_url(url), limits, wall=lambda: float("-inf"))
    await again.connect()
    try:
        after = retained(again)
        query = again.link.query
        assert query is not None
        prefix = f"{again.config.prefix}:idem:"
        keys = sorted([key.decode()[len(prefix):] async for key in
                       query.scan_iter(match=prefix + "*")])
    finally:
        await again.close()
    assert after["rooms"] == before["rooms"], "Redis does not hold the histories memory held"
    assert after["inboxes"] == before["inboxes"], "Redis does not hold the inboxes memory held"
    assert keys == sorted(f"{scope}:{key}" for scope, key, _ in before["records"]), (
        "Redis does not keep the idempotency keys memory keeps")
