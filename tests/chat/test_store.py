"""The shared store suite: presence, rooms, history, inboxes, idempotency records, every bound,
run against every store implementation (tests/chat/stores.py: memory, sqlite), plus the
memory store's own accounting (what it charges is what CPython allocates).

For a durable store, the ``make_store`` fixture also checks after each test that the file holds
exactly what memory held."""

from __future__ import annotations

import gc
import itertools
import json
import tracemalloc
from collections.abc import Callable

import pytest

from rawws.chat.idempotency import Idem, Recalled
from rawws.chat.limits import Limits
from rawws.chat.store import (
    HISTORY_ENTRY_OVERHEAD,
    INBOX_ITEM_OVERHEAD,
    INBOX_OVERHEAD,
    ROOM_OVERHEAD,
    MemoryStore,
    MessageIds,
    RoomLimitReached,
    RoomQuotaReached,
    Stored,
)
from rawws.chat.wire import iso_timestamp

from .stores import MakeStore, done, fixed_ids, make_store, message_event, padded

__all__ = ["make_store"]  # the fixture, imported for pytest


async def post(store: MemoryStore, room: str, content: str = "x", size: int | None = None,
               now: float = 0.0, **fields: object) -> int:
    """Append a message; ``size``: its encoded length, exactly."""
    event = message_event(room, content) if size is None else padded(store, room, size)
    event.update(fields)
    stored = await done(store.append(room, event, now))
    if size is not None:
        assert len(stored.data) == size
    return stored.seq


def seqs(store: MemoryStore, room: str, **options: int | None) -> list[int]:
    options.setdefault("since", None)
    options.setdefault("limit", 50)
    page = store.history(room, **options)  # type: ignore[arg-type]
    for seq, data in page.entries:
        assert json.loads(data)["seq"] == seq
    return [seq for seq, _ in page.entries]


def item(n: int) -> dict[str, object]:
    return {"n": n}


async def push(store: MemoryStore, user: str, n: int | dict[str, object],
               now: float = 0.0) -> Stored:
    return await done(store.inbox_push(user, item(n) if isinstance(n, int) else n, now))


def pending(store: MemoryStore, user: str, now: float = 0.0) -> list[object]:
    """What the user's next connection would get, decoded, without the message ids."""
    found = []
    for stored in store.inbox_pending(user, now):
        value = json.loads(stored.data)
        assert value.pop("message_id") == stored.message_id
        assert stored.text == stored.data.decode()
        found.append(value.get("n", value))
    return found


def charged(*sizes: int) -> int:
    """What history messages of these encoded sizes, in one room, are charged."""
    return ROOM_OVERHEAD + sum(size + HISTORY_ENTRY_OVERHEAD for size in sizes)


async def test_presence(make_store: MakeStore) -> None:
    store = make_store()
    assert store.add_connection("alice", "c1")
    assert not store.add_connection("alice", "c2")
    assert store.add_connection("bob", "c3")
    assert sorted(store.user_connections("alice")) == ["c1", "c2"]
    assert store.online_users() == ["alice", "bob"]
    assert not store.remove_connection("alice", "c1")
    assert store.remove_connection("alice", "c2")
    assert not store.remove_connection("alice", "c2")
    assert list(store.user_connections("alice")) == []
    assert store.online_users() == ["bob"]


async def test_room_membership_counts_users_once(make_store: MakeStore) -> None:
    store = make_store()
    assert store.join("lobby", "alice", "c1")
    assert not store.join("lobby", "alice", "c2")  # same user, second connection
    assert not store.join("lobby", "alice", "c2")  # same connection again
    assert store.join("lobby", "bob", "c3")
    assert store.room_users("lobby") == ["alice", "bob"]
    assert sorted(store.room_connections("lobby")) == ["c1", "c2", "c3"]
    assert not store.leave("lobby", "alice", "c1")
    assert store.leave("lobby", "alice", "c2")
    assert not store.leave("lobby", "alice", "c2")
    assert store.room_users("lobby") == ["bob"]
    assert store.leave("lobby", "bob", "c3")
    assert not store.has_room("lobby")  # no members and no history: deleted


