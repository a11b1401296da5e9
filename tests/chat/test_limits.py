"""rawws.chat.limits: the token bucket, driven by explicit times; limits that fail closed."""

from __future__ import annotations

import pytest

from rawws.chat.cli import main_serve
from rawws.chat.limits import BucketTable, Limits, TokenBucket, format_size, parse_size

from ..processes import run


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


def test_bucket_table_limits_each_key_and_says_how_long_to_wait() -> None:
    table = BucketTable(rate=2.0, capacity=2.0, max_size=10)
    assert [table.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
    assert table.take("b", 0.0) == 0.0  # another key has its own bucket
    assert table.take("a", 0.25) == 0.25  # half a token by then: a quarter second to go
    assert table.take("a", 0.5) == 0.0


def test_bucket_table_is_bounded_and_forgets_the_least_recently_seen() -> None:
    table = BucketTable(rate=1.0, capacity=1.0, max_size=3)
    for key in ["a", "b", "c"]:
        assert table.take(key, 0.0) == 0.0
    assert table.take("a", 0.0) > 0  # "a" is now the most recently seen
    assert table.take("d", 0.0) == 0.0  # forgets "b"
    assert len(table) == 3
    assert table.take("a", 0.0) > 0  # remembered: still empty
    assert table.take("b", 0.0) == 0.0  # forgotten: a full bucket again
    assert len(table) == 3
    with pytest.raises(ValueError):
        BucketTable(rate=0.0, capacity=1.0, max_size=3)
    with pytest.raises(ValueError):
        BucketTable(rate=1.0, capacity=1.0, max_size=0)


# --- fail closed: a limit that cannot mean a limit is a startup error ---------------------------

MY_FLAGS = ["--history-max-bytes", "--inbox-max-bytes", "--max-queue-bytes", "--max-reply-bytes",
            "--max-topics-per-connection", "--max-pattern-depth", "--max-pattern-wildcards",
            "--max-patterns", "--max-pattern-shapes", "--max-rooms-per-ip", "--max-rooms-per-user"]


@pytest.mark.parametrize("flag", MY_FLAGS)
@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", ""])
def test_every_budget_flag_refuses_what_cannot_be_a_limit(
        flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_serve([flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rawws serve: {flag}") and err.count("\n") == 1, err


def test_sizes_take_binary_units() -> None:
    assert parse_size("65536") == 65536
    assert parse_size("512KiB") == parse_size("512k") == parse_size("512 KB") == 512 * 1024
    assert parse_size("64MiB") == 64 * 2**20 and parse_size("1GiB") == 2**30
    for bad in ["", "1.5MiB", "-1", "12QB", "MiB", "1e6"]:
        with pytest.raises(ValueError, match="not a size"):
            parse_size(bad)
    assert format_size(64 * 2**20) == "64MiB" and format_size(1000) == "1000"


@pytest.mark.parametrize("field", ["max_rooms", "history_max_bytes", "max_pattern_shapes"])
def test_limits_refuse_nonsense_when_made(field: str) -> None:
    for value in (0, -3, 2.5, True, "10"):
        with pytest.raises(ValueError, match=f"--{field.replace('_', '-')} must be"):
            Limits(**{field: value})


async def test_a_bad_budget_stops_a_real_server_with_one_line() -> None:
    status, output = await run("serve", "--port", "0", "--max-pattern-shapes", "0")
    assert status == 2
    assert output == "rawws serve: --max-pattern-shapes must be a whole number >= 1, not 0"
