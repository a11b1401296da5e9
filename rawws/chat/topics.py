"""Topic names, wildcard patterns and the subscription index.

Owns: the syntax of topics (``stock.AAPL``) and patterns (``stock.*``, ``alerts.#``), matching a
topic against a pattern, deciding whether one pattern *covers* another (used for token claims),
and :class:`TopicIndex`, which finds every subscriber of a published topic with a bounded
number of dictionary lookups, however many subscriptions exist.

Does not own: who may subscribe or publish (:mod:`rawws.chat.auth` holds the grants).

Rules:

1. A topic is 1-16 segments separated by ``.``; a segment is 1-64 characters from
   ``A-Z a-z 0-9 _ - : @ ~``. At most 255 characters in all.
2. In a pattern, a segment may also be ``*`` (exactly one segment) or, as the last segment only,
   ``#`` (zero or more segments, as in MQTT: ``stock.#`` matches ``stock`` and ``stock.a.b``).
3. The index groups patterns by *shape*: their number of segments, which of them are ``*``,
   and whether they end with ``#``. ``stock.*`` and ``news.*`` share a shape; within one, the
   patterns are a dict keyed by their literal segments. Publishing a topic costs one lookup per
   shape that can fit its length (the topic's own segments at the shape's literal positions
   make the key), whatever the number of patterns or subscribers.

   A trie keyed by segment (the index before this one) explores the literal *and* the ``*``
   child at every level: 25,000 patterns like ``{a,*}.{a,*}....b`` made it visit some 30,000
   nodes per publish (1.5 s of stalled event loop per 60 publishes). With shapes, the cost is
   the number of shapes, which the server bounds (``max_pattern_shapes``, and structurally by
   ``max_pattern_depth`` and ``max_pattern_wildcards``); shapes without ``*`` (literal topics,
   ``prefix.#``) are at most 32 and always allowed. :attr:`TopicIndex.probes` counts the
   lookups, so tests assert the work done rather than time it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from operator import itemgetter
from typing import Any, Final, Generic, TypeVar

__all__ = [
    "MAX_SEGMENTS",
    "MAX_TOPIC_LENGTH",
    "TopicIndex",
    "covers",
    "is_valid_pattern",
    "is_valid_topic",
    "matches",
    "shape_of",
    "split_pattern",
    "split_topic",
    "wildcards_in",
]

MAX_SEGMENTS: Final = 16
MAX_TOPIC_LENGTH: Final = 255
_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9_\-:@~]{1,64}")

ONE: Final = "*"
REST: Final = "#"


def split_topic(topic: object) -> tuple[str, ...]:
    """Split a concrete topic into segments; raise ValueError saying what is wrong."""
    return _split(topic, "topic", wildcards=False)


def split_pattern(pattern: object) -> tuple[str, ...]:
    """Split a subscription pattern into segments; raise ValueError saying what is wrong."""
    return _split(pattern, "topic pattern", wildcards=True)


def _split(name: object, what: str, *, wildcards: bool) -> tuple[str, ...]:
    if type(name) is not str:
        raise ValueError(f"a {what} must be a string")
    if not name.isascii():
        raise ValueError(f"a {what} is ASCII: letters, digits and _ - : @ ~ separated by dots")
    if not name or len(name) > MAX_TOPIC_LENGTH:
        # ASCII (rule 1), so this length is also the size in bytes.
        raise ValueError(f"a {what} has 1 to {MAX_TOPIC_LENGTH} bytes")
    segments = tuple(name.split("."))
    if len(segments) > MAX_SEGMENTS:
        raise ValueError(f"a {what} has at most {MAX_SEGMENTS} segments")
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        if wildcards and segment == ONE:
            continue
        if wildcards and segment == REST:
            if i != last:
                raise ValueError(f"'#' may only be the last segment: {name[:80]!r}")
            continue
        if _SEGMENT_RE.fullmatch(segment) is None:
            raise ValueError(f"invalid topic segment {segment[:70]!r} in {name[:80]!r}")
    return segments


def is_valid_topic(topic: object) -> bool:
    try:
        split_topic(topic)
    except ValueError:
        return False
    return True


def is_valid_pattern(pattern: object) -> bool:
    try:
        split_pattern(pattern)
    except ValueError:
        return False
    return True


def _match_segments(pattern: tuple[str, ...], topic: tuple[str, ...]) -> bool:
    for i, segment in enumerate(pattern):
        if segment == REST:
            return True
        if i >= len(topic):
            return False
        if segment != ONE and segment != topic[i]:
            return False
    return len(pattern) == len(topic)


def matches(pattern: str, topic: str) -> bool:
    """Whether the concrete ``topic`` matches ``pattern`` (both assumed valid)."""
    return _match_segments(tuple(pattern.split(".")), tuple(topic.split(".")))


def covers(grant: str, pattern: str) -> bool:
    """Whether every topic matched by ``pattern`` is also matched by ``grant``.

    A grant of ``stock.*`` covers the subscription ``stock.AAPL`` and ``stock.*``, not
    ``stock.#`` (which would also deliver ``stock.AAPL.options``). For concrete names (rooms,
    published topics) this is the same as :func:`matches`.
    """
    g = grant.split(".")
    p = pattern.split(".")
    for i, segment in enumerate(g):
        if segment == REST:
            return True
        if i >= len(p):
            return False
        if p[i] == REST:
            return False
        if segment == ONE:
            continue
        if segment != p[i]:  # a literal grant segment covers only the same literal
            return False
    return len(g) == len(p)


def wildcards_in(pattern: str) -> int:
    """How many ``*`` and ``#`` segments ``pattern`` has."""
    return sum(1 for segment in pattern.split(".") if segment in (ONE, REST))


