"""Limits: the token-bucket rate limiter and the one place where every chat limit is configured.

Owns: :class:`TokenBucket` (time is passed in, never read, so tests drive it exactly) and
:class:`Limits`, the frozen set of numbers that bound what one connection, one user and the whole
process may use. Each limit names the reply or close code its breach produces.

Does not own: enforcing connection caps at the handshake (the hub) or byte budgets of stored
history and inboxes (:mod:`rawws.chat.store`), which read their numbers from here.

Fail closed: a :class:`Limits` with a value that could not mean a limit (zero, negative, NaN,
a float where a count is needed) is refused with ``ValueError`` when it is made, so ``rawws
serve`` exits with status 2 and one line instead of running with a door open.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["BucketTable", "Limits", "TokenBucket", "add_limit_arguments", "format_size",
           "limit_arguments", "parse_size"]


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; each accepted event takes one.

    Starts full, so a client may send a burst of ``capacity`` messages at once.
    """

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if available at time ``now``; return whether it was allowed."""
        elapsed = now - self.stamp
        if elapsed > 0:  # a clock that steps back never adds tokens
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class BucketTable:
    """One :class:`TokenBucket` per key (a client address), for at most ``max_size`` keys.

    Memory is bounded by ``max_size``: a new key beyond it forgets the least recently seen one,
    whose next request starts with a full bucket again (that can only favour that client).
    """

    __slots__ = ("_buckets", "capacity", "max_size", "rate")

    def __init__(self, rate: float, capacity: float, max_size: int) -> None:
        TokenBucket(rate, capacity, 0.0)  # the same checks
        if max_size < 1:
            raise ValueError("a bucket table needs max_size >= 1")
        self.rate = rate
        self.capacity = capacity
        self.max_size = max_size
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> float:
        """Take a token for ``key``: 0.0 if allowed, else the seconds until one is available."""
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = TokenBucket(self.rate, self.capacity, now)
            if len(buckets) > self.max_size:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end(key)
        if bucket.take(now):
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Every limit of the chat layer, with its default and what breaching it does."""

    # --- per message
    max_message_size: int = 64 * 1024  # WebSocket message bytes: close 1009
    max_json_depth: int = 32  # nesting: error too_large
    max_content_size: int = 16 * 1024  # encoded `content`/`message` of one request: too_large
    max_topics_per_request: int = 64  # subscribe/unsubscribe list length: too_large
    # --- per connection
    rate: float = 20.0  # messages per second, sustained: error rate_limited
    burst: float = 60.0  # messages accepted at once
    rate_strikes: float = 20.0  # rate_limited replies tolerated before close 1008 ...
    rate_strike_refill: float = 1.0  # ... refilled at this many per second
    max_rooms_per_connection: int = 50  # join beyond: forbidden
    max_topics_per_connection: int = 100  # subscribe beyond: forbidden
    max_pattern_depth: int = 16  # segments in a subscription pattern: too_large
    max_pattern_wildcards: int = 4  # "*" and "#" in one pattern: too_large
    max_queue: int = 256  # outbound messages waiting on a slow reader: close 1013
    max_queue_bytes: int = 1024 * 1024  # same, in bytes (UTF-8): replies count too
    # a joined/history reply (and at most max_queue_bytes); the rest: "more": true
    max_reply_bytes: int = 256 * 1024
    auth_timeout: float = 5.0  # no token by then: close 1008
    # --- per process
    max_connections: int = 10_000  # handshake answered 503 beyond
    max_connections_per_ip: int = 256  # handshake answered 503 beyond
    max_rooms: int = 10_000  # rooms alive at once (empty rooms are evicted first): forbidden
    max_rooms_per_ip: int = 1_000  # rooms alive that one client address created: forbidden
    max_rooms_per_user: int = 100  # rooms alive that one user created: forbidden
    history_size: int = 100  # messages kept per room
    history_on_join: int = 50  # messages sent in a `joined` reply without `since`
    max_users_listed: int = 100  # `users` in joined/user_joined/user_left (`user_count`: all)
    max_rooms_listed: int = 500  # rooms in a `rooms` reply (by name; `truncated` says if more)
    max_presence_users: int = 100  # names in one `presence` request: too_large beyond
    history_max_bytes: int = 64 * 1024 * 1024  # all rooms' history; least active rooms shrink
    inbox_size: int = 100  # offline items kept per user (oldest dropped)
    inbox_ttl: float = 7 * 24 * 3600.0  # seconds an offline item is kept
    inbox_max_bytes: int = 32 * 1024 * 1024  # all inboxes; least recently used shrink first
    max_topic_seqs: int = 100_000  # topics whose `seq` counter is remembered
    history_max_age: float | None = None  # seconds a room message is kept (None: no age limit)
    idempotency_ttl: float = 24 * 3600.0  # seconds an idempotency key is remembered
    max_idempotency_keys: int = 100_000  # idempotency records kept (oldest forgotten first)
    idempotency_max_bytes: int = 16 * 1024 * 1024  # memory for them (oldest forgotten first)
    max_acks_per_request: int = 1000  # message_ids in one `ack`: too_large beyond
    max_patterns: int = 100_000  # (pattern, connection) subscriptions in all: forbidden
    max_pattern_shapes: int = 256  # distinct shapes of patterns with a "*": forbidden
    max_body_size: int = 64 * 1024  # HTTP API request body: 413
    # --- HTTP API, per client address (None: no limit)
    http_rate: float | None = 20.0  # /api/* requests per second, sustained: 429
    http_burst: float = 100.0  # /api/* requests accepted at once
    http_max_clients: int = 10_000  # addresses tracked (least recently seen forgotten)

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.name in _MAY_BE_NONE and value is None:
                continue
            lowest = 0 if spec.name in _MAY_BE_ZERO else 1
            if spec.type == "int":
                if type(value) is not int or value < lowest:
                    raise ValueError(f"{_flag(spec.name)} must be a whole number >= {lowest}, "
                                     f"not {value!r}")
            elif (type(value) not in (int, float) or not math.isfinite(value)
                  or not value > 0):
                raise ValueError(f"{_flag(spec.name)} must be a number > 0, not {value!r}")


