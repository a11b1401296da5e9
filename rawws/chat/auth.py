"""Authentication: JSON Web Tokens (HS256/HS384/HS512), static tokens, and what a token grants.

Owns: verifying a token and turning it into an :class:`Identity` (a user name plus
:class:`Grants`), or raising :class:`TokenExpired` (close 4001) / :class:`TokenInvalid`
(close 4002). Also :func:`encode_jwt`, for tests, tools and the docs.

Does not own: where the token comes from (header, query, cookie or first message: the hub) or the
5-second deadline (the hub's timer).

JWT rules applied, in this order (RFC 7519, RFC 7515, RFC 8725 "JWT Best Current Practices"):

1. ASCII only, three base64url parts (no padding required, ``=`` tolerated), at most 8 KiB in
   all. A token that is not ASCII or whose parts do not decode (base64url, UTF-8, strict JSON:
   no ``NaN``, no ``1e400``) is :class:`TokenInvalid` (4002), never an internal error.
2. The header is a JSON object whose ``alg`` is one of the configured HMAC algorithms.
   ``none`` and every other algorithm are refused (RFC 8725 §3.1: "libraries MUST enable the
   caller to specify a supported set of algorithms and MUST NOT use any other algorithms").
   A ``crit`` header is refused: rawws understands no header extension (RFC 7515 §4.1.11).
3. The signature is recomputed with ``hmac`` and compared with :func:`hmac.compare_digest`.
   Nothing in the payload is trusted before this point.
4. ``exp``: expired when ``now >= exp + leeway`` -> :class:`TokenExpired`. ``nbf``: not yet
   valid when ``now + leeway < nbf`` -> :class:`TokenInvalid`. Both must be numbers if present.
5. ``sub`` names the user (``user_id`` is accepted when ``sub`` is absent, as some tutorials
   mint it); it must be a valid user name.
6. Optional claims ``rooms``, ``topics``, ``publish``: lists of wildcard patterns
   (:mod:`rawws.chat.topics` syntax). Absent means unrestricted; ``[]`` means nothing.

Static tokens are compared in constant time: each presented token is hashed (SHA-256) and the
digest is compared with *every* stored digest with :func:`hmac.compare_digest`, without an early
exit, so the time taken does not depend on which entry (if any) matched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .topics import covers, is_valid_pattern
from .wire import CLOSE_AUTH_EXPIRED, CLOSE_AUTH_INVALID, is_valid_user, loads_strict

__all__ = [
    "ALGORITHMS",
    "AuthError",
    "Authenticator",
    "Grants",
    "Identity",
    "JWTVerifier",
    "StaticTokens",
    "TokenExpired",
    "TokenInvalid",
    "encode_jwt",
]

ALGORITHMS: Final[Mapping[str, Callable[..., Any]]] = {
    "HS256": hashlib.sha256,
    "HS384": hashlib.sha384,
    "HS512": hashlib.sha512,
}
MAX_TOKEN_LENGTH: Final = 8192


class AuthError(Exception):
    """A token was refused. ``close_code`` is what the WebSocket is closed with."""

    close_code: int = CLOSE_AUTH_INVALID

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenExpired(AuthError):
    """The token's ``exp`` is in the past (beyond the leeway): close 4001."""

    close_code = CLOSE_AUTH_EXPIRED


class TokenInvalid(AuthError):
    """Anything else: malformed, bad signature, refused algorithm, not yet valid: close 4002."""

    close_code = CLOSE_AUTH_INVALID


@dataclass(frozen=True, slots=True)
class Grants:
    """What a token allows. ``None``: unrestricted; a tuple: only names matching a pattern."""

    rooms: tuple[str, ...] | None = None
    topics: tuple[str, ...] | None = None
    publish: tuple[str, ...] | None = None

    def may_join(self, room: str) -> bool:
        return self.rooms is None or any(covers(g, room) for g in self.rooms)

    def may_subscribe(self, pattern: str) -> bool:
        return self.topics is None or any(covers(g, pattern) for g in self.topics)

    def may_publish(self, topic: str) -> bool:
        return self.publish is None or any(covers(g, topic) for g in self.publish)


UNRESTRICTED: Final = Grants()


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    grants: Grants = UNRESTRICTED
    expires_at: float | None = None  # when the token stops being accepted: exp + leeway