#: (segments before a trailing "#" (all of them without one), positions of the "*", ends with #)
Shape = tuple[int, tuple[int, ...], bool]


def shape_of(pattern: str) -> Shape:
    """The shape of a (valid) pattern: ``a.*.c`` and ``x.*.z`` share ``(3, (1,), False)``."""
    segments = pattern.split(".")
    rest = segments[-1] == REST
    if rest:
        segments.pop()
    return len(segments), tuple(i for i, seg in enumerate(segments) if seg == ONE), rest


def _key_function(positions: Sequence[int]) -> Callable[[Sequence[str]], Hashable]:
    # operator.itemgetter runs in C: one call builds the key from a topic's segments.
    if not positions:
        return lambda segments: ()
    getter: Callable[[Sequence[str]], Hashable] = itemgetter(*positions)
    return getter


T = TypeVar("T", bound=Hashable)


class _Bucket(Generic[T]):
    """Every pattern of one shape: literal segments -> subscribers."""

    __slots__ = ("key", "length", "shape", "table")

    def __init__(self, shape: Shape) -> None:
        length, stars, _ = shape
        self.shape = shape
        self.length = length
        self.key = _key_function([i for i in range(length) if i not in stars])
        self.table: dict[Hashable, set[T]] = {}


class TopicIndex(Generic[T]):
    """Subscriptions (pattern, subscriber) grouped by shape; :meth:`match` finds a topic's
    subscribers with one lookup per shape (module docstring, rule 3)."""

    def __init__(self) -> None:
        self._buckets: dict[Shape, _Bucket[T]] = {}
        self._exact: dict[int, list[_Bucket[T]]] = {}  # no "#": by number of segments
        self._rest: list[_Bucket[T]] = []  # ending with "#": by segments before it
        self._counts: dict[str, int] = {}  # pattern -> number of subscribers
        self._pairs = 0
        self._wild_shapes = 0
        #: Dictionary lookups made by match() so far (the work a publish costs).
        self.probes = 0

    def __len__(self) -> int:
        """The number of (pattern, subscriber) pairs."""
        return self._pairs

    def patterns(self) -> list[str]:
        """Every distinct pattern with at least one subscriber."""
        return list(self._counts)

    @property
    def wildcard_shapes(self) -> int:
        """Shapes in use with at least one ``*`` (those the server budgets)."""
        return self._wild_shapes

    def new_wildcard_shapes(self, patterns: Iterable[str]) -> int:
        """How many shapes with a ``*`` subscribing ``patterns`` would add."""
        fresh = {shape for shape in map(shape_of, patterns)
                 if shape[1] and shape not in self._buckets}
        return len(fresh)

    def add(self, pattern: str, subscriber: T) -> bool:
        """Subscribe; return False if this subscriber already had this pattern."""
        segments = pattern.split(".")
        shape = shape_of(pattern)
        bucket = self._buckets.get(shape)
        if bucket is None:
            bucket = self._buckets[shape] = _Bucket(shape)
            if shape[2]:
                lengths = [b.length for b in self._rest]
                self._rest.insert(bisect.bisect_right(lengths, bucket.length), bucket)
            else:
                self._exact.setdefault(bucket.length, []).append(bucket)
            if shape[1]:
                self._wild_shapes += 1
        key = bucket.key(segments)
        subscribers = bucket.table.get(key)
        if subscribers is None:
            subscribers = bucket.table[key] = set()
        elif subscriber in subscribers:
            return False
        subscribers.add(subscriber)
        self._counts[pattern] = self._counts.get(pattern, 0) + 1
        self._pairs += 1
        return True

    def remove(self, pattern: str, subscriber: T) -> bool:
        """Unsubscribe; return False if the subscriber did not have this pattern."""
        bucket = self._buckets.get(shape_of(pattern))
        if bucket is None:
            return False
        key = bucket.key(pattern.split("."))
        subscribers = bucket.table.get(key)
        if subscribers is None or subscriber not in subscribers:
            return False
        subscribers.discard(subscriber)
        self._pairs -= 1
        count = self._counts[pattern] - 1
        if count:
            self._counts[pattern] = count
        else:
            del self._counts[pattern]
        if not subscribers:
            del bucket.table[key]
            if not bucket.table:
                self._drop(bucket)  # memory follows the live subscriptions
        return True

    def _drop(self, bucket: _Bucket[T]) -> None:
        del self._buckets[bucket.shape]
        if bucket.shape[2]:
            self._rest.remove(bucket)
        else:
            same = self._exact[bucket.length]
            same.remove(bucket)
            if not same:
                del self._exact[bucket.length]
        if bucket.shape[1]:
            self._wild_shapes -= 1

    def match(self, topic: str) -> set[T]:
        """Every subscriber with at least one pattern matching ``topic`` (each listed once)."""
        found: set[T] = set()
        segments = topic.split(".")
        length = len(segments)
        probes = 0
        subscribers: Any
        # Hot path (benchmarks/attack.py, topics): a key built in C and a dict lookup per
        # shape that fits the topic's length, nothing else.
        for bucket in self._exact.get(length, ()):
            probes += 1
            subscribers = bucket.table.get(bucket.key(segments))
            if subscribers:
                found |= subscribers
        for bucket in self._rest:  # "#" matches zero or more segments after the prefix
            if bucket.length > length:
                break
            probes += 1
            subscribers = bucket.table.get(bucket.key(segments))
            if subscribers:
                found |= subscribers
        self.probes += probes
        return found
