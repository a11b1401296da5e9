"""Keeping secrets out of logs: THE redaction functions, used wherever rawws logs a request, a
header or a frame (the sans-I/O transcript, the asyncio server, the chat server and its CLI).

Owns: what counts as a secret in what rawws logs, and how it is blanked. Imports nothing from
rawws, so that every layer (sansio, aio, chat, tools) may use it.

Theory of operation:

1. Secrets travel in four places: the query string (``?token=...``), headers
   (``Authorization``, ``Cookie``, API-key headers), the payload of a message (a first-message
   ``{"type": "auth", "token": ...}``, any JSON carrying a token, password or secret field), and
   free text that quotes one of those (an error message citing a malformed request line).
2. Each place has its function: :func:`redact_target` (every query *value* blanked, keys
   kept), :func:`redact_header` / :func:`redact_headers` (secret headers blanked, the
   ``Authorization`` scheme kept), :func:`redact_payload` (secret JSON fields and JWT-shaped
   strings blanked; works on a truncated preview, where the closing quote may be missing), and
   :func:`redact_text`, which applies all of the above to a whole log line.
3. :class:`RedactingFilter` runs :func:`redact_text` on every record that passes a handler or a
   logger: the last line of defence that ``rawws serve`` and ``rawws echo`` install on their
   log handlers. Library users may install it on theirs.
4. Redaction errs on the side of blanking: a value that merely looks like a JWT
   (base64url JSON, ``eyJ...``) is blanked wherever it appears. A log line loses a little
   detail; a credential never reaches it.

The blank is :data:`REDACTED` (``***``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Final

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "RedactingFilter",
    "is_secret_header",
    "is_secret_key",
    "redact_header",
    "redact_headers",
    "redact_payload",
    "redact_target",
    "redact_text",
]

REDACTED: Final = "***"

#: Headers whose value is a credential (lower case).
SECRET_HEADERS: Final = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key",
    "x-auth-token", "x-access-token", "x-csrf-token", "x-xsrf-token",
})
#: Words that make a header name or a JSON key a secret (``X-Rawws-Token``, ``api_key``...).
_SECRET_WORDS: Final = ("token", "secret", "password", "passwd", "apikey", "api_key", "api-key",
                        "authorization", "credential", "session", "cookie", "jwt")

# --- request targets ---------------------------------------------------------------------------

_MAX_KEYS: Final = 16
_MAX_KEY_LENGTH: Final = 32


def redact_target(target: str) -> str:
    """A request target safe to log: every query value replaced by ``***``, keys kept (at most
    16, each cut to 32 characters): ``/ws?token=abc&user_id=al`` -> ``/ws?token=***&user_id=***``.
    A fragment is dropped."""
    target = target.partition("#")[0]
    path, sep, query = target.partition("?")
    if not sep:
        return path
    keys = [part.partition("=")[0] for part in query.split("&") if part]
    shown = [f"{_safe_key(key)}={REDACTED}" for key in keys[:_MAX_KEYS]]
    if len(keys) > _MAX_KEYS:
        shown.append("...")
    return path + "?" + "&".join(shown)


def _safe_key(key: str) -> str:
    key = key[:_MAX_KEY_LENGTH]
    # A key with no value ("?s3cret") may itself be the secret: only plain names are shown.
    return key if _PLAIN_KEY.fullmatch(key) else REDACTED


_PLAIN_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,31}")

# --- headers -----------------------------------------------------------------------------------


def is_secret_header(name: str) -> bool:
    """Whether a header named ``name`` carries a credential."""
    lowered = name.strip().lower()
    return lowered in SECRET_HEADERS or any(word in lowered for word in _SECRET_WORDS)


def redact_header(name: str, value: str) -> str:
    """``value`` safe to log: blank for a secret header; ``Authorization: Bearer ***`` keeps its
    scheme, ``Cookie: a=***; b=***`` its cookie names."""
    if not is_secret_header(name):
        return value
    lowered = name.strip().lower()
    if lowered in ("authorization", "proxy-authorization"):
        scheme, sep, _ = value.strip().partition(" ")
        if sep and _PLAIN_KEY.fullmatch(scheme):
            return f"{scheme} {REDACTED}"
        return REDACTED
    if lowered == "cookie":
        names = [part.strip().partition("=")[0] for part in value.split(";") if part.strip()]
        return "; ".join(f"{_safe_key(n)}={REDACTED}" for n in names[:_MAX_KEYS]) or REDACTED
    return REDACTED


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every ``(name, value)`` pair with :func:`redact_header` applied."""
    return [(name, redact_header(name, value)) for name, value in headers]


