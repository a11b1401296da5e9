"""rawws.chat.store.MemoryStore: presence, rooms, history, inboxes, and every memory bound."""

from __future__ import annotations

import gc
import itertools
import json
import tracemalloc
from collections.abc import Callable

import pytest

from rawws.chat.limits import Limits
from rawws.chat.store import (
    HISTORY_ENTRY_OVERHEAD,
    INBOX_ITEM_OVERHEAD,
    INBOX_OVERHEAD,
    ROOM_OVERHEAD,
    MemoryStore,
    RoomLimitReached,
    RoomQuotaReached,
)


def message(room: str, seq: int, content: str = "x") -> bytes:
    return json.dumps({"type": "message", "room": room, "seq": seq, "content": content}).encode()


def post(store: MemoryStore, room: str, content: str = "x", size: int | None = None) -> int:
    """Append a message; ``size``: pad its encoded length to exactly that many bytes."""
    seq = store.next_seq(room)
    data = message(room, seq, content)
    if size is not None:
        assert size >= len(data), (size, data)
        data = data[:-1] + b" " * (size - len(data)) + b"}"
    store.append(room, seq, data)
    return seq


def seqs(store: MemoryStore, room: str, **options: int | None) -> list[int]:
    options.setdefault("since", None)
    options.setdefault("limit", 50)
    page = store.history(room, **options)  # type: ignore[arg-type]
    for seq, data in page.entries:
        assert json.loads(data)["seq"] == seq
    return [seq for seq, _ in page.entries]


def item(n: int) -> bytes:
    return json.dumps({"n": n}).encode()


def charged(*sizes: int) -> int:
    """What history messages of these encoded sizes, in one room, are charged."""
    return ROOM_OVERHEAD + sum(size + HISTORY_ENTRY_OVERHEAD for size in sizes)


def test_presence() -> None:
    store = MemoryStore()
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


def test_room_membership_counts_users_once() -> None:
    store = MemoryStore()
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


def test_history_seq_and_ring() -> None:
    store = MemoryStore(Limits(history_size=5))
    store.join("r", "alice", "c1")
    for i in range(1, 9):
        assert post(store, "r", f"m{i}") == i
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


def test_history_pages_by_count_and_bytes() -> None:
    store = MemoryStore()
    for _ in range(6):
        post(store, "r", size=100)
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


def test_history_before_a_seq() -> None:
    store = MemoryStore(Limits(history_size=5))
    for _ in range(8):
        post(store, "r", size=100)  # keeps 4..8
    assert seqs(store, "r", before=7) == [4, 5, 6]
    page = store.history("r", since=None, before=7, limit=2)
    assert [s for s, _ in page.entries] == [5, 6] and page.more
    assert store.history("r", since=None, before=5, limit=9) == (
        [(4, store.history("r", since=3, limit=1).entries[0][1])], False)
    assert store.history("r", since=None, before=4, limit=9) == ([], False)
    assert seqs(store, "r", before=100) == [4, 5, 6, 7, 8]
    page = store.history("r", since=None, before=9, limit=9, max_bytes=250)
    assert [s for s, _ in page.entries] == [7, 8] and page.more


def test_append_refuses_a_seq_out_of_order() -> None:
    store = MemoryStore()
    post(store, "r")
    with pytest.raises(ValueError, match="not the next"):
        store.append("r", 5, message("r", 5))


def test_each_room_stream_has_an_epoch_until_its_history_is_gone() -> None:
    counter = itertools.count(1)
    store = MemoryStore(epochs=lambda: f"e{next(counter)}")
    assert store.room_epoch("r") is None
    store.join("r", "alice", "c1")
    assert store.room_epoch("r") == "e1"
    post(store, "r")
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
    assert MemoryStore().room_epoch("r") is None
    fresh = MemoryStore()
    fresh.join("r", "alice", "c1")
    epoch = fresh.room_epoch("r")
    assert epoch is not None and len(epoch) == 16 and epoch != MemoryStore()._new_epoch()


def test_room_with_history_survives_its_members() -> None:
    store = MemoryStore()
    store.join("r", "alice", "c1")
    post(store, "r")
    store.leave("r", "alice", "c1")
    assert store.has_room("r")
    assert store.room_seq("r") == 1
    assert store.room_names() == ["r"]


def test_a_room_kept_for_its_history_does_not_keep_its_member_tables() -> None:
    store = MemoryStore()
    for i in range(100):
        store.join("r", f"u{i}", f"c{i}")
    post(store, "r")
    for i in range(100):
        store.leave("r", f"u{i}", f"c{i}")
    room = store._rooms["r"]
    assert room.members == {} and room.users == {}
    assert room.members.__sizeof__() == {}.__sizeof__()


