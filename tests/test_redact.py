"""rawws.redact: the one redaction module (targets, headers, payload previews, free text, the
logging filter), and the sans-I/O transcript that uses it."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from rawws.redact import (
    RedactingFilter,
    is_secret_header,
    redact_header,
    redact_headers,
    redact_payload,
    redact_target,
    redact_text,
)
from rawws.sansio.frames import Frame

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0."
       "c2lnbmF0dXJlLXNpZ25hdHVyZQ")
STATIC = "st4tic-t0ken-value"


@pytest.mark.parametrize(("target", "expected"), [
    ("/ws", "/ws"),
    ("/ws?token=secret", "/ws?token=***"),
    ("/ws?user_id=a&token=b", "/ws?user_id=***&token=***"),
    ("/ws?", "/ws?"),
    ("/a?x", "/a?x=***"),
    ("/a?s3cr%3Dt", "/a?***=***"),  # a bare value that is not a plain name may be the secret
    ("/a?token=x#frag", "/a?token=***"),
    ("/a?" + "&".join(f"k{i}=v" for i in range(20)),
     "/a?" + "&".join(f"k{i}=***" for i in range(16)) + "&..."),
])
def test_redact_target(target: str, expected: str) -> None:
    assert redact_target(target) == expected


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("Authorization", f"Bearer {JWT}", "Bearer ***"),
    ("authorization", "Basic YWxpY2U6cGFzcw==", "Basic ***"),
    ("Proxy-Authorization", "secret-without-scheme", "***"),
    ("Cookie", f"theme=dark; rawws_token={STATIC}", "theme=***; rawws_token=***"),
    ("Set-Cookie", f"rawws_token={STATIC}; HttpOnly", "***"),
    ("X-API-Key", STATIC, "***"),
    ("X-Rawws-Token", STATIC, "***"),
    ("Host", "chat.example", "chat.example"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=="),
])
def test_redact_header(name: str, value: str, expected: str) -> None:
    assert redact_header(name, value) == expected
    assert is_secret_header(name) is (expected != value)


def test_redact_headers_keeps_order_and_names() -> None:
    pairs = [("Host", "h"), ("Authorization", "Bearer k"), ("Origin", "http://h")]
    assert redact_headers(pairs) == [("Host", "h"), ("Authorization", "Bearer ***"),
                                     ("Origin", "http://h")]


@pytest.mark.parametrize("message", [
    {"type": "auth", "token": JWT},
    {"type": "auth", "token": STATIC, "id": 1},
    {"token": STATIC},
    {"type": "login", "password": STATIC},
    {"api_key": STATIC, "content": "hello"},
    {"config": {"client_secret": STATIC}},
    {"access_token": STATIC, "refresh_token": STATIC},
])
def test_redact_payload_blanks_secret_fields(message: dict[str, object]) -> None:
    text = json.dumps(message)
    redacted = redact_payload(text)
    assert STATIC not in redacted and JWT not in redacted and "eyJ" not in redacted
    assert "***" in redacted


def test_redact_payload_keeps_other_fields() -> None:
    text = json.dumps({"type": "message", "room": "lobby", "content": "a token of thanks"})
    assert redact_payload(text) == text


@pytest.mark.parametrize("cut", range(1, 80))
def test_redact_payload_on_every_truncated_preview(cut: int) -> None:
    """A transcript shows the first bytes only: wherever the cut falls, no part of the token
    longer than the redaction's own prefix ("eyJ" + 3 characters) shows."""
    text = json.dumps({"type": "auth", "token": JWT})[:cut]
    redacted = redact_payload(text)
    for start in range(len(JWT) - 6):
        assert JWT[start:start + 7] not in redacted, (cut, redacted)


def test_a_jwt_anywhere_is_blanked() -> None:
    assert redact_payload(f"my token is {JWT} ok") == "my token is *** ok"


@pytest.mark.parametrize(("line", "secret"), [
    (f"GET /ws?token={STATIC} HTTP/1.1", STATIC),
    (f"invalid header line: 'Authorization Bearer {STATIC}'", STATIC),
    (f"invalid header line: 'Cookie; rawws_token={STATIC}'", STATIC),
    (f"header Authorization: Bearer {STATIC}", STATIC),
    (f"connect to ws://h:1/ws?token={STATIC} failed", STATIC),
    (f"token={STATIC} api_key:{STATIC}", STATIC),
    (f"password = {STATIC}", STATIC),
    (f"got {{'type': 'auth', 'token': '{STATIC}'}}", STATIC),
    (f"x-api-key {STATIC}", STATIC),
    (f"frame {JWT}", JWT),
])
def test_redact_text(line: str, secret: str) -> None:
    assert secret not in redact_text(line)


@pytest.mark.parametrize("line", [
    "still reconnecting?",
    "closing with 4001: token expired",
    "HTTP GET /api/rooms -> 200",
    "rawws serve: the tokens file holds no token",
    "malformed token: expected three dot-separated parts",
    "< TEXT [F] '{\"type\": \"auth\", \"token\": \"***'... (104 bytes)",
])
def test_redact_text_leaves_plain_lines_alone(line: str) -> None:
    assert redact_text(line) == line


def test_redacting_filter() -> None:
    record = logging.LogRecord("rawws.chat.ws", logging.DEBUG, __file__, 1,
                               "> HTTP 101 to %s from %s", ("/ws?token=abc.def", "1.2.3.4"),
                               None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "> HTTP 101 to /ws?token=*** from 1.2.3.4"
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "no query %d", (5,), None)
    assert RedactingFilter().filter(plain)
    assert plain.getMessage() == "no query 5"


def test_redacting_filter_covers_tracebacks() -> None:
    try:
        raise ValueError(f"bad token={STATIC}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "ValueError" in formatted and STATIC not in formatted


@pytest.mark.parametrize(("frame", "secret"), [
    (Frame(0x1, json.dumps({"type": "auth", "token": JWT}).encode()), JWT),
    (Frame(0x1, json.dumps({"type": "auth", "token": STATIC}).encode()), STATIC),
    (Frame(0x2, json.dumps({"token": STATIC}).encode()), STATIC),
    (Frame(0x1, json.dumps({"pad": "x" * 40, "token": JWT}).encode()), JWT[:8]),
])
def test_the_frame_transcript_blanks_secrets(frame: Frame, secret: str) -> None:
    shown = str(frame)
    assert secret not in shown and "***" in shown
    # The bytes of a binary payload would show as hex otherwise.
    assert secret.encode().hex(" ")[:20] not in shown
