"""rawws.chat.router: every request, reply, fan-out, error and close, without sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawws.chat.auth import Authenticator, JWTVerifier, StaticTokens, encode_jwt
from rawws.chat.limits import Limits
from rawws.chat.router import Endpoint, Route, Send, Session, route_for

from .harness import EPOCH, MID, STAMP, WALL, Harness

SECRET = "router-secret"


def only_error(h: Harness, session: Any) -> Any:
    item = h.take_one(session)
    assert item["type"] == "error", item
    return item


# --- routes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "expected"), [
    ("/ws", Route(Endpoint.GENERAL)),
    ("/ws/", Route(Endpoint.GENERAL)),
    ("/", Route(Endpoint.GENERAL)),
    ("/ws?user_id=a", Route(Endpoint.GENERAL)),
    ("/ws/notifications", Route(Endpoint.NOTIFICATIONS)),
    ("/ws/chat/lobby", Route(Endpoint.CHAT, "lobby")),
    ("/ws/chat/team.red?x=1", Route(Endpoint.CHAT, "team.red")),
    ("/ws/chat/a%2Db", Route(Endpoint.CHAT, "a-b")),
    ("/ws/chat/", None),
    ("/ws/chat/a%20b", None),
    ("/ws/chat/a/b", None),
    ("/ws/chat/%ff", None),
    ("/wsx", None),
    ("/api/rooms", None),
])
def test_route_for(path: str, expected: Route | None) -> None:
    assert route_for(path) == expected


# --- connect -----------------------------------------------------------------------------------


def test_welcome_with_user_id() -> None:
    h = Harness()
    s = h.open("alice")
    assert h.take(s) == [{"type": "welcome", "user_id": "alice", "connection_id": s.id,
                          "offline_items": 0}]
    assert s.id == "0000000000000001"
    assert h.router.online_users() == ["alice"]


def test_guest_name() -> None:
    h = Harness()
    s = h.open()
    assert s.user == "guest-000002"  # the counter's first value went to the connection id
    assert h.take(s)[0]["user_id"] == "guest-000002"


def test_invalid_user_id_closes_1008() -> None:
    h = Harness()
    s = h.open("not valid")
    assert h.closed[s] == (1008, "invalid user_id")
    assert h.take(s) == []
    assert h.router.online_users() == []


def test_chat_endpoint_joins_on_connect() -> None:
    h = Harness()
    bob = h.welcomed("bob", path="/ws/chat/lobby")
    s = h.open("alice", path="/ws/chat/lobby")
    welcome, joined = h.take(s)
    assert welcome["type"] == "welcome"
    assert joined == {"type": "joined", "room": "lobby", "users": ["bob", "alice"],
                      "user_count": 2, "history": [], "seq": 0, "epoch": EPOCH, "more": False}
    assert h.take(bob) == [{"type": "user_joined", "room": "lobby", "user_id": "alice",
                            "users": ["bob", "alice"], "user_count": 2, "timestamp": STAMP}]


def test_chat_endpoint_message_defaults_to_its_room() -> None:
    h = Harness()
    a = h.welcomed("alice", path="/ws/chat/lobby")
    h.send(a, {"type": "message", "content": "hi"})
    assert h.take_one(a) == {"type": "message", "room": "lobby", "user_id": "alice",
                             "content": "hi", "timestamp": STAMP, "seq": 1, "epoch": EPOCH,
                             "message_id": MID}


# --- ping --------------------------------------------------------------------------------------


def test_ping_text_and_json() -> None:
    h = Harness()
    s = h.welcomed("alice")
    h.send(s, "ping")
    assert h.take(s) == [{"type": "pong"}]
    h.send(s, {"type": "ping", "id": 7})
    assert h.take(s) == [{"type": "pong", "id": 7}]
    h.send(s, {"action": "ping", "id": "x"})
    assert h.take(s) == [{"type": "pong", "id": "x"}]


# --- rooms ---------------------------------------------------------------------------------------


def test_join_message_leave() -> None:
    h = Harness()
    a = h.welcomed("alice")
    b = h.welcomed("bob")
    h.send(a, {"type": "join", "room": "lobby", "id": 1})
    assert h.take(a) == [{"type": "joined", "room": "lobby", "users": ["alice"],
                          "user_count": 1, "history": [], "seq": 0, "epoch": EPOCH,
                          "more": False, "id": 1}]
    h.send(b, {"type": "join", "room": "lobby"})
    assert h.take_one(b)["users"] == ["alice", "bob"]
    assert h.take(a) == [{"type": "user_joined", "room": "lobby", "user_id": "bob",
                          "users": ["alice", "bob"], "user_count": 2, "timestamp": STAMP}]

    h.send(a, {"type": "message", "room": "lobby", "content": "hello"})
    expected = {"type": "message", "room": "lobby", "user_id": "alice", "content": "hello",
                "timestamp": STAMP, "seq": 1, "epoch": EPOCH, "message_id": MID}
    assert h.take(a) == [expected]
    assert h.take(b) == [expected]
    assert h.sends[-1].targets == [a, b] or set(h.sends[-1].targets) == {a, b}

    h.send(b, {"type": "message", "room": "lobby", "content": {"rich": [1, 2]}, "id": "m2"})
    assert h.take(b) == [{"type": "message", "room": "lobby", "user_id": "bob",
                          "content": {"rich": [1, 2]}, "timestamp": STAMP, "seq": 2,
                          "epoch": EPOCH, "message_id": "mid-2", "id": "m2"}]
    assert h.take(a) == [{"type": "message", "room": "lobby", "user_id": "bob",
                          "content": {"rich": [1, 2]}, "timestamp": STAMP, "seq": 2,
                          "epoch": EPOCH, "message_id": "mid-2"}]
    # The sender's copy is everyone's text with the id spliced in, byte for byte what
    # encoding the event with its id would give.
    assert h.sends[-1].text == json.dumps(
        {"type": "message", "room": "lobby", "user_id": "bob", "content": {"rich": [1, 2]},
         "timestamp": STAMP, "seq": 2, "epoch": EPOCH, "message_id": "mid-2", "id": "m2"},
        separators=(",", ":"))

    h.send(b, {"type": "leave", "room": "lobby", "id": 9})
    assert h.take(b) == [{"type": "left", "room": "lobby", "id": 9}]
    assert h.take(a) == [{"type": "user_left", "room": "lobby", "user_id": "bob",
                          "users": ["alice"], "user_count": 1, "timestamp": STAMP}]
    h.send(b, {"type": "message", "room": "lobby", "content": "x"})
    assert only_error(h, b)["code"] == "not_found"


def test_fan_out_is_encoded_once() -> None:
    h = Harness()
    members = [h.welcomed(f"u{i}") for i in range(20)]
    for m in members:
        h.send(m, {"type": "join", "room": "big"})
    h.sends.clear()
    h.send(members[0], {"type": "message", "room": "big", "content": "x"})
    assert len(h.sends) == 1
    assert set(h.sends[0].targets) == set(members)


def test_history_and_since() -> None:
    h = Harness(limits=Limits(history_size=10, history_on_join=3))
    a = h.welcomed("alice")
    h.send(a, {"type": "join", "room": "r"})
    h.take(a)
    for i in range(1, 13):
        h.send(a, {"type": "message", "room": "r", "content": f"m{i}"})
    h.take(a)
    b = h.welcomed("bob")
    h.send(b, {"type": "join", "room": "r"})
    joined = h.take_one(b)
    assert [m["content"] for m in joined["history"]] == ["m10", "m11", "m12"]
    assert joined["seq"] == 12
    assert "complete" not in joined
    c = h.welcomed("carol")
    h.send(c, {"type": "join", "room": "r", "since": 8})
    joined = h.take_one(c)
    assert [m["seq"] for m in joined["history"]] == [9, 10, 11, 12]
    assert joined["complete"] is True and joined["recovered"] is True
    d = h.welcomed("dave")
    h.send(d, {"type": "join", "room": "r", "since": 1})  # 2 is gone (ring of 10 keeps 3..12)
    joined = h.take_one(d)
    assert [m["seq"] for m in joined["history"]] == list(range(3, 13))
    assert joined["complete"] is False and joined["recovered"] is False
    e = h.welcomed("erin")
    h.send(e, {"type": "join", "room": "r", "since": 12})
    joined = h.take_one(e)
    assert joined["history"] == [] and joined["complete"] is True
    f = h.welcomed("frank")
    h.send(f, {"type": "join", "room": "r", "since": 500})  # the room restarted: send all kept
    joined = h.take_one(f)
    assert len(joined["history"]) == 10 and joined["recovered"] is False


def test_every_room_message_carries_the_stream_epoch_and_a_join_names_its_stream() -> None:
    h = Harness(limits=Limits(history_size=10))
    a = h.welcomed("alice")
    h.send(a, {"type": "join", "room": "r"})
    assert h.take_one(a)["epoch"] == EPOCH
    for i in range(1, 6):
        h.send(a, {"type": "message", "room": "r", "content": f"m{i}"})
    assert {m["epoch"] for m in h.take(a)} == {EPOCH}
    b = h.welcomed("bob")
    # Same stream: since counts in it.
    h.send(b, {"type": "join", "room": "r", "since": 3, "epoch": EPOCH})
    joined = h.take_one(b)
    assert [m["seq"] for m in joined["history"]] == [4, 5]
    assert joined["epoch"] == EPOCH and joined["complete"] is True
    assert {m["epoch"] for m in joined["history"]} == {EPOCH}
    # Another stream (the server lost the one the client counted in): everything kept is new.
    c = h.welcomed("carol")
    h.send(c, {"type": "join", "room": "r", "since": 3, "epoch": "an-older-epoch"})
    joined = h.take_one(c)
    assert [m["seq"] for m in joined["history"]] == [1, 2, 3, 4, 5]
    assert joined["epoch"] == EPOCH and joined["complete"] is True
    assert joined["recovered"] is False  # all of this stream, but not the client's position
    h.send(c, {"type": "join", "room": "r", "epoch": 7, "id": 1})
    assert h.take_one(c) == {"type": "error", "code": "bad_request",
                             "message": "epoch must be a string", "id": 1}
    # The room ends (no members, no history left) and comes back: a new stream.
    h2 = Harness()
    d = h2.welcomed("dave")
    h2.send(d, {"type": "join", "room": "q"})
    h2.send(d, {"type": "leave", "room": "q"})
    h2.send(d, {"type": "join", "room": "q"})
    first, _, again = h2.take(d)
    assert first["epoch"] == EPOCH and again["epoch"] == "epoch-0002"


def test_second_connection_of_a_user_is_not_announced() -> None:
    h = Harness()
    a1 = h.welcomed("alice")
    a2 = h.welcomed("alice")
    b = h.welcomed("bob")
    for s in (b, a1):
        h.send(s, {"type": "join", "room": "r"})
    h.take(b)
    h.send(a2, {"type": "join", "room": "r"})
    assert h.take_one(a2)["users"] == ["bob", "alice"]
    assert h.take(b) == []  # alice was already present
    h.send(a1, {"type": "leave", "room": "r"})
    h.take(a1)
    assert h.take(b) == []  # alice is still present through a2
    h.disconnect(a2)
    assert h.take(b) == [{"type": "user_left", "room": "r", "user_id": "alice", "users": ["bob"],
                          "user_count": 1, "timestamp": STAMP}]


def test_user_lists_are_capped() -> None:
    h = Harness(limits=Limits(max_users_listed=3))
    sessions = [h.welcomed(f"u{i}") for i in range(5)]
    for s in sessions:
        h.send(s, {"type": "join", "room": "r"})
    joined = h.take(sessions[4])[-1]
    assert joined["users"] == ["u0", "u1", "u2"] and joined["user_count"] == 5
    announced = h.take(sessions[0])[-1]
    assert announced["type"] == "user_joined" and announced["user_id"] == "u4"
    assert announced["users"] == ["u0", "u1", "u2"] and announced["user_count"] == 5
    h.disconnect(sessions[1])
    left = h.take(sessions[0])[-1]
    assert left["users"] == ["u0", "u2", "u3"] and left["user_count"] == 4


def test_join_twice_is_idempotent() -> None:
    h = Harness()
    a = h.welcomed("alice")
    b = h.welcomed("bob")
    h.send(b, {"type": "join", "room": "r"})
    h.send(a, {"type": "join", "room": "r"})
    h.take(b)
    h.send(a, {"type": "join", "room": "r", "id": 2})
    assert h.take(a)[-1]["type"] == "joined"
    assert h.take(b) == []


def test_disconnect_announces_and_cleans_up() -> None:
    h = Harness()
    a = h.welcomed("alice")
    b = h.welcomed("bob")
    for s in (a, b):
        h.send(s, {"type": "join", "room": "r1"})
        h.send(s, {"type": "join", "room": "r2"})
        h.send(s, {"type": "subscribe", "topics": ["t.#"]})
    h.take(a)
    h.disconnect(b)
    left = h.take(a)
    assert [(m["type"], m["room"]) for m in left] == [("user_left", "r1"), ("user_left", "r2")]
    assert h.router.online_users() == ["alice"]
    assert h.router.index.match("t.x") == {a}
    h.disconnect(a)
    assert h.router.sessions == {}
    assert h.router.store.room_names() == []
    assert len(h.router.index) == 0
    h.disconnect(a)  # twice is harmless


@pytest.mark.parametrize(("msg", "code"), [
    ({"type": "join"}, "bad_request"),
    ({"type": "join", "room": "a b"}, "bad_request"),
    ({"type": "join", "room": 5}, "bad_request"),
    ({"type": "join", "room": "r", "since": -1}, "bad_request"),
    ({"type": "join", "room": "r", "since": "3"}, "bad_request"),
    ({"type": "join", "room": "r", "since": True}, "bad_request"),
    ({"type": "leave", "room": "r"}, "not_found"),
    ({"type": "leave"}, "bad_request"),
    ({"type": "message", "room": "r"}, "bad_request"),
    ({"type": "message", "content": "x"}, "bad_request"),
    ({"type": "message", "room": "r", "content": "x"}, "not_found"),
    ({"type": "message", "room": "r", "content": "x" * 16385}, "too_large"),
])
def test_room_errors(msg: dict[str, Any], code: str) -> None:
    h = Harness()
    s = h.welcomed("alice")
    h.send(s, {**msg, "id": "q"})
    item = only_error(h, s)
    assert item["code"] == code
    assert item["id"] == "q"
    assert isinstance(item["message"], str) and item["message"]
    assert h.router.store.room_names() == []  # nothing happened


def test_room_caps() -> None:
    h = Harness(limits=Limits(max_rooms_per_connection=2, max_rooms=3))
    a = h.welcomed("alice")
    h.send(a, {"type": "join", "room": "r1"})
    h.send(a, {"type": "join", "room": "r2"})
    h.take(a)
    h.send(a, {"type": "join", "room": "r3"})
    assert only_error(h, a)["message"] == "too many rooms on this connection (max 2)"
    b = h.welcomed("bob")
    h.send(b, {"type": "join", "room": "r3"})
    h.take(b)
    h.send(b, {"type": "join", "room": "r4"})
    item = only_error(h, b)
    assert item["code"] == "forbidden" and item["message"] == "too many rooms (max 3)"


# --- private -------------------------------------------------------------------------------------


def test_private_to_online_user_all_connections() -> None:
    h = Harness()
    a = h.welcomed("alice")
    b1 = h.welcomed("bob")
    b2 = h.welcomed("bob", path="/ws/notifications")
    h.send(a, {"type": "private", "target": "bob", "content": "psst", "id": 3})
    assert h.take(a) == [{"type": "private_ack", "target": "bob", "status": "sent",
                          "recipients": 2, "id": 3}]
    expected = {"type": "private", "from": "alice", "content": "psst", "timestamp": STAMP}
    assert h.take(b1) == [expected]
    assert h.take(b2) == [expected]


def test_private_to_offline_user_waits_in_inbox() -> None:
    h = Harness()
    a = h.welcomed("alice")
    h.send(a, {"type": "private", "target": "carol", "content": "first"})
    h.send(a, {"type": "private", "target": "carol", "content": "second"})
    assert h.take(a) == [
        {"type": "private_ack", "target": "carol", "status": "queued", "recipients": 0,
         "message_id": "mid-1"},
        {"type": "private_ack", "target": "carol", "status": "queued", "recipients": 0,
         "message_id": "mid-2"}]
    c = h.open("carol")
    items = h.take(c)
    assert [m["type"] for m in items] == ["welcome", "private", "private"]
    assert items[0]["offline_items"] == 2  # the welcome says how many follow
    assert [m["content"] for m in items[1:]] == ["first", "second"]
    # Delivered from the inbox: marked offline, otherwise the shape of a live one, with
    # the message_id to acknowledge it by.
    assert items[1] == {"type": "private", "from": "alice", "content": "first",
                        "timestamp": STAMP, "message_id": "mid-1", "offline": True}
    # At least once: not acknowledged yet, so another connection gets them too.
    c2 = h.open("carol")
    assert [m.get("message_id") for m in h.take(c2)] == [None, "mid-1", "mid-2"]
    h.send(c, {"type": "ack", "message_ids": ["mid-1", "mid-2"], "id": 7})
    assert h.take(c) == [{"type": "acked", "count": 2, "id": 7}]
    c3 = h.open("carol")
    assert [m for m in h.take(c3)] == [{"type": "welcome", "user_id": "carol",
                                        "connection_id": c3.id,
                                        "offline_items": 0}]  # never again after the ack
    # A live private message to carol, now online, is not marked.
    h.send(a, {"type": "private", "target": "carol", "content": "live"})
    assert "offline" not in h.take(c)[0]


@pytest.mark.parametrize(("msg", "code"), [
    ({"type": "private", "content": "x"}, "bad_request"),
    ({"type": "private", "target": "no one", "content": "x"}, "bad_request"),
    ({"type": "private", "target": "bob"}, "bad_request"),
    ({"type": "private", "target": "bob", "content": ["x" * 17000]}, "too_large"),
])
def test_private_errors(msg: dict[str, Any], code: str) -> None:
    h = Harness()
    s = h.welcomed("alice")
    h.send(s, msg)
    assert only_error(h, s)["code"] == code
    assert h.router.store.inbox_count() == 0


# --- topics --------------------------------------------------------------------------------------


def test_subscribe_publish_unsubscribe() -> None:
    h = Harness()
    a = h.welcomed("alice")
    b = h.welcomed("bob")
    p = h.welcomed("pub")
    h.send(a, {"type": "subscribe", "topics": ["stock.*", "stock.#", "stock.*"], "id": 1})
    assert h.take(a) == [{"type": "subscribed", "topics": ["stock.*", "stock.#"], "id": 1}]
    h.send(b, {"action": "subscribe", "topics": ["stock.AAPL"]})
    assert h.take(b) == [{"type": "subscribed", "topics": ["stock.AAPL"]}]
    h.send(p, {"action": "publish", "topic": "stock.AAPL", "message": {"price": 1.5}})
    assert h.take(p) == [{"type": "published", "topic": "stock.AAPL", "recipients": 2}]
    note = {"type": "notification", "topic": "stock.AAPL", "message": {"price": 1.5},
            "timestamp": STAMP, "seq": 1}
    assert h.take(a) == [note]  # once, although two patterns match
    assert h.take(b) == [note]
    assert h.sends[-2].droppable is True
    h.send(p, {"type": "publish", "topic": "stock.AAPL", "message": None, "id": "p"})
    assert h.take(p) == [{"type": "published", "topic": "stock.AAPL", "recipients": 2,
                          "id": "p"}]
    assert h.take(a)[0]["seq"] == 2
    h.take(b)
    h.send(a, {"type": "unsubscribe", "topics": ["stock.*", "never"]})
    assert h.take(a) == [{"type": "unsubscribed", "topics": ["stock.*", "never"]}]
    h.send(p, {"type": "publish", "topic": "stock.AAPL.x", "message": 1})
    assert h.take(p)[0]["recipients"] == 1
    assert h.take(a)[0]["topic"] == "stock.AAPL.x"
    h.send(p, {"type": "publish", "topic": "news", "message": 1})
    assert h.take(p)[0]["recipients"] == 0


def test_single_topic_field_accepted() -> None:
    h = Harness()
    a = h.welcomed("alice")
    h.send(a, {"type": "subscribe", "topic": "a.b"})
    assert h.take(a) == [{"type": "subscribed", "topics": ["a.b"]}]


@pytest.mark.parametrize(("msg", "code"), [
    ({"type": "subscribe"}, "bad_request"),
    ({"type": "subscribe", "topics": []}, "bad_request"),
    ({"type": "subscribe", "topics": "a"}, "bad_request"),
    ({"type": "subscribe", "topics": ["a..b"]}, "bad_request"),
    ({"type": "subscribe", "topics": ["#.a"]}, "bad_request"),
    ({"type": "subscribe", "topics": [1]}, "bad_request"),
    ({"type": "subscribe", "topics": [f"t{i}" for i in range(65)]}, "too_large"),
    ({"type": "unsubscribe", "topics": None}, "bad_request"),
    ({"type": "publish", "message": 1}, "bad_request"),
    ({"type": "publish", "topic": "a.*", "message": 1}, "bad_request"),
    ({"type": "publish", "topic": "a"}, "bad_request"),
    ({"type": "publish", "topic": "a", "message": "x" * 20000}, "too_large"),
])
def test_topic_errors(msg: dict[str, Any], code: str) -> None:
    h = Harness()
    s = h.welcomed("alice")
    h.send(s, msg)
    assert only_error(h, s)["code"] == code
    assert len(h.router.index) == 0


def test_topic_cap_per_connection() -> None:
    h = Harness(limits=Limits(max_topics_per_connection=3))
    a = h.welcomed("alice")
    h.send(a, {"type": "subscribe", "topics": ["a", "b"]})
    h.take(a)
    h.send(a, {"type": "subscribe", "topics": ["a", "c", "d"]})
    assert only_error(h, a)["code"] == "forbidden"
    h.send(a, {"type": "subscribe", "topics": ["a", "c"]})
    assert h.take(a) == [{"type": "subscribed", "topics": ["a", "c"]}]


def test_publish_disabled() -> None:
    h = Harness(client_publish=False)
    a = h.welcomed("alice")
    h.send(a, {"type": "publish", "topic": "a", "message": 1})
    assert only_error(h, a)["code"] == "forbidden"


def test_notifications_endpoint_is_receive_only() -> None:
    h = Harness()
    n = h.welcomed("alice", path="/ws/notifications")
    for msg in ({"type": "join", "room": "r"}, {"type": "subscribe", "topics": ["a"]},
                {"type": "publish", "topic": "a", "message": 1},
                {"type": "private", "target": "bob", "content": "x"}):
        h.send(n, msg)
        assert only_error(h, n)["code"] == "forbidden"
    h.send(n, "ping")
    assert h.take(n) == [{"type": "pong"}]


# --- general errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "code"), [
    ("not json", "bad_json"),
    ("{", "bad_json"),
    ('{"type":"ping","x":NaN}', "bad_json"),
    (b"\x00\x01", "bad_json"),
    ("[1,2]", "bad_request"),
    ("{}", "bad_request"),
    ('{"type":5}', "bad_request"),
    ('{"type":"ping","id":[1]}', "bad_request"),
    ('{"type":"ping","id":true}', "bad_request"),
    ('{"type":"ping","id":"' + "x" * 129 + '"}', "bad_request"),
    ('{"type":"teleport"}', "unknown_type"),
    ('{"type":"auth","token":"x"}', "bad_request"),
    ('{"a":' + "[" * 40 + "]" * 40 + "}", "too_large"),
])
def test_request_errors(message: str | bytes, code: str) -> None:
    h = Harness()
    s = h.welcomed("alice")
    h.send(s, message)
    item = only_error(h, s)
    assert item["code"] == code
    assert item["id"] is None
    assert h.router.metrics.errors[code] == 1
    assert s not in h.closed


def test_null_id_is_no_id() -> None:
    h = Harness()
    s = h.welcomed("alice")
    h.send(s, {"type": "ping", "id": None})
    assert h.take(s) == [{"type": "pong"}]


# --- rate limit ----------------------------------------------------------------------------------


def test_rate_limit_then_close() -> None:
    h = Harness(limits=Limits(rate=1.0, burst=3.0, rate_strikes=2.0, rate_strike_refill=0.1))
    s = h.welcomed("alice")
    for _ in range(3):
        h.send(s, "ping")
    assert h.take(s) == [{"type": "pong"}] * 3
    h.send(s, "ping")
    item = only_error(h, s)
    assert item["code"] == "rate_limited"
    h.now += 1.0  # one token back
    h.send(s, "ping")
    assert h.take(s) == [{"type": "pong"}]
    h.send(s, "ping")
    assert only_error(h, s)["code"] == "rate_limited"
    assert s not in h.closed
    h.send(s, "ping")  # third strike: no strikes left
    assert h.take(s) == []
    assert h.closed[s] == (1008, "rate limit exceeded")
    h.send(s, "ping")  # ignored once closing
    assert h.take(s) == []


def test_isolated_bursts_never_close() -> None:
    h = Harness(limits=Limits(rate=10.0, burst=10.0, rate_strikes=3.0, rate_strike_refill=1.0))
    s = h.welcomed("alice")
    for _ in range(5):  # five bursts of 12 over 5 seconds: 2 strikes each, refilled in between
        for _ in range(12):
            h.send(s, "ping")
        h.now += 2.0
    assert s not in h.closed


# --- auth ----------------------------------------------------------------------------------------


def auth_harness(**kwargs: Any) -> Harness:
    jwt = JWTVerifier(SECRET, clock=lambda: WALL)
    return Harness(authenticator=Authenticator(jwt=jwt, static=StaticTokens({"tok": "sam"})),
                   **kwargs)


def test_token_at_handshake() -> None:
    h = auth_harness()
    s = h.open("ignored", token=encode_jwt({"sub": "alice"}, SECRET))
    assert h.take(s) == [{"type": "welcome", "user_id": "alice", "connection_id": s.id,
                          "offline_items": 0}]
    s2 = h.open(token="tok")
    assert h.take(s2)[0]["user_id"] == "sam"


@pytest.mark.parametrize(("claims", "code", "reason"), [
    ({"sub": "alice", "exp": WALL - 100}, 4001, "token expired"),
    ({"sub": "alice", "nbf": WALL + 100}, 4002, "token not yet valid"),
])
def test_bad_token_at_handshake(claims: dict[str, Any], code: int, reason: str) -> None:
    h = auth_harness()
    s = h.open(token=encode_jwt(claims, SECRET))
    assert h.closed[s] == (code, reason)
    assert h.take(s) == []
    h.disconnect(s)
    assert h.router.sessions == {} and h.router.pending == {}


def test_auth_message() -> None:
    h = auth_harness()
    s = h.open()
    assert h.take(s) == [] and s.id in h.router.pending
    h.send(s, {"type": "auth", "token": encode_jwt({"sub": "alice"}, SECRET), "id": 1})
    assert h.take(s) == [{"type": "welcome", "user_id": "alice", "connection_id": s.id,
                          "offline_items": 0, "id": 1}]
    assert h.router.pending == {}
    assert h.router.auth_deadline(s) == []  # the timer firing later does nothing


def test_tutorial_style_auth_message_without_type() -> None:
    h = auth_harness()
    s = h.open()
    h.send(s, {"token": "tok"})
    assert h.take(s)[0]["user_id"] == "sam"


@pytest.mark.parametrize(("message", "code"), [
    ('{"type":"ping"}', 1008),
    ("ping", 1008),
    ("garbage", 1008),
    (b"\x00", 1008),
    ('{"type":"auth"}', 1008),
    ('{"type":"auth","token":5}', 1008),
    ('{"type":"auth","token":"nope"}', 4002),
])
def test_first_message_must_authenticate(message: str | bytes, code: int) -> None:
    h = auth_harness()
    s = h.open()
    h.send(s, message)
    assert h.closed[s][0] == code
    assert h.take(s) == []


def test_auth_deadline() -> None:
    h = auth_harness()
    s = h.open()
    h.apply(h.router.auth_deadline(s))
    assert h.closed[s] == (1008, "authentication timeout")


def test_token_expiry_while_connected() -> None:
    h = auth_harness()
    s = h.open(token=encode_jwt({"sub": "alice", "exp": WALL + 60}, SECRET))
    assert s.expires_at == WALL + 60 + 30  # exp + the verifier's leeway
    h.apply(h.router.token_expired(s))
    assert h.closed[s] == (4001, "token expired")


def test_grants_restrict_join_subscribe_publish() -> None:
    h = auth_harness()
    token = encode_jwt({"sub": "alice", "rooms": ["team.*"], "topics": ["stock.*"],
                        "publish": ["stock.AAPL"]}, SECRET)
    s = h.open(token=token)
    h.take(s)
    h.send(s, {"type": "join", "room": "team.red"})
    assert h.take_one(s)["type"] == "joined"
    h.send(s, {"type": "join", "room": "admin"})
    assert only_error(h, s)["code"] == "forbidden"
    h.send(s, {"type": "subscribe", "topics": ["stock.MSFT"]})
    assert h.take_one(s)["type"] == "subscribed"
    h.send(s, {"type": "subscribe", "topics": ["stock.X", "stock.#"]})
    assert only_error(h, s)["code"] == "forbidden"
    assert h.router.index.match("stock.X") == set()  # all or nothing
    h.send(s, {"type": "publish", "topic": "stock.AAPL", "message": 1})
    assert h.take_one(s)["type"] == "published"
    # Alice subscribes to stock.MSFT, so a publish that went through would reach her too.
    h.send(s, {"type": "publish", "topic": "stock.MSFT", "message": 2})
    assert only_error(h, s)["code"] == "forbidden"


def test_chat_endpoint_join_refused_by_grants_keeps_connection() -> None:
    h = auth_harness()
    s = h.open(path="/ws/chat/secret", token=encode_jwt({"sub": "a", "rooms": []}, SECRET))
    welcome, error = h.take(s)
    assert welcome["type"] == "welcome"
    assert error["code"] == "forbidden"
    assert s not in h.closed


# --- rooms and presence --------------------------------------------------------------------------


def test_rooms_lists_rooms_by_name_with_user_counts() -> None:
    h = Harness()
    a = h.welcomed("alice")
    b = h.welcomed("bob")
    b2 = h.welcomed("bob")
    for session, room in [(a, "zeta"), (a, "alpha"), (b, "alpha"), (b2, "alpha")]:
        h.send(session, {"type": "join", "room": room})
    h.api("post", "news", "api", "history only")  # a room without members
    h.take(a)
    h.send(a, {"type": "rooms", "id": 7})
    assert h.take_one(a) == {"type": "rooms", "rooms": [
        {"room": "alpha", "user_count": 2},  # bob's two connections count once
        {"room": "news", "user_count": 0},
        {"room": "zeta", "user_count": 1},
    ], "truncated": False, "id": 7}
    # The list follows membership at once (the store's cached list is invalidated).
    h.send(b, {"type": "leave", "room": "alpha"})
    h.send(b2, {"type": "leave", "room": "alpha"})
    h.send(a, {"type": "leave", "room": "zeta"})
    h.take(a)
    h.send(a, {"action": "rooms"})
    assert h.take_one(a)["rooms"] == [{"room": "alpha", "user_count": 1},
                                      {"room": "news", "user_count": 0}]


def test_rooms_reply_is_capped() -> None:
    h = Harness(limits=Limits(max_rooms_listed=3))
    s = h.welcomed("alice")
    for name in ["e", "d", "c", "b", "a"]:
        h.send(s, {"type": "join", "room": name})
    h.take(s)
    h.send(s, {"type": "rooms"})
    reply = h.take_one(s)
    assert [r["room"] for r in reply["rooms"]] == ["a", "b", "c"]
    assert reply["truncated"] is True
    h.send(s, {"type": "leave", "room": "e"})
    h.send(s, {"type": "leave", "room": "d"})
    h.take(s)
    h.send(s, {"type": "rooms"})
    assert h.take_one(s)["truncated"] is False  # exactly three: all of them


def test_rooms_honours_the_token_rooms_claim() -> None:
    h = auth_harness(limits=Limits(max_rooms_listed=2))
    free = h.open(token="tok")  # a static token: unrestricted
    h.take(free)
    for room in ["admin", "lobby", "team.blue", "team.green", "team.red"]:
        h.send(free, {"type": "join", "room": room})
    h.take(free)
    s = h.open(token=encode_jwt({"sub": "alice", "rooms": ["team.*", "lobby"]}, SECRET))
    h.take(s)
    h.send(s, {"type": "rooms"})
    reply = h.take_one(s)
    # Only rooms the token may join, so it does not learn "admin"; capped after filtering.
    assert [r["room"] for r in reply["rooms"]] == ["lobby", "team.blue"]
    assert reply["truncated"] is True
    nothing = h.open(token=encode_jwt({"sub": "nobody", "rooms": []}, SECRET))
    h.take(nothing)
    h.send(nothing, {"type": "rooms"})
    assert h.take_one(nothing) == {"type": "rooms", "rooms": [], "truncated": False}


def test_presence_says_who_is_online() -> None:
    h = Harness()
    a = h.welcomed("alice")
    b1 = h.welcomed("bob")
    b2 = h.welcomed("bob")
    h.send(a, {"type": "presence", "users": ["bob", "carol", "alice", "bob"], "id": "p"})
    assert h.take_one(a) == {"type": "presence", "online": {"bob": True, "carol": False,
                                                           "alice": True}, "id": "p"}
    h.disconnect(b1)
    h.send(a, {"type": "presence", "users": ["bob"]})
    assert h.take_one(a)["online"] == {"bob": True}  # still one connection
    h.disconnect(b2)
    h.send(a, {"type": "presence", "users": ["bob"]})
    assert h.take_one(a)["online"] == {"bob": False}
    h.send(a, {"type": "presence", "users": []})
    assert h.take_one(a) == {"type": "presence", "online": {}}


def test_presence_does_not_count_unauthenticated_connections() -> None:
    h = auth_harness()
    pending = h.open()  # no token yet
    assert pending.id in h.router.pending
    s = h.open(token="tok")
    h.take(s)
    h.send(s, {"type": "presence", "users": ["sam", "alice"]})
    assert h.take_one(s)["online"] == {"sam": True, "alice": False}


@pytest.mark.parametrize(("msg", "code"), [
    ({"type": "presence"}, "bad_request"),
    ({"type": "presence", "users": "bob"}, "bad_request"),
    ({"type": "presence", "users": ["bob", "no one"]}, "bad_request"),
    ({"type": "presence", "users": [1]}, "bad_request"),
    ({"type": "presence", "users": ["u"] * 101}, "too_large"),
])
def test_presence_errors(msg: dict[str, Any], code: str) -> None:
    h = Harness()
    s = h.welcomed("alice")
    h.send(s, msg)
    assert only_error(h, s)["code"] == code


@pytest.mark.parametrize("kind", ["rooms", "presence"])
def test_rooms_and_presence_are_not_on_the_notifications_endpoint(kind: str) -> None:
    h = Harness()
    s = h.welcomed("alice", path="/ws/notifications")
    h.send(s, {"type": kind, "users": ["bob"]})
    assert only_error(h, s)["code"] == "forbidden"


def test_offline_notifications_are_marked_and_counted_in_the_welcome() -> None:
    h = Harness()
    assert h.api("notify", "zoe", "one").body == {"status": "queued", "recipients": 0,
                                                  "message_id": MID}
    assert h.api("broadcast", "to everyone online").body == {"status": "sent",
                                                             "recipients": 0}
    assert h.sends == []  # zoe is not online: a broadcast is not queued
    assert h.api("notify", "zoe", {"title": "t"}).body["status"] == "queued"
    z = h.open("zoe")
    assert h.take(z) == [
        {"type": "welcome", "user_id": "zoe", "connection_id": z.id, "offline_items": 2},
        {"type": "notification", "message": "one", "timestamp": STAMP, "message_id": MID,
         "offline": True},
        {"type": "notification", "message": {"title": "t"}, "timestamp": STAMP,
         "message_id": "mid-2", "offline": True},
    ]
    assert h.api("notify", "zoe", "live").body == {"status": "sent", "recipients": 1}
    assert h.take(z) == [{"type": "notification", "message": "live", "timestamp": STAMP}]


# --- HTTP-side entry points ------------------------------------------------------------------


def test_notify_broadcast_publish_post() -> None:
    h = Harness()
    a = h.welcomed("alice")
    b = h.welcomed("bob", path="/ws/notifications")
    assert h.api("notify", "bob", {"title": "hi"}).body == {"status": "sent", "recipients": 1}
    assert h.take(b) == [{"type": "notification", "message": {"title": "hi"},
                          "timestamp": STAMP}]
    assert h.api("notify", "zoe", "later").body["status"] == "queued"
    assert h.api("broadcast", "all").body == {"status": "sent", "recipients": 2}
    assert h.take(a) == h.take(b) == [{"type": "notification", "message": "all",
                                       "timestamp": STAMP}]
    h.send(a, {"type": "subscribe", "topics": ["x.*"]})
    h.take(a)
    assert h.api("publish", "x.y", [1]).body == {"status": "sent", "topic": "x.y",
                                                 "recipients": 1}
    assert h.take(a)[0]["topic"] == "x.y"
    h.send(a, {"type": "join", "room": "r"})
    h.take(a)
    answer = h.api("post", "r", "api", "from http")
    [event] = h.take(a)
    assert answer.body == {"status": "sent", "room": "r", "seq": 1,
                           "message_id": event["message_id"], "recipients": 1}
    assert event["user_id"] == "api" and event["seq"] == 1
    assert h.router.rooms_summary() == [{"room": "r", "user_count": 1, "seq": 1}]
    detail = h.router.room_detail("r")
    assert detail == {"room": "r", "users": ["alice"], "history": [event], "seq": 1,
                      "epoch": event["epoch"]}
    assert h.router.room_detail("nope") is None
    z = h.open("zoe")
    assert [m.get("message") for m in h.take(z)] == [None, "later"]


def test_post_at_the_room_limit_is_unavailable() -> None:
    h = Harness(limits=Limits(max_rooms=1))
    h.welcomed("alice", path="/ws/chat/busy")
    answer = h.api("post", "other", "api", "x")
    assert answer.body is None and answer.error is not None
    assert answer.error[0] == "unavailable" and "too many rooms" in answer.error[1]


# --- acknowledgements ------------------------------------------------------------------------


def test_ack_forms_and_errors() -> None:
    h = Harness()
    for n in range(3):
        h.api("notify", "zoe", f"n{n}")
    z = h.welcomed("zoe")
    h.take(z)
    h.send(z, {"type": "ack", "message_id": "mid-2"})
    assert h.take(z) == [{"type": "acked", "count": 1}]
    h.send(z, {"type": "ack", "message_ids": ["mid-1", "mid-2", "nope"]})
    assert h.take(z) == [{"type": "acked", "count": 1}]  # mid-2 already, nope unknown
    for bad in ({"type": "ack"}, {"type": "ack", "message_id": 5},
                {"type": "ack", "message_ids": "mid-3"}, {"type": "ack", "message_ids": [""]},
                {"type": "ack", "message_ids": ["x" * 129]}):
        h.send(z, bad)
        assert only_error(h, z)["code"] == "bad_request", bad
    h.send(z, {"type": "ack", "message_ids": ["m"] * 1001})
    assert only_error(h, z)["code"] == "too_large"
    other = h.welcomed("yves")
    h.send(other, {"type": "ack", "message_id": "mid-3"})  # zoe's item: not yves's to ack
    assert h.take(other) == [{"type": "acked", "count": 0}]
    assert [m.get("message") for m in h.take(h.open("zoe"))] == [None, "n2"]


# --- idempotency keys ------------------------------------------------------------------------


def test_a_message_sent_twice_with_one_key_is_posted_once() -> None:
    h = Harness()
    a = h.welcomed("alice")
    b = h.welcomed("bob")
    for s in (a, b):
        h.send(s, {"type": "join", "room": "r"})
    h.take(a)
    h.take(b)
    request = {"type": "message", "room": "r", "content": "once", "idempotency_key": "k-1"}
    h.send(a, {**request, "id": 1})
    [first] = h.take(a)
    assert first["seq"] == 1 and first["id"] == 1
    assert len(h.take(b)) == 1
    h.send(a, {**request, "id": 2})  # a retry: the same reply, no second message
    assert h.take(a) == [{**first, "id": 2}]
    assert h.take(b) == []
    assert h.router.store.room_seq("r") == 1
    h.send(a, request)  # without an id: the event itself
    assert h.take(a) == [{k: v for k, v in first.items() if k != "id"}]
    # The same key for another request is refused; other users' keys are their own.
    h.send(a, {**request, "content": "other", "id": 3})
    error = only_error(h, a)
    assert error["code"] == "conflict" and error["id"] == 3
    h.send(b, {**request, "id": 4})
    assert h.take(b)[0]["seq"] == 2
    assert h.take(a)[0]["seq"] == 2  # bob's message, in the same room
    assert h.router.metrics.idempotent_replays == 2
    h.send(a, {**request, "idempotency_key": "has space"})
    assert only_error(h, a)["code"] == "bad_request"


def test_idempotent_private_publish_and_http() -> None:
    h = Harness()
    a = h.welcomed("alice")
    b = h.welcomed("bob")
    h.send(b, {"type": "subscribe", "topics": ["t"]})
    h.take(b)
    for _ in range(2):
        h.send(a, {"type": "private", "target": "bob", "content": "p", "idempotency_key": "x"})
        assert h.take(a) == [{"type": "private_ack", "target": "bob", "status": "sent",
                              "recipients": 1}]
        h.send(a, {"type": "private", "target": "zoe", "content": "q", "idempotency_key": "y"})
        assert h.take(a)[0]["message_id"] == MID  # queued once, the same id replayed
        h.send(a, {"type": "publish", "topic": "t", "message": 1, "idempotency_key": "z"})
        assert h.take(a) == [{"type": "published", "topic": "t", "recipients": 1}]
    assert [m["type"] for m in h.take(b)] == ["private", "notification"]  # once each
    for _ in range(2):
        assert h.api("notify", "zoe", "n", key="n1").body == {
            "status": "queued", "recipients": 0, "message_id": "mid-2"}
        assert h.api("broadcast", "all", key="b1").body == {"status": "sent", "recipients": 2}
        assert h.api("publish", "t", 2, key="p1").body == {"status": "sent", "topic": "t",
                                                          "recipients": 1}
        answer = h.api("post", "r", "api", "c", key="r1")
        assert answer.body is not None and answer.body["seq"] == 1
    assert answer.replayed
    assert [m["type"] for m in h.take(b)] == ["notification", "notification"]  # once each
    assert [m["message"] for m in h.take(a)] == ["all"]  # the broadcast, once
    assert h.router.store.inbox_count() == 2
    assert h.api("notify", "zoe", "other", key="n1").error == (
        "conflict", "this idempotency key was used for another request; use a new key for a "
        "new request")
    # The HTTP API's keys and alice's are separate scopes.
    h.send(a, {"type": "publish", "topic": "t", "message": 2, "idempotency_key": "p1"})
    assert h.take(a)[0]["recipients"] == 1


# --- robustness ------------------------------------------------------------------------------


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=15)
known = st.sampled_from(["join", "leave", "message", "private", "subscribe", "unsubscribe",
                         "publish", "ping", "auth", "rooms", "presence", "nope"])
requests = st.fixed_dictionaries(
    {"type": known},
    optional={"room": json_values | st.sampled_from(["r", "lobby"]), "content": json_values,
              "target": json_values | st.just("bob"), "topics": json_values,
              "topic": json_values, "message": json_values, "since": json_values,
              "users": json_values | st.lists(st.sampled_from(["bob", "x y", "zoe"])),
              "id": json_values})


@settings(max_examples=300)
@given(st.lists(st.one_of(requests.map(json.dumps), json_values.map(json.dumps),
                          st.text(max_size=30), st.binary(max_size=10)), max_size=8))
def test_any_input_gets_exactly_one_reply_or_error(messages: list[Any]) -> None:
    h = Harness(limits=Limits(burst=1000.0))
    s = h.welcomed("alice")
    other = h.welcomed("bob")
    h.send(other, {"type": "join", "room": "r"})
    for message in messages:
        before = len(h.sends)
        actions = h.router.receive(s, message)
        h.apply(actions)
        to_sender = [a for a in h.sends[before:] if isinstance(a, Send) and s in a.targets]
        replies = [json.loads(a.text) for a in to_sender]
        # Exactly one direct reply; fan-out copies (message/notification) may add one more.
        direct = [r for r in replies if r["type"] not in ("notification", "private")]
        assert len(direct) == 1, (message, replies)
        assert s not in h.closed


# --- replies within the reply budget, and history pages ----------------------------------------


def last_text(h: Harness, session: Session) -> str:
    """The text of the last message sent to ``session`` alone (its last reply)."""
    return next(send.text for send in reversed(h.sends) if list(send.targets) == [session])


def filled(limits: Limits, messages: int, content: str) -> tuple[Harness, Session]:
    h = Harness(limits=limits)
    a = h.welcomed("alice")
    h.send(a, {"type": "join", "room": "r"})
    for i in range(1, messages + 1):
        h.send(a, {"type": "message", "room": "r", "content": f"{i}:{content}"})
    h.take(a)
    return h, a


def test_a_joined_reply_stays_within_max_reply_bytes_and_says_more() -> None:
    limits = Limits(history_size=200, history_on_join=200, max_reply_bytes=20_000,
                    rate=1e6, burst=1e6)
    h, _ = filled(limits, 150, "\U0001F600" * 100)  # ~550 bytes each: 82 KB in all
    b = h.welcomed("bob")
    h.send(b, {"type": "join", "room": "r", "since": 0})
    text = last_text(h, b)
    assert len(text.encode()) <= 20_000
    joined = json.loads(text)
    seqs = [m["seq"] for m in joined["history"]]
    assert seqs == list(range(1, len(seqs) + 1)) and 20 < len(seqs) < 40
    assert joined["more"] is True and joined["complete"] is True
    # Without since: the newest that fit, and more (older) before them.
    c = h.welcomed("carol")
    h.send(c, {"type": "join", "room": "r"})
    joined = json.loads(last_text(h, c))
    assert len(last_text(h, c).encode()) <= 20_000
    assert joined["history"][-1]["seq"] == 150 and joined["more"] is True


def test_history_pages_read_forwards_and_backwards() -> None:
    limits = Limits(history_size=200, max_reply_bytes=20_000, rate=1e6, burst=1e6)
    h, a = filled(limits, 150, "\U0001F600" * 100)
    seen: list[int] = []
    since = 0
    while True:
        h.send(a, {"type": "history", "room": "r", "since": since, "id": "p"})
        page = h.take_one(a)
        assert len(last_text(h, a).encode()) <= 20_000
        assert (page["type"], page["room"], page["seq"], page["epoch"], page["id"]) == (
            "history", "r", 150, EPOCH, "p")
        seen += [m["seq"] for m in page["history"]]
        if not page["more"]:
            break
        since = page["history"][-1]["seq"]
    assert seen == list(range(1, 151))
    # Backwards from the newest, with a limit.
    h.send(a, {"type": "history", "room": "r", "before": 101, "limit": 5})
    page = h.take_one(a)
    assert [m["seq"] for m in page["history"]] == [96, 97, 98, 99, 100] and page["more"]
    h.send(a, {"type": "history", "room": "r", "before": 3})
    page = h.take_one(a)
    assert [m["seq"] for m in page["history"]] == [1, 2] and page["more"] is False
    # The limit is capped at history_size; a stream the client does not know starts at 0.
    h.send(a, {"type": "history", "room": "r", "since": 140, "epoch": "another"})
    assert json.loads(last_text(h, a))["history"][0]["seq"] == 1


@pytest.mark.parametrize(("request_", "code", "message"), [
    ({"since": -1}, "bad_request", "since must be a non-negative integer"),
    ({"before": "x"}, "bad_request", "before must be a non-negative integer"),
    ({"since": 1, "before": 5}, "bad_request", "give since or before, not both"),
    ({"limit": 0}, "bad_request", "limit must be a positive integer"),
    ({"epoch": 1}, "bad_request", "epoch must be a string"),
    ({"room": "nowhere"}, "not_found", "no room 'nowhere'"),
    ({"room": "bad room"}, "bad_request", "invalid room name"),
])
def test_history_request_errors(request_: dict[str, Any], code: str, message: str) -> None:
    h, a = filled(Limits(), 3, "x")
    h.send(a, {"type": "history", "room": "r", "id": 9, **request_})
    assert h.take_one(a) == {"type": "error", "code": code, "message": message, "id": 9}


def test_history_needs_what_joining_needs() -> None:
    h = Harness(authenticator=Authenticator(jwt=JWTVerifier(SECRET)))
    s = h.open(token=encode_jwt({"sub": "a", "rooms": ["open"]}, SECRET))
    h.take(s)
    h.send(s, {"type": "history", "room": "secret", "id": 1})
    assert h.take_one(s)["code"] == "forbidden"
    n = h.welcomed(path="/ws/notifications",
                   token=encode_jwt({"sub": "b"}, SECRET))
    h.send(n, {"type": "history", "room": "open", "id": 2})
    assert h.take_one(n)["code"] == "forbidden"
