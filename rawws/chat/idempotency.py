"""Idempotency keys: the outcome of one request, replayed when the same key comes again.

Owns: what a key may be, the fingerprint that tells "the same request again" from "another
request under a used key", the record (:class:`Idem` going in, :class:`Recalled` coming
out), and :class:`IdempotencyTable`, the bounded in-memory table every store keeps (the SQLite
store mirrors it in its file, a Redis store would use ``SET NX EX``).

Does not own: where keys arrive (``Idempotency-Key`` on HTTP, ``idempotency_key`` on WebSocket
requests: the HTTP API and the router) or the replies rebuilt from a record (the router).

Rules (docs/chat-protocol.md, "Idempotency keys"):

1. Keys are scoped: a WebSocket user's keys (scope ``user:NAME``) and the HTTP API's (scope
   ``http``) never meet, so one client cannot replay or block another's.
2. The same key in the same scope within ``idempotency_ttl`` seconds (24 h) gets the first
   request's reply, and nothing else happens: no second delivery, no second write.
3. The same key with another request (another operation or other arguments: another
   fingerprint) is refused with ``conflict`` (HTTP 422), as the IETF draft on the
   ``Idempotency-Key`` header specifies, instead of replaying an unrelated answer.
4. A record is written with the write it describes, atomically (the SQLite store: in the same
   transaction), so a crash cannot keep the message and lose the key (a retry would deliver
   twice) or keep the key and lose the message (a retry would be told it was delivered).
5. The table is bounded: at most ``max_idempotency_keys`` records and ``idempotency_max_bytes``
   of them; the oldest are forgotten first (counted), which only makes an old key usable
   again early.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from .wire import encode

__all__ = [
    "KEY_MAX_LENGTH",
    "RECORD_OVERHEAD",
    "Idem",
    "IdempotencyTable",
    "Recalled",
    "decode_outcome",
    "encode_outcome",
    "fingerprint",
    "valid_key",
]

KEY_MAX_LENGTH: Final = 255
#: Bytes charged per record besides its key and outcome: the record tuple, the key tuple, the
#: ordered-dict entry, the expiry float (what CPython 3.11 allocates for them, with margin).
RECORD_OVERHEAD: Final = 320


def valid_key(value: object) -> bool:
    """1-255 visible ASCII characters (``!`` to ``~``): a UUID, a ULID, a hash..."""
    return (type(value) is str and 0 < len(value) <= KEY_MAX_LENGTH and value.isascii()
            and value.isprintable() and " " not in value)


def fingerprint(operation: str, *arguments: Any) -> str:
    """What makes two requests "the same": the operation and its arguments, hashed."""
    return hashlib.sha256(encode([operation, *arguments]).encode("utf-8")).hexdigest()[:32]


class Idem(NamedTuple):
    """An idempotency key presented with a request, and what its record will hold besides the
    stored item: ``extra``, the parts of the reply known before the write (e.g. how many
    connections got a notification)."""

    scope: str
    key: str
    fingerprint: str
    extra: dict[str, Any]


class Recalled(NamedTuple):
    """A record found for a key: the first request's fingerprint, the item it stored (its
    encoded event; None when it stored nothing else) and its ``extra``."""

    fingerprint: str
    data: bytes | None
    extra: dict[str, Any]


def encode_outcome(data: bytes | None, extra: dict[str, Any]) -> bytes:
    """A record's outcome as one UTF-8 JSON object (how the SQLite store keeps it)."""
    stored = None if data is None else data.decode("utf-8")
    return encode({"data": stored, "extra": extra}).encode("utf-8")


def decode_outcome(raw: bytes) -> tuple[bytes | None, dict[str, Any]]:
    value = json.loads(raw)
    data = value.get("data")
    extra = value.get("extra")
    return (None if data is None else str(data).encode("utf-8"),
            extra if isinstance(extra, dict) else {})


class IdempotencyTable:
    """Records by ``(scope, key)``, oldest first, bounded (rule 5). ``on_drop(scope, key)`` is
    called for every record forgotten because of a bound or its age (the SQLite store deletes
    its row)."""

    def __init__(self, *, ttl: float, max_keys: int, max_bytes: int,
                 on_drop: Callable[[str, str], None] | None = None) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self.max_bytes = max_bytes
        self._on_drop = on_drop
        # (scope, key) -> (expires, record, charge): insertion order is expiry order.
        self._records: OrderedDict[tuple[str, str], tuple[float, Recalled, int]] = OrderedDict()
        self.bytes = 0
        self.evicted = 0  # forgotten early, by a bound
        self.expired = 0

    def __len__(self) -> int:
        return len(self._records)

    def get(self, scope: str, key: str, now: float) -> Recalled | None:
        self.expire(now)
        entry = self._records.get((scope, key))
        return entry[1] if entry is not None else None

    def put(self, idem: Idem, data: bytes | None, now: float, *,
            expires: float | None = None) -> Recalled:
        """Keep a record (replacing one with the same key) and return it."""
        record = Recalled(idem.fingerprint, data, idem.extra)
        charge = (RECORD_OVERHEAD + len(idem.scope) + len(idem.key) + len(idem.fingerprint)
                  + (len(data) if data is not None else 0) + len(encode(idem.extra)))
        name = (idem.scope, idem.key)
        old = self._records.pop(name, None)
        if old is not None:
            self.bytes -= old[2]
        self._records[name] = (now + self.ttl if expires is None else expires, record, charge)
        self.bytes += charge
        while len(self._records) > 1 and (len(self._records) > self.max_keys
                                          or self.bytes > self.max_bytes):
            self._drop_oldest()
            self.evicted += 1
        return record

    def expire(self, now: float, limit: int | None = None) -> int:
        """Forget records whose time is up (at most ``limit`` of them); return how many."""
        records = self._records
        count = 0
        while records and (limit is None or count < limit):
            expires, _, _ = next(iter(records.values()))
            if expires > now:
                break
            self._drop_oldest()
            count += 1
        self.expired += count
        return count

    def _drop_oldest(self) -> None:
        (scope, key), (_, _, charge) = self._records.popitem(last=False)
        self.bytes -= charge
        if self._on_drop is not None:
            self._on_drop(scope, key)

    def items(self) -> list[tuple[str, str, float, Recalled]]:
        """Every record as ``(scope, key, expires, record)``, oldest first."""
        return [(scope, key, expires, record)
                for (scope, key), (expires, record, _) in self._records.items()]
