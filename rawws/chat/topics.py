"""Topic names, wildcard patterns and the subscription index.

Owns: the syntax of topics (``stock.AAPL``) and patterns (``stock.*``, ``alerts.#``), matching a
topic against a pattern, deciding whether one pattern *covers* another (used for token claims),
and :class:`TopicIndex`, which finds every subscriber of a published topic without looking at
subscriptions that cannot match.

Does not own: who may subscribe or publish (:mod:`rawws.chat.auth` holds the grants).

Rules:

1. A topic is 1-16 segments separated by ``.``; a segment is 1-64 characters from
   ``A-Z a-z 0-9 _ - : @ ~``. At most 255 characters in all.
2. In a pattern, a segment may also be ``*`` (exactly one segment) or, as the last segment only,
   ``#`` (zero or more segments, as in MQTT: ``stock.#`` matches ``stock`` and ``stock.a.b``).
3. The index is a trie keyed by segment. Publishing ``a.b.c`` visits at most the literal, ``*``
   and ``#`` branches along one path, so its cost depends on the topic's length and the patterns
   that can match, not on how many subscriptions exist.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Final, Generic, TypeVar

__all__ = [
    "MAX_SEGMENTS",
    "MAX_TOPIC_LENGTH",
    "TopicIndex",
    "covers",
    "is_valid_pattern",
    "is_valid_topic",
    "matches",
    "split_pattern",
    "split_topic",
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


T = TypeVar("T", bound=Hashable)


class _Node(Generic[T]):
    __slots__ = ("children", "exact", "rest")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}  # includes "*" as an ordinary key
        self.exact: set[T] = set()  # patterns that end at this node
        self.rest: set[T] = set()  # patterns that end with "#" right after this node

    def empty(self) -> bool:
        return not (self.children or self.exact or self.rest)


class TopicIndex(Generic[T]):
    """Subscriptions (pattern, subscriber) in a trie; :meth:`match` finds a topic's subscribers."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._counts: dict[str, int] = {}  # pattern -> number of subscribers

    def __len__(self) -> int:
        """The number of (pattern, subscriber) pairs."""
        return sum(self._counts.values())

    def patterns(self) -> list[str]:
        """Every distinct pattern with at least one subscriber."""
        return list(self._counts)

    def add(self, pattern: str, subscriber: T) -> bool:
        """Subscribe; return False if this subscriber already had this pattern."""
        node = self._root
        segments = pattern.split(".")
        ends_rest = segments[-1] == REST
        for segment in segments[:-1] if ends_rest else segments:
            child = node.children.get(segment)
            if child is None:
                child = node.children[segment] = _Node()
            node = child
        bucket = node.rest if ends_rest else node.exact
        if subscriber in bucket:
            return False
        bucket.add(subscriber)
        self._counts[pattern] = self._counts.get(pattern, 0) + 1
        return True

    def remove(self, pattern: str, subscriber: T) -> bool:
        """Unsubscribe; return False if the subscriber did not have this pattern."""
        segments = pattern.split(".")
        ends_rest = segments[-1] == REST
        path: list[tuple[_Node[T], str]] = []
        node = self._root
        for segment in segments[:-1] if ends_rest else segments:
            child = node.children.get(segment)
            if child is None:
                return False
            path.append((node, segment))
            node = child
        bucket = node.rest if ends_rest else node.exact
        if subscriber not in bucket:
            return False
        bucket.discard(subscriber)
        count = self._counts[pattern] - 1
        if count:
            self._counts[pattern] = count
        else:
            del self._counts[pattern]
        # Prune the branch so that memory follows the live subscriptions.
        for parent, segment in reversed(path):
            if not node.empty():
                break
            del parent.children[segment]
            node = parent
        return True

    def match(self, topic: str) -> set[T]:
        """Every subscriber with at least one pattern matching ``topic`` (each listed once)."""
        found: set[T] = set()
        segments = topic.split(".")
        last = len(segments)
        # Iterative walk: (node, index of the next segment to consume).
        stack: list[tuple[_Node[T], int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            if node.rest:
                found |= node.rest  # "#" matches the remaining segments, zero or more
            if i == last:
                if node.exact:
                    found |= node.exact
                continue
            children = node.children
            if not children:
                continue
            child = children.get(segments[i])
            if child is not None:
                stack.append((child, i + 1))
            if segments[i] != ONE:
                star = children.get(ONE)
                if star is not None:
                    stack.append((star, i + 1))
        return found
