"""rawws.chat.store.MemoryStore: presence, rooms, history, inboxes, and every memory bound."""

from __future__ import annotations

import pytest

from rawws.chat.limits import Limits
from rawws.chat.store import MemoryStore, RoomLimitReached


def message(room: str, seq: int, content: str = "x") -> dict[str, object]:
    return {"type": "message", "room": room, "seq": seq, "content": content}


def post(store: MemoryStore, room: str, content: str = "x", size: int = 10) -> int:
    seq = store.next_seq(room)
    store.append(room, message(room, seq, content), size)
    return seq


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
    assert [m["seq"] for m in store.history("r", since=None, limit=50)] == [4, 5, 6, 7, 8]
    assert [m["seq"] for m in store.history("r", since=None, limit=2)] == [7, 8]
    assert store.history("r", since=None, limit=0) == []
    assert [m["seq"] for m in store.history("r", since=6, limit=50)] == [7, 8]
    assert [m["seq"] for m in store.history("r", since=0, limit=50)] == [4, 5, 6, 7, 8]
    assert store.history("r", since=8, limit=50) == []
    assert store.history("nowhere", since=None, limit=5) == []
    assert store.history_evicted == 3


def test_room_with_history_survives_its_members() -> None:
    store = MemoryStore()
    store.join("r", "alice", "c1")
    post(store, "r")
    store.leave("r", "alice", "c1")
    assert store.has_room("r")
    assert store.room_seq("r") == 1
    assert store.room_names() == ["r"]


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
    store = MemoryStore(Limits(history_max_bytes=100, history_size=100))
    for _ in range(5):
        post(store, "old", size=10)
    for _ in range(5):
        post(store, "new", size=10)
    assert store._history_bytes == 100
    post(store, "new", size=10)  # 110 > 100: one message of "old" goes
    assert store._history_bytes == 100
    assert [m["seq"] for m in store.history("old", since=None, limit=50)] == [2, 3, 4, 5]
    assert len(store.history("new", since=None, limit=50)) == 6
    post(store, "new", size=60)  # "old" (no members) is emptied and deleted
    assert not store.has_room("old")
    assert store._history_bytes <= 100


def test_history_budget_keeps_the_newest_message() -> None:
    store = MemoryStore(Limits(history_max_bytes=50))
    post(store, "r", size=40)
    post(store, "r", size=80)  # alone over budget: kept anyway, the older one dropped
    assert [m["seq"] for m in store.history("r", since=None, limit=5)] == [2]


def test_topic_seqs_bounded() -> None:
    store = MemoryStore(Limits(max_topic_seqs=2))
    assert [store.next_topic_seq("a"), store.next_topic_seq("a")] == [1, 2]
    assert store.next_topic_seq("b") == 1
    assert store.next_topic_seq("a") == 3  # "a" is now most recent
    assert store.next_topic_seq("c") == 1  # forgets "b"
    assert store.next_topic_seq("b") == 1
    assert len(store._topic_seqs) == 2


def test_inbox_fifo_cap_and_take() -> None:
    store = MemoryStore(Limits(inbox_size=3))
    for i in range(5):
        store.inbox_push("alice", {"n": i}, 10, now=0.0)
    assert store.inbox_count() == 3
    assert store.inbox_dropped == 2
    assert store.inbox_take("alice", now=1.0) == [{"n": 2}, {"n": 3}, {"n": 4}]
    assert store.inbox_take("alice", now=1.0) == []
    assert store.inbox_count() == 0
    assert store._inbox_bytes == 0


def test_inbox_ttl() -> None:
    store = MemoryStore(Limits(inbox_ttl=10.0))
    store.inbox_push("alice", {"n": 1}, 10, now=0.0)
    store.inbox_push("alice", {"n": 2}, 10, now=5.0)
    assert store.inbox_take("alice", now=12.0) == [{"n": 2}]
    assert store.inbox_expired == 1
    store.inbox_push("bob", {"n": 3}, 10, now=0.0)
    store.inbox_push("bob", {"n": 4}, 10, now=11.0)  # pushing expires the old item
    assert store.inbox_count() == 1
    assert store._inbox_bytes == 10


def test_inbox_global_budget_trims_least_recent_users() -> None:
    store = MemoryStore(Limits(inbox_max_bytes=30))
    store.inbox_push("old", {"n": 1}, 10, now=0.0)
    store.inbox_push("old", {"n": 2}, 10, now=0.0)
    store.inbox_push("mid", {"n": 3}, 10, now=0.0)
    store.inbox_push("new", {"n": 4}, 10, now=0.0)
    assert store._inbox_bytes == 30
    assert store.inbox_take("old", now=0.0) == [{"n": 2}]
    store.inbox_push("big", {"n": 5}, 100, now=0.0)  # alone over budget: kept
    assert store.inbox_take("big", now=0.0) == [{"n": 5}]
    assert store.inbox_take("mid", now=0.0) == []
    assert store.inbox_take("new", now=0.0) == []
    assert store.inbox_count() == 0 and store._inbox_bytes == 0


def test_room_counts_follow_every_change_of_the_room_set() -> None:
    """room_counts() is cached: check that every path that changes a room or a user count
    shows at once (joins, leaves, second connections, deletion, eviction, history budget)."""
    store = MemoryStore(Limits(max_rooms=3, history_max_bytes=100))

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
    post(store, "idle", size=60)  # created by a post
    assert check() == [("a", 1), ("idle", 0)]
    post(store, "a", size=50)  # over the history budget: "idle" is emptied and deleted
    assert check() == [("a", 1)]
    post(store, "h1", size=1)
    post(store, "h2", size=1)
    store.join("new", "dan", "c5")  # at max_rooms: evicts the idle room "h1"
    assert check() == [("a", 1), ("h2", 0), ("new", 1)]
    assert store.room_counts() is store.room_counts()  # cached while nothing changes
