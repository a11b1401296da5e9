"""The chat protocol on the wire: error codes, close codes, names, timestamps, guarded JSON.

Owns: turning one received text message into a JSON object (or a :class:`WireError` that says
which ``error`` reply it deserves), encoding outgoing objects to text once, validating the names
that appear in messages and URLs (users, rooms), the ISO 8601 timestamps put on events, and
reading ``Authorization: Bearer`` (tokens at the handshake, the HTTP API key).

Does not own: what a message means (:mod:`rawws.chat.router`) or topic syntax
(:mod:`rawws.chat.topics`). ``docs/chat-protocol.md`` is the reference for every shape named here.

Theory of operation:

1. Size is bounded before this module sees a message: the WebSocket layer closes with 1009 above
   ``max_message_size``. Structure is bounded here: nesting deeper than ``max_depth`` is refused
   *before* ``json.loads`` runs (a cheap count decides in C whether the careful scan is needed),
   so a hostile ``[[[[...`` never reaches the recursive parser.
2. Only strict JSON is accepted: ``NaN``/``Infinity`` are refused, so are numbers out of the
   range of a double (``1e400`` would parse as infinity, which no JSON text can carry back
   out), and lone UTF-16 surrogates written as ``\\ud800`` escapes (they decode to a ``str``
   that cannot be encoded back to UTF-8). Anything parsed here can be encoded again.
3. Every outgoing object is encoded once with :func:`encode`; fan-out reuses that text.
"""

from __future__ import annotations

import enum
import json
import math
import re
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "CLOSE_AUTH_EXPIRED",
    "CLOSE_AUTH_INVALID",
    "ErrorCode",
    "WireError",
    "bearer_token",
    "decode_json",
    "decode_message",
    "encode",
    "is_valid_room",
    "is_valid_user",
    "iso_timestamp",
    "json_depth_exceeds",
    "loads_strict",
    "utf8_length",
]

#: Close code for an expired token (private-use range, RFC 6455 §7.4.2: 4000-4999).
CLOSE_AUTH_EXPIRED: Final = 4001
#: Close code for a token that is invalid for any other reason (bad signature, alg, claims...).
CLOSE_AUTH_INVALID: Final = 4002


class ErrorCode(enum.StrEnum):
    """The ``code`` of an ``{"type": "error"}`` reply. The connection stays open after each."""

    BAD_JSON = "bad_json"  # not a JSON text message (binary, syntax error, NaN, lone surrogate)
    BAD_REQUEST = "bad_request"  # JSON, but a field is missing or invalid
    UNKNOWN_TYPE = "unknown_type"  # "type" names no request this server knows
    FORBIDDEN = "forbidden"  # not allowed: token claims, endpoint, per-connection caps
    NOT_FOUND = "not_found"  # the room named is not one this connection is in
    RATE_LIMITED = "rate_limited"  # over the per-connection message rate; the message is dropped
    TOO_LARGE = "too_large"  # nesting, content size or list length over a limit
    CONFLICT = "conflict"  # an idempotency key reused for another request
    UNAVAILABLE = "unavailable"  # the store could not make the write durable: retry later


class WireError(Exception):
    """A request that deserves an ``error`` reply with ``code``."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- sizes -------------------------------------------------------------------------------------


def utf8_length(text: str) -> int:
    """The length of ``text`` in bytes of UTF-8: every size limit counts bytes, so that a
    4-byte character counts 4 (``len`` would count it 1). O(1) for ASCII text."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


# --- names -------------------------------------------------------------------------------------

# Users and rooms appear in URLs (/ws/chat/{room}, /api/notify/{user_id}) and in terminal output:
# RFC 3986 "unreserved" characters only, so they never need escaping and cannot smuggle control
# characters or path separators. ASCII only, so their length limits are limits in bytes too.
# Room names may contain dots, so that token claims can grant a family of rooms with the topic
# wildcards ("team.*").
_USER_RE: Final = re.compile(r"[A-Za-z0-9_\-.~@]{1,64}")
_ROOM_RE: Final = re.compile(r"[A-Za-z0-9_\-~]{1,64}(?:\.[A-Za-z0-9_\-~]{1,64}){0,7}")
_ROOM_MAX: Final = 128


def is_valid_user(name: object) -> bool:
    """1-64 characters from ``A-Z a-z 0-9 _ - . ~ @``."""
    return type(name) is str and _USER_RE.fullmatch(name) is not None


def is_valid_room(name: object) -> bool:
    """1-8 dot-separated segments of ``A-Z a-z 0-9 _ - ~``, at most 128 characters."""
    return (
        type(name) is str and len(name) <= _ROOM_MAX and _ROOM_RE.fullmatch(name) is not None
    )


# --- HTTP headers ------------------------------------------------------------------------------


def bearer_token(value: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header value, else None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# --- time --------------------------------------------------------------------------------------


def iso_timestamp(seconds: float) -> str:
    """``2024-05-01T12:00:00.123Z``: ISO 8601, UTC, millisecond precision."""
    text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


# --- JSON --------------------------------------------------------------------------------------

_STRING_RE: Final = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_RE: Final = re.compile(r"[\[\]{}]")


def json_depth_exceeds(text: str, max_depth: int) -> bool:
    """Return whether the JSON ``text`` nests arrays/objects deeper than ``max_depth``.

    Brackets inside strings do not count. Fast path (C speed): a text with at most ``max_depth``
    opening brackets in total cannot nest deeper, whatever they are.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False
    depth = 0
    for match in _BRACKET_RE.finditer(_STRING_RE.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400, -1e400: out of the range of a double
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def loads_strict(text: str) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity``, ``-Infinity`` and numbers out of the
    range of a double (``1e400``), raising ``ValueError`` (``RecursionError`` when nested too
    deep: callers bound the depth first or catch it). For every JSON the chat server reads:
    messages, API bodies, tokens, the tokens file."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def decode_message(text: str, *, max_depth: int) -> dict[str, Any]:
    """Parse one request; raise :class:`WireError` (bad_json, bad_request or too_large)."""
    value = decode_json(text, max_depth=max_depth)
    if type(value) is not dict:
        raise WireError(ErrorCode.BAD_REQUEST, "expected a JSON object")
    return value


def decode_json(text: str, *, max_depth: int) -> Any:
    """Parse any strict JSON value; raise :class:`WireError` (bad_json or too_large)."""
    if json_depth_exceeds(text, max_depth):
        raise WireError(ErrorCode.TOO_LARGE, f"JSON nested deeper than {max_depth} levels")
    try:
        value = loads_strict(text)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, NaN/Infinity, 1e400 and over-long integers.
        raise WireError(ErrorCode.BAD_JSON, f"invalid JSON: {_short(exc)}") from None
    if "\\u" in text or "\\U" in text:
        # A "\ud800" escape decodes to a lone surrogate that UTF-8 cannot encode back.
        try:
            encode(value).encode("utf-8")
        except UnicodeEncodeError:
            raise WireError(ErrorCode.BAD_JSON, "invalid JSON: lone surrogate escape") from None
    return value


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 120 else text[:117] + "..."


_encoder: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode(value: object) -> str:
    """Compact JSON text, UTF-8 friendly (no ``\\u`` escapes for non-ASCII)."""
    return _encoder.encode(value)