async def test_history_seq_and_ring(make_store: MakeStore) -> None:
    store = make_store(Limits(history_size=5))
    store.join("r", "alice", "c1")
    for i in range(1, 9):
        assert await post(store, "r", f"m{i}") == i
    assert store.room_seq("r") == 8
    assert seqs(store, "r") == [4, 5, 6, 7, 8]
    assert seqs(store, "r", limit=2) == [7, 8]
    assert seqs(store, "r", limit=0) == []
    assert seqs(store, "r", since=6) == [7, 8]
    assert seqs(store, "r", since=0) == [4, 5, 6, 7, 8]
    assert seqs(store, "r", since=0, limit=2) == [4, 5]
    assert seqs(store, "r", since=8) == []
    assert seqs(store, "nowhere") == []
    assert store.history_evicted == 3


async def test_history_pages_by_count_and_bytes(make_store: MakeStore) -> None:
    store = make_store()
    for _ in range(6):
        await post(store, "r", size=100)
    page = store.history("r", since=0, limit=2)
    assert [s for s, _ in page.entries] == [1, 2] and page.more  # newer ones remain
    page = store.history("r", since=4, limit=50)
    assert [s for s, _ in page.entries] == [5, 6] and not page.more
    page = store.history("r", since=0, limit=50, max_bytes=250)
    assert [s for s, _ in page.entries] == [1, 2] and page.more
    page = store.history("r", since=None, limit=50, max_bytes=250)
    assert [s for s, _ in page.entries] == [5, 6] and page.more  # older ones remain
    page = store.history("r", since=None, limit=6, max_bytes=600)
    assert [s for s, _ in page.entries] == [1, 2, 3, 4, 5, 6] and not page.more
    # A message bigger than the budget still comes, alone: paging always advances.
    page = store.history("r", since=2, limit=50, max_bytes=10)
    assert [s for s, _ in page.entries] == [3] and page.more
    assert store.history("r", since=6, limit=50) == ([], False)


async def test_history_before_a_seq(make_store: MakeStore) -> None:
    store = make_store(Limits(history_size=5))
    for _ in range(8):
        await post(store, "r", size=100)  # keeps 4..8
    assert seqs(store, "r", before=7) == [4, 5, 6]
    page = store.history("r", since=None, before=7, limit=2)
    assert [s for s, _ in page.entries] == [5, 6] and page.more
    assert store.history("r", since=None, before=5, limit=9) == (
        [(4, store.history("r", since=3, limit=1).entries[0][1])], False)
    assert store.history("r", since=None, before=4, limit=9) == ([], False)
    assert seqs(store, "r", before=100) == [4, 5, 6, 7, 8]
    page = store.history("r", since=None, before=9, limit=9, max_bytes=250)
    assert [s for s, _ in page.entries] == [7, 8] and page.more


async def test_the_store_gives_each_message_its_seq_epoch_and_id(make_store: MakeStore) -> None:
    store = make_store(epochs=lambda: "e" * 16)
    event = {"type": "message", "room": "r", "user_id": "alice", "content": "hi",
             "timestamp": "2024-05-01T12:00:00.000Z"}
    ticket = store.append("r", event, 0.0)
    stored = await done(ticket)
    assert stored.seq == 1 and stored.message_id == "m000001"
    assert stored.data == stored.text.encode()
    assert json.loads(stored.data) == {**event, "seq": 1, "epoch": "e" * 16,
                                       "message_id": "m000001"}
    assert list(json.loads(stored.data))[-3:] == ["seq", "epoch", "message_id"]  # appended
    assert event["seq"] == 1  # the caller's dict is completed in place
    second = await done(store.append("r", message_event("r"), 0.0))
    assert (second.seq, second.message_id) == (2, "m000002")
    assert store.history("r", since=None, limit=5).entries == [(1, stored.data),
                                                               (2, second.data)]