# --- payloads ----------------------------------------------------------------------------------


def is_secret_key(key: str) -> bool:
    """Whether a JSON field (or query key) named ``key`` holds a credential."""
    lowered = key.lower()
    return lowered in ("key", "auth", "pass") or any(word in lowered for word in _SECRET_WORDS)


# "token": "...", "api_key": 123 ... : a JSON string key (any key; is_secret_key decides), a colon,
# and a value: a string (its closing quote may be cut off by a preview) or a bare word (a number,
# true...; not an object or array, whose own fields are matched one by one).
_JSON_FIELD: Final = re.compile(
    r'"((?:[^"\\]|\\.){1,64})"(\s*:\s*)'
    r'("(?!\*\*\*)(?:[^"\\]|\\.)*(?:"|\\?$)|[^\s,}\]{\["*][^\s,}\]]*)', re.DOTALL)
# The same in a Python repr ({'token': 'abc'}), as a logged dict shows it.
_REPR_FIELD: Final = re.compile(
    r"'((?:[^'\\]|\\.){1,64})'(\s*:\s*)"
    r"('(?!\*\*\*)(?:[^'\\]|\\.)*(?:'|\\?$)|[^\s,}\]{\['*][^\s,}\]]*)", re.DOTALL)
# A JWT, or any base64url JSON object (a JWS / JWE part starts with eyJ, base64 of '{"').
_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_\-]{4,}(?:\.[A-Za-z0-9_\-]*){0,4}")


def redact_payload(text: str) -> str:
    """A message payload (or the start of one) safe to log: the value of every JSON field whose
    name is a secret (``token``, ``api_key``, ``password``, ``secret``, ...) and every
    JWT-shaped string replaced by ``***``. Works on a truncated preview too."""
    if '"' in text:
        text = _JSON_FIELD.sub(_blank_field, text)
    if "'" in text:
        text = _REPR_FIELD.sub(_blank_field, text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    return text


def _blank_field(match: re.Match[str]) -> str:
    if not is_secret_key(match.group(1)):
        return match.group(0)
    quote = match.group(0)[0]
    value = match.group(3)
    if value.startswith(quote):
        closing = quote if len(value) > 1 and value.endswith(quote) else ""
        blank = f"{quote}{REDACTED}{closing}"
    else:
        blank = REDACTED
    return f"{quote}{match.group(1)}{quote}{match.group(2)}{blank}"


# --- free text ---------------------------------------------------------------------------------

# A query string: "?" after a path ("/ws?..."), or any "?" whose words hold an "=" ("?a=b"),
# up to white space or a quote. A question mark in a sentence is neither.
_QUERY: Final = re.compile(r"(/[^\s?\"'<>]*)?(\?[^\s\"'<>]*)")
# A credential after an auth scheme (RFC 9110 §11.4: Bearer, Basic).
_SCHEME: Final = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s\"',;]+")
# A secret header quoted in a message ("Authorization: ...", "cookie=...", "x-api-key ..."):
# everything after the name up to the end of the line or a quote.
_HEADER: Final = re.compile(
    r"(?i)\b(proxy-authorization|authorization|set-cookie|cookie|x-api-key|api-key|"
    r"x-auth-token|x-access-token)\b(\s*[:=]?\s*)[^\r\n\"']+")
# key=value pairs in free text (token=abc, api_key:abc) for secret keys. A colon counts only
# when no space follows it: "token: expected three parts" is prose, not a secret.
_PAIR: Final = re.compile(r"(?i)\b([A-Za-z_\-]*(?:token|secret|password|passwd|api_?key|jwt))"
                          r"(\s*=\s*|:)(?!\*\*\*)[^\s\"',;&]+")


def redact_text(text: str) -> str:
    """A free-form log line safe to log: query strings, credentials after an auth scheme,
    secret headers quoted in it, ``token=...`` pairs, secret JSON fields and JWT-shaped strings
    all blanked."""
    if "?" in text:
        text = _QUERY.sub(_blank_query, text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return redact_payload(text)


def _blank_query(match: re.Match[str]) -> str:
    path, query = match.group(1), match.group(2)
    if path is None and "=" not in query:
        return match.group(0)
    return redact_target((path or "") + query)


class RedactingFilter(logging.Filter):
    """A logging filter that runs :func:`redact_text` on every record (message, arguments and
    the formatted traceback).

    On a handler it covers every logger that reaches that handler; ``rawws serve`` and
    ``rawws echo`` install it on theirs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True
