"""rawws.chat.hub and wire helpers: token sources, origin rule."""

from __future__ import annotations

import pytest

import rawws
from rawws.chat.hub import ChatHub, cookie_value, same_origin
from rawws.chat.router import Router
from rawws.chat.wire import bearer_token


@pytest.mark.parametrize(("value", "expected"), [
    ("Bearer abc", "abc"),
    ("bearer   abc  ", "abc"),
    ("Basic abc", None),
    ("Bearer", None),
    ("Bearer    ", None),
    ("", None),
    (None, None),
])
def test_bearer_token(value: str | None, expected: str | None) -> None:
    assert bearer_token(value) == expected


def test_cookie_value() -> None:
    headers = rawws.Headers([("Cookie", "a=1; rawws_token=tok; b=2"), ("Cookie", "c=3")])
    assert cookie_value(headers, "rawws_token") == "tok"
    assert cookie_value(headers, "c") == "3"
    assert cookie_value(headers, "missing") is None
    assert cookie_value(rawws.Headers([("Cookie", 'rawws_token="q"')]), "rawws_token") == "q"
    assert cookie_value(rawws.Headers([("Cookie", "rawws_token=")]), "rawws_token") is None
    assert cookie_value(rawws.Headers([("Cookie", "xrawws_token=1")]), "rawws_token") is None


@pytest.mark.parametrize(("origin", "host", "expected"), [
    ("http://127.0.0.1:8765", "127.0.0.1:8765", True),
    ("https://chat.example", "chat.example", True),
    ("HTTP://Chat.Example", "chat.example", True),
    ("http://evil.example", "chat.example", False),
    ("http://chat.example.evil", "chat.example", False),
    ("null", "chat.example", False),
    ("http://chat.example", None, False),
    ("http://chat.example:80", "chat.example", False),
])
def test_same_origin(origin: str, host: str | None, expected: bool) -> None:
    assert same_origin(origin, host) is expected


def test_slow_consumer_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        ChatHub(Router(), slow_consumer="ignore")  # type: ignore[arg-type]