#: Counts for which 0 is a meaningful setting (send no history on join).
_MAY_BE_ZERO: Final = frozenset({"history_on_join"})
#: Limits that None turns off.
_MAY_BE_NONE: Final = frozenset({"http_rate", "history_max_age"})


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


# --- sizes and the flags of `rawws serve` declared here -----------------------------------------

_UNITS: Final = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2,
                 "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3}
_SIZE_RE: Final = re.compile(r"\s*(\d{1,15})\s*([A-Za-z]{0,3})\s*")


def parse_size(text: str) -> int:
    """``"64MiB"`` -> 67108864. Units are binary (K, KB, KiB = 1024); no unit: bytes."""
    found = _SIZE_RE.fullmatch(text)
    unit = found.group(2).lower() if found is not None else None
    if found is None or unit not in _UNITS:
        raise ValueError(f"not a size: {text!r} (examples: 65536, 512KiB, 64MiB, 1GiB)")
    return int(found.group(1)) * _UNITS[unit]


def format_size(size: int) -> str:
    """The shortest exact binary-unit spelling: 67108864 -> ``"64MiB"``."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


#: Limits whose ``rawws serve`` flag is declared here (``--`` + the field name with dashes);
#: the older flags are spelled out in :mod:`rawws.chat.cli`. (field, kind, help): kind True
#: for a size, False for a count, "seconds" for a duration.
_FLAGS: Final[tuple[tuple[str, bool | str, str], ...]] = (
    ("history_max_bytes", True, "memory for all rooms' history: encoded messages plus their "
                                "per-entry overhead (least active rooms shrink first)"),
    ("inbox_max_bytes", True, "memory for all offline inboxes: encoded items plus their "
                              "per-entry overhead (least recently used shrink first)"),
    ("max_queue_bytes", True, "outbound bytes queued for a slow reader (replies included) "
                              "before it is closed with 1013"),
    ("max_reply_bytes", True, "a joined or history reply at most (the rest is marked "
                              "\"more\" and read page by page)"),
    ("max_topics_per_connection", False, "topic patterns one connection may subscribe to"),
    ("max_pattern_depth", False, "segments in one subscription pattern"),
    ("max_pattern_wildcards", False, "'*' and '#' in one subscription pattern"),
    ("max_patterns", False, "subscriptions (pattern, connection) on the whole server"),
    ("max_pattern_shapes", False, "distinct wildcard pattern shapes on the whole server (each "
                                  "costs every publish one lookup)"),
    ("max_rooms_per_ip", False, "rooms one client address may have created that still exist"),
    ("max_rooms_per_user", False, "rooms one user may have created that still exist"),
    ("history_max_age", "seconds", "seconds a room message is kept, besides the per-room "
                                   "count (trimmed in the background; default: no age limit)"),
    ("idempotency_ttl", "seconds", "seconds an idempotency key is remembered"),
)


def add_limit_arguments(group: Any) -> None:
    """Add the flags of :data:`_FLAGS` to an argparse parser or argument group."""
    defaults = Limits()
    for name, kind, text in _FLAGS:
        default = getattr(defaults, name)
        if default is None:
            shown = ""
        elif kind == "seconds":
            shown = f" (default {default:g})"
        else:
            shown = f" (default {format_size(default) if kind is True else f'{default:,}'})"
        metavar = {True: "SIZE", False: "N", "seconds": "SECONDS"}[kind]
        group.add_argument(_flag(name), dest=name, metavar=metavar, default=None,
                           help=f"{text}{shown}")


def limit_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`Limits` fields given on the command line by :func:`add_limit_arguments`
    flags (``ValueError`` naming the flag if one is not a size, a whole number or a number)."""
    values: dict[str, Any] = {}
    for name, kind, _ in _FLAGS:
        raw = getattr(args, name, None)
        if raw is None:
            continue
        try:
            if kind == "seconds":
                values[name] = float(raw)
            else:
                values[name] = parse_size(raw) if kind is True else int(raw)
        except ValueError as exc:
            detail = str(exc) if kind is True else (
                f"not {'a number of seconds' if kind == 'seconds' else 'a whole number'}: "
                f"{raw!r}")
            raise ValueError(f"{_flag(name)}: {detail}") from None
    return values