def test_message_ids_are_unique_across_instances() -> None:
    first, second = MessageIds(), MessageIds()
    assert first.prefix != second.prefix and len(first.prefix) == 12
    ids = {first() for _ in range(1000)} | {second() for _ in range(1000)}
    assert len(ids) == 2000
    assert MessageIds("abc")() == "abc-1"


async def test_each_room_stream_has_an_epoch_until_its_history_is_gone(
        make_store: MakeStore) -> None:
    counter = itertools.count(1)
    store = make_store(epochs=lambda: f"e{next(counter)}")
    assert store.room_epoch("r") is None
    store.join("r", "alice", "c1")
    assert store.room_epoch("r") == "e1"
    await post(store, "r")
    store.leave("r", "alice", "c1")
    assert store.room_epoch("r") == "e1"  # kept for its history: the same stream
    store.join("r", "bob", "c2")
    assert store.room_epoch("r") == "e1" and store.room_seq("r") == 1
    store.leave("r", "bob", "c2")
    store.join("q", "bob", "c2")
    store.leave("q", "bob", "c2")  # no history: deleted at once
    store.join("q", "bob", "c2")
    assert store.room_epoch("q") == "e3" and store.room_seq("q") == 0
    # A new store (a restart of the in-memory store): the same room is another stream.
    assert make_store().room_epoch("r") is None
    fresh = make_store()
    fresh.join("r", "alice", "c1")
    epoch = fresh.room_epoch("r")
    assert epoch is not None and len(epoch) == 16 and epoch != make_store()._new_epoch()


async def test_room_with_history_survives_its_members(make_store: MakeStore) -> None:
    store = make_store()
    store.join("r", "alice", "c1")
    await post(store, "r")
    store.leave("r", "alice", "c1")
    assert store.has_room("r")
    assert store.room_seq("r") == 1
    assert store.room_names() == ["r"]


async def test_a_room_kept_for_its_history_does_not_keep_its_member_tables(
        make_store: MakeStore) -> None:
    store = make_store()
    for i in range(100):
        store.join("r", f"u{i}", f"c{i}")
    await post(store, "r")
    for i in range(100):
        store.leave("r", f"u{i}", f"c{i}")
    room = store._rooms["r"]
    assert room.members == {} and room.users == {}
    assert room.members.__sizeof__() == {}.__sizeof__()


async def test_room_cap_evicts_idle_rooms_first(make_store: MakeStore) -> None:
    store = make_store(Limits(max_rooms=2))
    store.join("busy", "alice", "c1")
    await post(store, "idle")  # created by a post, no members
    store.join("new", "bob", "c2")  # evicts "idle", not "busy"
    assert store.room_names() == ["busy", "new"]
    assert store.rooms_evicted == 1
    with pytest.raises(RoomLimitReached):
        store.join("third", "carol", "c3")
    with pytest.raises(RoomLimitReached):
        store.append("third", message_event("third"), 0.0)
    assert store.room_names() == ["busy", "new"]


async def test_global_history_budget_shrinks_least_active_rooms(make_store: MakeStore) -> None:
    budget = 2 * charged(*[200] * 5)
    store = make_store(Limits(history_max_bytes=budget, history_size=100))
    for _ in range(5):
        await post(store, "old", size=200)
    for _ in range(5):
        await post(store, "new", size=200)
    assert store.history_bytes == budget
    await post(store, "new", size=200)  # over: one message of "old" goes
    assert store.history_bytes == budget
    assert seqs(store, "old") == [2, 3, 4, 5]
    assert len(seqs(store, "new")) == 6
    await post(store, "new", size=800)  # "old" (no members) is emptied and deleted
    assert not store.has_room("old")
    assert store.history_bytes <= budget
    assert store.history_bytes == charged(*[200] * (len(seqs(store, "new")) - 1), 800)


