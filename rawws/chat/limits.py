"""Limits: the token-bucket rate limiter and the one place where every chat limit is configured.

Owns: :class:`TokenBucket` (time is passed in, never read, so tests drive it exactly) and
:class:`Limits`, the frozen set of numbers that bound what one connection, one user and the whole
process may use. Each limit names the reply or close code its breach produces.

Does not own: enforcing connection caps at the handshake (the hub) or byte budgets of stored
history and inboxes (:mod:`rawws.chat.store`), which read their numbers from here.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["BucketTable", "Limits", "TokenBucket"]


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
    max_queue: int = 256  # outbound messages waiting on a slow reader: close 1013
    max_queue_bytes: int = 1024 * 1024  # same, in bytes
    auth_timeout: float = 5.0  # no token by then: close 1008
    # --- per process
    max_connections: int = 10_000  # handshake answered 503 beyond
    max_connections_per_ip: int = 256  # handshake answered 503 beyond
    max_rooms: int = 10_000  # rooms alive at once (empty rooms are evicted first): forbidden
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
    max_body_size: int = 64 * 1024  # HTTP API request body: 413
    # --- HTTP API, per client address (None: no limit)
    http_rate: float | None = 20.0  # /api/* requests per second, sustained: 429
    http_burst: float = 100.0  # /api/* requests accepted at once
    http_max_clients: int = 10_000  # addresses tracked (least recently seen forgotten)
