"""rawws.chat.limits: the token bucket, driven by explicit times."""

from __future__ import annotations

import pytest

from rawws.chat.limits import Limits, TokenBucket


def test_burst_then_refill() -> None:
    bucket = TokenBucket(rate=2.0, capacity=3.0, now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(100.4)  # 0.8 token
    assert bucket.take(100.5)  # 1.0 token
    assert not bucket.take(100.5)


def test_refill_is_capped() -> None:
    bucket = TokenBucket(rate=10.0, capacity=2.0, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0)
    # An hour later there are still only two tokens.
    assert [bucket.take(3600.0) for _ in range(3)] == [True, True, False]


def test_clock_going_back_adds_nothing() -> None:
    bucket = TokenBucket(rate=1.0, capacity=1.0, now=50.0)
    assert bucket.take(50.0)
    assert not bucket.take(10.0)
    assert not bucket.take(50.5)
    assert bucket.take(51.0)


def test_cost() -> None:
    bucket = TokenBucket(rate=1.0, capacity=5.0, now=0.0)
    assert bucket.take(0.0, cost=5.0)
    assert not bucket.take(0.0, cost=0.5)


@pytest.mark.parametrize(("rate", "capacity"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.5)])
def test_invalid_bucket(rate: float, capacity: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, capacity, 0.0)


def test_limits_are_keyword_only_and_frozen() -> None:
    limits = Limits(rate=5.0)
    assert limits.rate == 5.0 and limits.burst == 60.0
    with pytest.raises(AttributeError):
        limits.rate = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Limits(5.0)  # type: ignore[misc]
