"""rawws.chat.topics: syntax, matching, covering, and the shape index against brute force."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawws.chat.topics import (
    TopicIndex,
    covers,
    is_valid_pattern,
    is_valid_topic,
    matches,
    shape_of,
    split_pattern,
    split_topic,
    wildcards_in,
)


@pytest.mark.parametrize("topic", ["stock", "stock.AAPL", "a.b-c.d_e.f:g.h@i", "x~y"])
def test_valid_topics(topic: str) -> None:
    assert is_valid_topic(topic)
    assert split_topic(topic) == tuple(topic.split("."))


@pytest.mark.parametrize("topic", ["", ".", "a.", ".a", "a..b", "a.*", "#", "a b", "é",
                                   ".".join("a" * 17), "a" * 256, None, 5])
def test_invalid_topics(topic: object) -> None:
    assert not is_valid_topic(topic)


@pytest.mark.parametrize("pattern", ["a", "*", "#", "a.*", "a.#", "*.b.#", "*.*"])
def test_valid_patterns(pattern: str) -> None:
    assert is_valid_pattern(pattern)


@pytest.mark.parametrize("pattern", ["", "#.a", "a.#.b", "a..b", "a.**", "a.b#", "a b", None])
def test_invalid_patterns(pattern: object) -> None:
    assert not is_valid_pattern(pattern)


def test_split_pattern_message_names_the_problem() -> None:
    with pytest.raises(ValueError, match="'#' may only be the last segment"):
        split_pattern("a.#.b")


@pytest.mark.parametrize(("pattern", "topic", "expected"), [
    ("stock.AAPL", "stock.AAPL", True),
    ("stock.AAPL", "stock.MSFT", False),
    ("stock.*", "stock.AAPL", True),
    ("stock.*", "stock", False),
    ("stock.*", "stock.AAPL.x", False),
    ("stock.#", "stock", True),
    ("stock.#", "stock.AAPL", True),
    ("stock.#", "stock.AAPL.options.x", True),
    ("stock.#", "stocks", False),
    ("#", "anything.at.all", True),
    ("*.AAPL", "stock.AAPL", True),
    ("*.AAPL", "AAPL", False),
    ("*.*.#", "a", False),
    ("*.*.#", "a.b", True),
])
def test_matches(pattern: str, topic: str, expected: bool) -> None:
    assert matches(pattern, topic) is expected


@pytest.mark.parametrize(("grant", "pattern", "expected"), [
    ("stock.*", "stock.AAPL", True),
    ("stock.*", "stock.*", True),
    ("stock.*", "stock.#", False),
    ("stock.*", "*.AAPL", False),
    ("stock.#", "stock.#", True),
    ("stock.#", "stock.*.x", True),
    ("stock.#", "stock", True),
    ("#", "*.#", True),
    ("stock.AAPL", "stock.*", False),
    ("stock.AAPL", "stock.AAPL", True),
    ("a.*.c", "a.b.c", True),
    ("a.*.c", "a.b", False),
])
def test_covers(grant: str, pattern: str, expected: bool) -> None:
    assert covers(grant, pattern) is expected


def test_index_basics() -> None:
    index: TopicIndex[str] = TopicIndex()
    assert index.add("stock.*", "s1")
    assert not index.add("stock.*", "s1")
    assert index.add("stock.AAPL", "s2")
    assert index.add("#", "s3")
    assert index.add("stock.#", "s1")
    assert index.match("stock.AAPL") == {"s1", "s2", "s3"}
    assert index.match("stock") == {"s1", "s3"}
    assert index.match("news") == {"s3"}
    assert len(index) == 4
    assert sorted(index.patterns()) == ["#", "stock.#", "stock.*", "stock.AAPL"]
    assert index.remove("stock.*", "s1")
    assert not index.remove("stock.*", "s1")
    assert not index.remove("never.seen", "s1")
    assert index.match("stock.MSFT") == {"s1", "s3"}  # still via stock.#


def test_index_prunes_empty_branches() -> None:
    index: TopicIndex[int] = TopicIndex()
    for i in range(100):
        index.add(f"a.b{i}.c.#", i)
    for i in range(100):
        assert index.remove(f"a.b{i}.c.#", i)
    assert len(index) == 0
    assert index.patterns() == []
    assert index._buckets == {} and index._exact == {} and index._rest == []
    assert index.wildcard_shapes == 0


def test_index_with_thousands_of_subscriptions() -> None:
    index: TopicIndex[int] = TopicIndex()
    for i in range(5000):
        index.add(f"stock.S{i}", i)
    index.add("stock.*", -1)
    assert index.match("stock.S1234") == {1234, -1}
    assert index.match("stock.unknown") == {-1}


segment = st.sampled_from(["a", "b", "c"])
topic_st = st.lists(segment, min_size=1, max_size=6).map(".".join)
pattern_st = st.tuples(
    st.lists(st.sampled_from(["a", "b", "*"]), min_size=0, max_size=6),
    st.booleans(),
).filter(lambda t: t[0] or t[1]).map(lambda t: ".".join([*t[0], "#"] if t[1] else t[0]))


@settings(max_examples=400)
@given(st.lists(st.tuples(pattern_st, st.integers(0, 5)), max_size=40),
       st.lists(st.tuples(pattern_st, st.integers(0, 5)), max_size=20), topic_st)
def test_index_agrees_with_brute_force(adds: list[tuple[str, int]],
                                       removes: list[tuple[str, int]], topic: str) -> None:
    index: TopicIndex[int] = TopicIndex()
    live: set[tuple[str, int]] = set()
    for pattern, sub in adds:
        assert index.add(pattern, sub) is ((pattern, sub) not in live)
        live.add((pattern, sub))
    for pattern, sub in removes:
        assert index.remove(pattern, sub) is ((pattern, sub) in live)
        live.discard((pattern, sub))
    assert index.match(topic) == {s for p, s in live if matches(p, topic)}
    assert len(index) == len(live)


@settings(max_examples=200)
@given(pattern_st, pattern_st, topic_st)
def test_covers_is_sound(grant: str, pattern: str, topic: str) -> None:
    # If the grant covers the pattern, no topic matches the pattern without matching the grant.
    if covers(grant, pattern) and matches(pattern, topic):
        assert matches(grant, topic)


def test_a_publish_costs_one_lookup_per_shape_not_per_pattern() -> None:
    """The attack of issue 11 (item 9): every pattern {a,*}.{a,*}....b of 15 levels and more
    matches a.a....a.b; a trie explored both branches at every level (32,768 nodes). Grouped
    by shape, a publish costs one lookup per shape that fits the topic's length."""
    index: TopicIndex[int] = TopicIndex()
    patterns = [".".join("*" if bits >> i & 1 else "a" for i in range(15)) + ".b"
                for bits in range(2**15)]
    for n, pattern in enumerate(patterns):
        index.add(pattern, n % 50)
    topic = ".".join(["a"] * 15) + ".b"
    before = index.probes
    assert index.match(topic) == set(range(50))
    assert index.probes - before == 2**15  # every pattern its own shape: the shapes are the cost
    assert index.wildcard_shapes == 2**15 - 1
    # A thousand literal patterns, and prefixes with "#", are a handful of shapes.
    literal: TopicIndex[int] = TopicIndex()
    for n in range(1000):
        literal.add(f"stock.S{n}", n)
        literal.add(f"news.n{n}.#", n)
        literal.add(f"user.{n}.*", n)
    before = literal.probes
    assert literal.match("stock.S7") == {7}
    assert literal.match("user.8.x") == {8}
    assert literal.match("news.n9.a.b.c") == {9}
    # Three shapes in all; each topic probes those that fit its length (the "#" shape fits
    # any topic of 2 segments or more): 2 + 2 + 1.
    assert literal.probes - before == 5
    assert literal.wildcard_shapes == 1
    assert literal.new_wildcard_shapes(["user.1.*", "a.*.c", "b.*.d", "x.y"]) == 1


def test_shapes() -> None:
    assert shape_of("a.*.c") == shape_of("x.*.z") == (3, (1,), False)
    assert shape_of("a.b.#") == (2, (), True)
    assert shape_of("#") == (0, (), True)
    assert shape_of("*.*.#") == (2, (0, 1), True)
    assert wildcards_in("*.a.*.#") == 3 and wildcards_in("a.b") == 0
