"""rawws.chat.idempotency: keys, fingerprints, and the bounded table."""

from __future__ import annotations

import pytest

from rawws.chat.idempotency import (
    Idem,
    IdempotencyTable,
    Recalled,
    decode_outcome,
    encode_outcome,
    fingerprint,
    valid_key,
)


@pytest.mark.parametrize(("key", "ok"), [
    ("3f2a9c0d-1b7e-4a55-9c1d-0e6f4b8a2c11", True),
    ("a", True),
    ("x" * 255, True),
    ("x" * 256, False),
    ("", False),
    ("has space", False),
    ("tab\there", False),
    ("naïve", False),
    (42, False),
    (None, False),
])
def test_valid_key(key: object, ok: bool) -> None:
    assert valid_key(key) is ok


def test_fingerprint_tells_requests_apart() -> None:
    assert fingerprint("message", "lobby", "hi") == fingerprint("message", "lobby", "hi")
    assert fingerprint("message", "lobby", "hi") != fingerprint("message", "lobby", "hi!")
    assert fingerprint("message", "lobby", "hi") != fingerprint("publish", "lobby", "hi")
    assert fingerprint("notify", "bob", {"a": 1}) != fingerprint("notify", "bob", {"a": "1"})
    assert len(fingerprint("x")) == 32


def test_outcome_round_trip() -> None:
    data = '{"type":"message","content":"ünïcode"}'.encode()
    assert decode_outcome(encode_outcome(data, {"recipients": 3})) == (data, {"recipients": 3})
    assert decode_outcome(encode_outcome(None, {})) == (None, {})


def idem(key: str, extra: dict[str, object] | None = None) -> Idem:
    return Idem("user:alice", key, fingerprint("op", key), extra or {})


def test_put_get_expire() -> None:
    dropped: list[tuple[str, str]] = []
    table = IdempotencyTable(ttl=100.0, max_keys=10, max_bytes=1 << 20,
                             on_drop=lambda s, k: dropped.append((s, k)))
    record = table.put(idem("k1", {"n": 1}), b"{}", now=0.0)
    assert record == Recalled(fingerprint("op", "k1"), b"{}", {"n": 1})
    table.put(idem("k2"), None, now=50.0)
    assert table.get("user:alice", "k1", now=99.0) == record
    assert table.get("user:bob", "k1", now=99.0) is None  # another scope
    assert table.get("user:alice", "k1", now=100.0) is None  # 24 h (here 100 s) later
    assert dropped == [("user:alice", "k1")]
    assert table.expired == 1 and len(table) == 1
    assert table.get("user:alice", "k2", now=149.0) is not None


def test_bounds_forget_the_oldest_first() -> None:
    dropped: list[str] = []
    table = IdempotencyTable(ttl=1e9, max_keys=3, max_bytes=1 << 20,
                             on_drop=lambda s, k: dropped.append(k))
    for i in range(5):
        table.put(idem(f"k{i}"), None, now=float(i))
    assert dropped == ["k0", "k1"] and table.evicted == 2 and len(table) == 3
    small = IdempotencyTable(ttl=1e9, max_keys=1000, max_bytes=2000)
    for i in range(20):
        small.put(idem(f"k{i}"), b"x" * 500, now=float(i))
    assert small.bytes <= 2000 and len(small) == 2
    assert small.get("user:alice", "k19", now=20.0) is not None
    # One record over the budget on its own is still kept (the request was answered).
    table = IdempotencyTable(ttl=1e9, max_keys=10, max_bytes=10)
    table.put(idem("big"), b"x" * 100, now=0.0)
    assert len(table) == 1


def test_replacing_a_key_counts_its_bytes_once() -> None:
    table = IdempotencyTable(ttl=1e9, max_keys=10, max_bytes=1 << 20)
    table.put(idem("k"), b"x" * 100, now=0.0)
    before = table.bytes
    table.put(idem("k"), b"x" * 100, now=1.0)
    assert table.bytes == before and len(table) == 1