def test_room_cap_evicts_idle_rooms_first() -> None:
    store = MemoryStore(Limits(max_rooms=2))
    store.join("busy", "alice", "c1")
    post(store, "idle")  # created by a post, no members
    store.join("new", "bob", "c2")  # evicts "idle", not "busy"
    assert store.room_names() == ["busy", "new"]
    assert store.rooms_evicted == 1
    with pytest.raises(RoomLimitReached):
        store.join("third", "carol", "c3")
    with pytest.raises(RoomLimitReached):
        store.next_seq("third")
    assert store.room_names() == ["busy", "new"]


def test_global_history_budget_shrinks_least_active_rooms() -> None:
    budget = 2 * charged(*[100] * 5)
    store = MemoryStore(Limits(history_max_bytes=budget, history_size=100))
    for _ in range(5):
        post(store, "old", size=100)
    for _ in range(5):
        post(store, "new", size=100)
    assert store.history_bytes == budget
    post(store, "new", size=100)  # over: one message of "old" goes
    assert store.history_bytes == budget
    assert seqs(store, "old") == [2, 3, 4, 5]
    assert len(seqs(store, "new")) == 6
    post(store, "new", size=700)  # "old" (no members) is emptied and deleted
    assert not store.has_room("old")
    assert store.history_bytes <= budget
    assert store.history_bytes == charged(*[100] * (len(seqs(store, "new")) - 1), 700)


def test_history_is_charged_in_encoded_bytes_plus_overheads() -> None:
    store = MemoryStore()
    emoji = "\U0001F600" * 10  # 10 characters, 40 bytes of UTF-8
    seq = store.next_seq("r")
    data = json.dumps({"seq": seq, "content": emoji}, ensure_ascii=False).encode()
    store.append("r", seq, data)
    assert len(data) == len(data.decode()) + 30
    assert store.history_bytes == ROOM_OVERHEAD + len(data) + HISTORY_ENTRY_OVERHEAD
    store.join("r", "alice", "c1")
    store.leave("r", "alice", "c1")
    store.join("other", "alice", "c1")
    for _ in range(3):
        post(store, "other", size=80)
    store.leave("other", "alice", "c1")
    assert store.history_bytes == charged(len(data)) + charged(80, 80, 80)
    limited = MemoryStore(Limits(history_size=2))
    for _ in range(5):
        post(limited, "r", size=80)
    assert limited.history_bytes == charged(80, 80)


def test_history_budget_keeps_the_newest_message() -> None:
    store = MemoryStore(Limits(history_max_bytes=charged(100)))
    post(store, "r", size=100)
    post(store, "r", size=200)  # alone over budget: kept anyway, the older one dropped
    assert seqs(store, "r", limit=5) == [2]
    assert store.history_bytes == charged(200)


def test_topic_seqs_bounded() -> None:
    store = MemoryStore(Limits(max_topic_seqs=2))
    assert [store.next_topic_seq("a"), store.next_topic_seq("a")] == [1, 2]
    assert store.next_topic_seq("b") == 1
    assert store.next_topic_seq("a") == 3  # "a" is now most recent
    assert store.next_topic_seq("c") == 1  # forgets "b"
    assert store.next_topic_seq("b") == 1
    assert len(store._topic_seqs) == 2


def inbox_charge(users: int, *items: bytes) -> int:
    return users * INBOX_OVERHEAD + sum(len(i) + INBOX_ITEM_OVERHEAD for i in items)


def test_inbox_fifo_cap_and_take() -> None:
    store = MemoryStore(Limits(inbox_size=3))
    for i in range(5):
        store.inbox_push("alice", item(i), now=0.0)
    assert store.inbox_count() == 3
    assert store.inbox_dropped == 2
    assert store.inbox_bytes == inbox_charge(1, item(2), item(3), item(4))
    assert store.inbox_take("alice", now=1.0) == [item(2), item(3), item(4)]
    assert store.inbox_take("alice", now=1.0) == []
    assert store.inbox_count() == 0
    assert store.inbox_bytes == 0