async def test_history_is_charged_in_encoded_bytes_plus_overheads(make_store: MakeStore) -> None:
    store = make_store()
    emoji = "\U0001F600" * 10  # 10 characters, 40 bytes of UTF-8
    data = (await done(store.append("r", {"content": emoji}, 0.0))).data
    assert len(data) == len(data.decode()) + 30
    assert store.history_bytes == ROOM_OVERHEAD + len(data) + HISTORY_ENTRY_OVERHEAD
    store.join("r", "alice", "c1")
    store.leave("r", "alice", "c1")
    store.join("other", "alice", "c1")
    for _ in range(3):
        await post(store, "other", size=180)
    store.leave("other", "alice", "c1")
    assert store.history_bytes == charged(len(data)) + charged(180, 180, 180)
    limited = make_store(Limits(history_size=2))
    for _ in range(5):
        await post(limited, "r", size=180)
    assert limited.history_bytes == charged(180, 180)


async def test_history_budget_keeps_the_newest_message(make_store: MakeStore) -> None:
    store = make_store(Limits(history_max_bytes=charged(100)))
    await post(store, "r", size=100)
    await post(store, "r", size=200)  # alone over budget: kept anyway, the older one dropped
    assert seqs(store, "r", limit=5) == [2]
    assert store.history_bytes == charged(200)


async def test_topic_seqs_bounded(make_store: MakeStore) -> None:
    store = make_store(Limits(max_topic_seqs=2))
    assert [store.next_topic_seq("a"), store.next_topic_seq("a")] == [1, 2]
    assert store.next_topic_seq("b") == 1
    assert store.next_topic_seq("a") == 3  # "a" is now most recent
    assert store.next_topic_seq("c") == 1  # forgets "b"
    assert store.next_topic_seq("b") == 1
    assert len(store._topic_seqs) == 2


def inbox_charge(users: int, *items: Stored) -> int:
    return users * INBOX_OVERHEAD + sum(len(i.data) + len(i.message_id) + INBOX_ITEM_OVERHEAD
                                        for i in items)


async def test_inbox_fifo_cap_and_pending_until_acknowledged(make_store: MakeStore) -> None:
    store = make_store(Limits(inbox_size=3))
    items = [await push(store, "alice", i) for i in range(5)]
    assert store.inbox_count() == 3
    assert store.inbox_dropped == 2
    assert store.inbox_bytes == inbox_charge(1, *items[2:])
    assert pending(store, "alice", now=1.0) == [2, 3, 4]
    assert pending(store, "alice", now=1.0) == [2, 3, 4]  # at least once: until acknowledged
    assert await done(store.inbox_ack("alice", [items[3].message_id, "unknown"])) == 1
    assert pending(store, "alice") == [2, 4]
    assert await done(store.inbox_ack("alice", [items[3].message_id])) == 0  # already
    assert await done(store.inbox_ack("bob", [items[2].message_id])) == 0  # not bob's
    assert await done(store.inbox_ack("alice", [items[2].message_id, items[4].message_id])) == 2
    assert pending(store, "alice") == []
    assert store.inbox_count() == 0
    assert store.inbox_bytes == 0


async def test_inbox_items_carry_their_message_id(make_store: MakeStore) -> None:
    store = make_store()
    stored = await done(store.inbox_push("alice", {"type": "notification", "message": "hi"}, 0.0))
    assert stored.message_id == "m000001"
    assert json.loads(stored.data) == {"type": "notification", "message": "hi",
                                       "message_id": "m000001"}
    assert store.inbox_pending("alice", 0.0) == [stored]