# --- JWT ---------------------------------------------------------------------------------------


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(part: str) -> bytes:
    part = part.rstrip("=")
    if not part.isascii() or any(c not in _B64URL for c in part) or len(part) % 4 == 1:
        raise TokenInvalid("malformed token: bad base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("malformed token: bad base64url") from None


_B64URL: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = loads_strict(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TokenInvalid(f"malformed token: {what} is not JSON") from None
    if type(value) is not dict:
        raise TokenInvalid(f"malformed token: {what} is not a JSON object")
    return value


def encode_jwt(claims: Mapping[str, Any], secret: str | bytes, *, alg: str = "HS256",
               header: Mapping[str, Any] | None = None) -> str:
    """Sign ``claims``. ``header`` overrides header fields (tests use it to forge bad tokens)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    head = {"alg": alg, "typ": "JWT", **(header or {})}
    signing_input = (
        _b64url_encode(json.dumps(head, separators=(",", ":")).encode("utf-8"))
        + "."
        + _b64url_encode(json.dumps(dict(claims), separators=(",", ":")).encode("utf-8"))
    )
    digest = ALGORITHMS.get(alg, hashlib.sha256)
    signature = hmac.new(key, signing_input.encode("ascii"), digest).digest()
    return signing_input + "." + _b64url_encode(signature)


def _patterns(claims: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    if name not in claims:
        return None
    value = claims[name]
    if type(value) is not list or len(value) > 256:
        raise TokenInvalid(f"claim {name!r} must be a list of patterns")
    for pattern in value:
        if not is_valid_pattern(pattern):
            raise TokenInvalid(f"claim {name!r} holds an invalid pattern")
    return tuple(value)


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    if type(value) not in (int, float):  # bool is not a number here
        raise TokenInvalid(f"claim {name!r} must be a number")
    try:
        return float(value)
    except OverflowError:  # an integer beyond any double: 10**400
        raise TokenInvalid(f"claim {name!r} is out of range") from None


class JWTVerifier:
    """Verify HMAC-signed JWTs with one shared secret."""

    def __init__(
        self,
        secret: str | bytes,
        *,
        algorithms: Iterable[str] = ("HS256", "HS384", "HS512"),
        leeway: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        if not key.strip():
            raise ValueError("the JWT secret is empty: refusing to start (an empty secret "
                             "would sign anyone's tokens)")
        algs = tuple(algorithms)
        unknown = [a for a in algs if a not in ALGORITHMS]
        if unknown or not algs:
            raise ValueError(f"unsupported JWT algorithms: {unknown or 'none given'}")
        self._key = key
        self._algorithms = frozenset(algs)
        self._leeway = leeway
        self._clock = clock

    def verify(self, token: str) -> Identity:
        if type(token) is not str or not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenInvalid("malformed token")
        if not token.isascii():  # RFC 7515 §7.1: the compact form is base64url and dots
            raise TokenInvalid("malformed token: not ASCII")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenInvalid("malformed token: expected three dot-separated parts")
        head_b64, payload_b64, signature_b64 = parts
        header = _json_object(_b64url_decode(head_b64), "header")
        alg = header.get("alg")
        if type(alg) is not str or alg not in self._algorithms:
            raise TokenInvalid(f"algorithm not allowed: {str(alg)[:20]!r}")
        if "crit" in header:
            raise TokenInvalid("critical header extensions are not supported")
        signature = _b64url_decode(signature_b64)
        expected = hmac.new(
            self._key, f"{head_b64}.{payload_b64}".encode("ascii"), ALGORITHMS[alg]
        ).digest()
        if not hmac.compare_digest(signature, expected):
            raise TokenInvalid("bad signature")
        claims = _json_object(_b64url_decode(payload_b64), "payload")

        now = self._clock()
        exp = _number(claims, "exp")
        if exp is not None and now >= exp + self._leeway:
            raise TokenExpired("token expired")
        nbf = _number(claims, "nbf")
        if nbf is not None and now + self._leeway < nbf:
            raise TokenInvalid("token not yet valid")
        user = claims["sub"] if "sub" in claims else claims.get("user_id")
        if not is_valid_user(user):
            raise TokenInvalid("claim 'sub' must be a valid user name")
        assert isinstance(user, str)
        grants = Grants(
            rooms=_patterns(claims, "rooms"),
            topics=_patterns(claims, "topics"),
            publish=_patterns(claims, "publish"),
        )
        return Identity(user=user, grants=grants,
                        expires_at=None if exp is None else exp + self._leeway)


# --- static tokens -----------------------------------------------------------------------------


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class StaticTokens:
    """A fixed table token -> user, e.g. from a file with one ``TOKEN USER`` pair per line."""

    def __init__(self, table: Mapping[str, str]) -> None:
        if not table:
            raise ValueError("the static token table is empty: no one could connect "
                             "(give at least one 'TOKEN USER')")
        entries: list[tuple[bytes, str]] = []
        for token, user in table.items():
            if not token:
                raise ValueError("empty token in the static token table")
            if not is_valid_user(user):
                raise ValueError(f"invalid user name in the static token table: {user!r}")
            entries.append((_digest(token), user))
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def parse(cls, text: str) -> StaticTokens:
        """Either a JSON object ``{"token": "user"}`` or lines ``TOKEN USER`` (``#`` comments)."""
        if text.lstrip().startswith("{"):
            try:
                value = loads_strict(text)
            except RecursionError:
                raise ValueError("the tokens file is nested too deeply") from None
            except ValueError as exc:
                raise ValueError(f"the tokens file is not valid JSON: {exc}") from None
            if type(value) is not dict or not all(
                    type(k) is str and type(v) is str for k, v in value.items()):
                raise ValueError("the tokens file must be a JSON object mapping tokens "
                                 "(strings) to user names (strings)")
            return cls(value)
        table: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 2:
                raise ValueError(f"tokens file line {number}: expected 'TOKEN USER'")
            table[fields[0]] = fields[1]
        return cls(table)

    @classmethod
    def from_file(cls, path: str | Path) -> StaticTokens:
        return cls.parse(Path(path).read_text(encoding="utf-8"))

    def verify(self, token: str) -> Identity:
        if type(token) is not str or not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenInvalid("unknown token")
        presented = _digest(token)
        found: str | None = None
        for digest, user in self._entries:  # no early exit: constant time in the table size
            if hmac.compare_digest(presented, digest):
                found = user
        if found is None:
            raise TokenInvalid("unknown token")
        return Identity(user=found)


class Authenticator:
    """Tries static tokens (exact match) and then the JWT verifier."""

    def __init__(self, *, jwt: JWTVerifier | None = None,
                 static: StaticTokens | None = None) -> None:
        if jwt is None and static is None:
            raise ValueError("an Authenticator needs a JWT secret or static tokens")
        self.jwt = jwt
        self.static = static

    def verify(self, token: str) -> Identity:
        if self.static is not None:
            try:
                return self.static.verify(token)
            except TokenInvalid:
                if self.jwt is None:
                    raise
        assert self.jwt is not None
        return self.jwt.verify(token)