def test_inbox_ttl() -> None:
    store = MemoryStore(Limits(inbox_ttl=10.0))
    store.inbox_push("alice", item(1), now=0.0)
    store.inbox_push("alice", item(2), now=5.0)
    assert store.inbox_take("alice", now=12.0) == [item(2)]
    assert store.inbox_expired == 1
    store.inbox_push("bob", item(3), now=0.0)
    store.inbox_push("bob", item(4), now=11.0)  # pushing expires the old item
    assert store.inbox_count() == 1
    assert store.inbox_bytes == inbox_charge(1, item(4))


def test_inbox_global_budget_trims_least_recent_users() -> None:
    store = MemoryStore(Limits(inbox_max_bytes=inbox_charge(3, *[item(0)] * 3)))
    store.inbox_push("old", item(1), now=0.0)
    store.inbox_push("old", item(2), now=0.0)
    store.inbox_push("mid", item(3), now=0.0)
    store.inbox_push("new", item(4), now=0.0)  # over: the oldest item of "old" goes
    assert store.inbox_bytes == inbox_charge(3, *[item(0)] * 3)
    assert store.inbox_take("old", now=0.0) == [item(2)]
    big = b"[" + b"0," * 500 + b"0]"
    store.inbox_push("big", big, now=0.0)  # alone over budget: kept
    assert store.inbox_take("big", now=0.0) == [big]
    assert store.inbox_take("mid", now=0.0) == []
    assert store.inbox_take("new", now=0.0) == []
    assert store.inbox_count() == 0 and store.inbox_bytes == 0


def test_inbox_is_charged_in_encoded_bytes() -> None:
    store = MemoryStore()
    data = json.dumps({"content": "\U0001F600" * 10}, ensure_ascii=False).encode()
    store.inbox_push("alice", data, now=0.0)
    assert store.inbox_bytes == INBOX_OVERHEAD + len(data) + INBOX_ITEM_OVERHEAD
    assert len(data) == 55  # 40 bytes for the 10 characters


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


def small(i: int) -> bytes:
    return b'{"seq":%d,"content":"%s"}' % (i, "\U0001F600".encode())


def fill_rooms(store: MemoryStore) -> None:
    # Rooms created by a post, and rooms a few users joined, posted in and left.
    for i in range(N):
        room = f"room-{i:06d}-{'x' * 50}"
        if i % 2:
            for j in range(3):
                store.join(room, f"user-{j}-{'u' * 57}", f"c{j}-{i:014d}")
        store.append(room, store.next_seq(room), small(i))
        if i % 2:
            for j in range(3):
                store.leave(room, f"user-{j}-{'u' * 57}", f"c{j}-{i:014d}")


def fill_one_room(store: MemoryStore) -> None:
    for i in range(N):
        store.append("r", store.next_seq("r"), small(i))


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


def test_room_counts_follow_every_change_of_the_room_set() -> None:
    """room_counts() is cached: check that every path that changes a room or a user count
    shows at once (joins, leaves, second connections, deletion, eviction, history budget)."""
    store = MemoryStore(Limits(max_rooms=3, history_max_bytes=charged(600) + charged(500)))

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
    post(store, "idle", size=600)  # created by a post
    assert check() == [("a", 1), ("idle", 0)]
    post(store, "a", size=501)  # over the history budget: "idle" is emptied and deleted
    assert check() == [("a", 1)]
    post(store, "h1", size=60)
    post(store, "h2", size=60)
    store.join("new", "dan", "c5")  # at max_rooms: evicts the idle room "h1"
    assert check() == [("a", 1), ("h2", 0), ("new", 1)]
    assert store.room_counts() is store.room_counts()  # cached while nothing changes


def test_rooms_created_are_charged_to_their_address_and_user_while_they_live() -> None:
    store = MemoryStore(Limits(max_rooms_per_ip=3, max_rooms_per_user=2, max_rooms=4))
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
    store.append("e", store.next_seq("e"), message("e", 1))
    assert store.rooms_created(address="10.0.0.1") == 3
    # An idle room evicted at the cap ends too.
    store.join("q", "dave", "c4", address="10.0.0.2")  # at max_rooms: evicts "e" (idle)
    store.append("q", store.next_seq("q"), message("q", 1))
    store.leave("q", "dave", "c4")  # kept for its history: still charged
    assert store.rooms_created(user="dave") == 1
    store.join("f", "erin", "c5", address="10.0.0.3")  # evicts "q"
    assert store.rooms_created(user="dave") == 0
    assert store.rooms_created(address="10.0.0.2") == 0
    assert "10.0.0.2" not in store._created_by_address  # forgotten, not kept at 0
    # The quota is a RoomLimitReached: the router answers forbidden, the API 503.
    assert issubclass(RoomQuotaReached, RoomLimitReached)