async def test_inbox_ttl(make_store: MakeStore) -> None:
    store = make_store(Limits(inbox_ttl=10.0))
    await push(store, "alice", 1, now=0.0)
    second = await push(store, "alice", 2, now=5.0)
    assert pending(store, "alice", now=12.0) == [2]
    assert store.inbox_expired == 1
    await push(store, "bob", 3, now=0.0)
    fourth = await push(store, "bob", 4, now=11.0)  # pushing expires the old item
    assert store.inbox_count() == 2  # alice's second (not acknowledged) and bob's fourth
    assert store.inbox_bytes == inbox_charge(2, second, fourth)


async def test_expiry_in_the_background(make_store: MakeStore) -> None:
    store = make_store(Limits(inbox_ttl=10.0, idempotency_ttl=10.0))
    for i in range(3):
        await push(store, f"user{i}", i, now=0.0)
    store.remember(Idem("http", "k", "f", {}), 0.0)
    store.maintain(5.0)  # the first call starts a sweep
    store.maintain(5.0)
    assert store.inbox_count() == 3 and len(store.idempotency) == 1
    store.maintain(10.0)
    store.maintain(10.0)
    assert store.inbox_count() == 0 and len(store.idempotency) == 0
    assert store.inbox_expired == 3 and store.inbox_bytes == 0


async def test_inbox_global_budget_trims_least_recent_users(make_store: MakeStore) -> None:
    probe = MemoryStore(ids=fixed_ids()).inbox_push("x", item(0), 0.0).result()
    store = make_store(Limits(inbox_max_bytes=inbox_charge(3, *[probe] * 3)))
    await push(store, "old", 1)
    await push(store, "old", 2)
    await push(store, "mid", 3)
    await push(store, "new", 4)  # over: the oldest item of "old" goes
    assert store.inbox_bytes == inbox_charge(3, *[probe] * 3)
    assert pending(store, "old") == [2]
    big = {"big": list(range(500))}
    await push(store, "big", dict(big))  # alone over budget: kept
    assert pending(store, "big") == [big]
    assert pending(store, "mid") == []
    assert pending(store, "new") == []
    for user in ("old", "big"):
        store.inbox_ack(user, [i.message_id for i in store.inbox_pending(user, 0.0)])
    assert store.inbox_count() == 0 and store.inbox_bytes == 0


async def test_inbox_is_charged_in_encoded_bytes(make_store: MakeStore) -> None:
    store = make_store()
    stored = await push(store, "alice", {"content": "\U0001F600" * 10})
    assert store.inbox_bytes == (INBOX_OVERHEAD + len(stored.data) + len(stored.message_id)
                                 + INBOX_ITEM_OVERHEAD)
    assert len(stored.data) == 77  # 40 bytes for the 10 characters, 24 for the message_id


# --- idempotency records ---------------------------------------------------------------------


async def test_records_are_kept_with_the_write_they_describe(make_store: MakeStore) -> None:
    store = make_store()
    idem = Idem("user:alice", "k1", "print", {"recipients": 2})
    stored = await done(store.append("r", message_event("r", "hi"), 0.0, idem))
    assert await done(store.recall("user:alice", "k1", 1.0)) == Recalled("print", stored.data,
                                                                       {"recipients": 2})
    assert await done(store.recall("user:bob", "k1", 1.0)) is None
    queued = await done(store.inbox_push("bob", item(1), 0.0, Idem("http", "k2", "p2", {})))
    assert await done(store.recall("http", "k2", 1.0)) == Recalled("p2", queued.data, {})
    assert await done(store.remember(Idem("http", "k3", "p3", {"recipients": 0}), 0.0)) is None
    assert await done(store.recall("http", "k3", 1.0)) == Recalled("p3", None, {"recipients": 0})
    day = Limits().idempotency_ttl
    assert await done(store.recall("http", "k3", day)) is None  # a day later: forgotten


async def test_records_are_bounded(make_store: MakeStore) -> None:
    store = make_store(Limits(max_idempotency_keys=2))
    for i in range(4):
        store.remember(Idem("http", f"k{i}", "p", {}), float(i))
    assert [k for _, k, _, _ in store.idempotency.items()] == ["k2", "k3"]
    assert store.idempotency.evicted == 2


# --- age retention ---------------------------------------------------------------------------


async def test_history_by_age(make_store: MakeStore) -> None:
    store = make_store(Limits(history_max_age=100.0))
    for at in (0.0, 50.0, 120.0):
        # A decoy in the content: the event's own timestamp is the one that counts.
        decoy = {"note": f"at {at}", "timestamp": "1970-01-01T00:00:00.000Z"}
        await post(store, "r", decoy, timestamp=iso_timestamp(at))  # type: ignore[arg-type]
    await post(store, "gone", timestamp=iso_timestamp(10.0))
    store.maintain(130.0)  # the first call only starts the sweep
    assert seqs(store, "r") == [1, 2, 3]
    store.maintain(130.0)
    assert seqs(store, "r") == [2, 3]  # older than 100 s at 130 s: the first one
    assert not store.has_room("gone")  # emptied, no members: deleted
    assert store.history_aged == 2
    assert store.room_seq("r") == 3  # seq goes on
    store.maintain(500.0)
    store.maintain(500.0)
    assert not store.has_room("r")
    forever = make_store()
    await post(forever, "r", timestamp=iso_timestamp(0.0))
    forever.maintain(1e12)
    forever.maintain(1e12)
    assert seqs(forever, "r") == [1]  # no history_max_age: no age limit


# --- the overheads charged are what CPython allocates ------------------------------------------

UNBOUNDED = Limits(history_max_bytes=1 << 40, inbox_max_bytes=1 << 40, max_rooms=10**7,
                   history_size=10**6, inbox_size=10**6)
N = 5000


def allocated(fill: Callable[[MemoryStore], None]) -> tuple[int, MemoryStore]:
    """Bytes tracemalloc sees allocated (and still held) while ``fill`` runs on a store."""
    store = MemoryStore(UNBOUNDED)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fill(store)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, store


def small(i: int) -> dict[str, object]:
    return {"content": "\U0001F600"}


def fill_rooms(store: MemoryStore) -> None:
    # Rooms created by a post, and rooms a few users joined, posted in and left.
    for i in range(N):
        room = f"room-{i:06d}-{'x' * 50}"
        if i % 2:
            for j in range(3):
                store.join(room, f"user-{j}-{'u' * 57}", f"c{j}-{i:014d}")
        store.append(room, small(i), 0.0)
        if i % 2:
            for j in range(3):
                store.leave(room, f"user-{j}-{'u' * 57}", f"c{j}-{i:014d}")


def fill_one_room(store: MemoryStore) -> None:
    for i in range(N):
        store.append("r", small(i), 0.0)


def fill_inboxes(store: MemoryStore) -> None:
    for i in range(N):
        store.inbox_push(f"user-{i:06d}-{'u' * 50}", small(i), now=float(i))


def fill_one_inbox(store: MemoryStore) -> None:
    for i in range(N):
        store.inbox_push("alice", small(i), now=float(i))


@pytest.mark.parametrize("fill", [fill_rooms, fill_one_room])
def test_history_charges_cover_what_is_allocated(fill: Callable[[MemoryStore], None]) -> None:
    used, store = allocated(fill)
    assert used <= store.history_bytes, (used / N, store.history_bytes / N)


@pytest.mark.parametrize("fill", [fill_inboxes, fill_one_inbox])
def test_inbox_charges_cover_what_is_allocated(fill: Callable[[MemoryStore], None]) -> None:
    used, store = allocated(fill)
    assert used <= store.inbox_bytes, (used / N, store.inbox_bytes / N)


async def test_room_counts_follow_every_change_of_the_room_set(make_store: MakeStore) -> None:
    """room_counts() is cached: check that every path that changes a room or a user count
    shows at once (joins, leaves, second connections, deletion, eviction, history budget)."""
    store = make_store(Limits(max_rooms=3, history_max_bytes=charged(700) + charged(600)))

    def fresh() -> list[tuple[str, int]]:
        return sorted((name, len(store.room_users(name))) for name in store.room_names())

    def check() -> list[tuple[str, int]]:
        counts = list(store.room_counts())
        assert counts == fresh()
        return counts

    assert check() == []
    store.join("b", "alice", "c1")
    assert check() == [("b", 1)]
    store.join("b", "alice", "c2")  # a second connection of the same user: still 1
    store.join("a", "bob", "c3")
    assert check() == [("a", 1), ("b", 1)]
    store.join("a", "carol", "c4")
    assert check() == [("a", 2), ("b", 1)]
    store.leave("a", "carol", "c4")
    assert check() == [("a", 1), ("b", 1)]
    store.leave("b", "alice", "c1")
    assert check() == [("a", 1), ("b", 1)]
    store.leave("b", "alice", "c2")  # no members, no history: deleted
    assert check() == [("a", 1)]
    await post(store, "idle", size=700)  # created by a post
    assert check() == [("a", 1), ("idle", 0)]
    await post(store, "a", size=601)  # over the history budget: "idle" is emptied and deleted
    assert check() == [("a", 1)]
    await post(store, "h1", size=160)
    await post(store, "h2", size=160)
    store.join("new", "dan", "c5")  # at max_rooms: evicts the idle room "h1"
    assert check() == [("a", 1), ("h2", 0), ("new", 1)]
    assert store.room_counts() is store.room_counts()  # cached while nothing changes


async def test_rooms_created_are_charged_to_their_address_and_user_while_they_live(
        make_store: MakeStore) -> None:
    store = make_store(Limits(max_rooms_per_ip=3, max_rooms_per_user=2, max_rooms=4))
    store.join("a", "alice", "c1", address="10.0.0.1")
    store.join("b", "alice", "c1", address="10.0.0.1")
    with pytest.raises(RoomQuotaReached, match=r"you have created too many rooms .*\(max 2\)"):
        store.join("c", "alice", "c1", address="10.0.0.9")  # the user's quota, any address
    store.join("c", "bob", "c2", address="10.0.0.1")
    with pytest.raises(RoomQuotaReached, match=r"this address has .*\(max 3\)"):
        store.join("d", "carol", "c3", address="10.0.0.1")
    assert not store.has_room("c-nope") and store.room_names() == ["a", "b", "c"]
    # Joining an existing room creates nothing: no quota needed.
    store.join("a", "carol", "c3", address="10.0.0.1")
    assert store.rooms_created(address="10.0.0.1") == 3
    assert store.rooms_created(user="alice") == 2 and store.rooms_created(user="carol") == 0
    # A room that ends gives its creator's quota back.
    store.leave("b", "alice", "c1")
    assert store.rooms_created(address="10.0.0.1") == 2
    assert store.rooms_created(user="alice") == 1
    store.join("d", "carol", "c3", address="10.0.0.1")
    # Rooms created without an address (the HTTP API) are charged to nobody.
    await done(store.append("e", message_event("e"), 0.0))
    assert store.rooms_created(address="10.0.0.1") == 3
    # An idle room evicted at the cap ends too.
    store.join("q", "dave", "c4", address="10.0.0.2")  # at max_rooms: evicts "e" (idle)
    await done(store.append("q", message_event("q"), 0.0))
    store.leave("q", "dave", "c4")  # kept for its history: still charged
    assert store.rooms_created(user="dave") == 1
    store.join("f", "erin", "c5", address="10.0.0.3")  # evicts "q"
    assert store.rooms_created(user="dave") == 0
    assert store.rooms_created(address="10.0.0.2") == 0
    assert "10.0.0.2" not in store._created_by_address  # forgotten, not kept at 0
    # The quota is a RoomLimitReached: the router answers forbidden, the API 503.
    assert issubclass(RoomQuotaReached, RoomLimitReached)
