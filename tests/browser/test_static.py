"""Checks of the demo page that need no browser (they run in every ``make test``): the files
ship with the package, obey the Content-Security-Policy by construction (no inline script or
style, no eval, no HTML from strings, nothing external), agree with the server's close and
error codes, and are served with the security headers.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path

import pytest

from rawws.chat.server import DEFAULT_STATIC_DIR, ChatConfig, ChatServer
from rawws.chat.wire import CLOSE_AUTH_EXPIRED, CLOSE_AUTH_INVALID, ErrorCode
from rawws.sansio.codes import CLOSE_CODE_MEANINGS

from . import conftest

STATIC = Path(DEFAULT_STATIC_DIR)
INDEX = (STATIC / "index.html").read_text("utf-8")
APP = (STATIC / "app.js").read_text("utf-8")
STYLE = (STATIC / "style.css").read_text("utf-8")


def js_table(name: str) -> dict[str, str]:
    body = re.search(rf"const {name} = \{{(.*?)\n  \}};", APP, re.DOTALL)
    assert body, f"{name} not found in app.js"
    return dict(re.findall(r"^\s*'?(\w+)'?: '((?:[^'\\]|\\.)*)',", body.group(1), re.MULTILINE))


def test_the_page_files_are_in_the_package() -> None:
    assert {"index.html", "app.js", "style.css"} <= {p.name for p in STATIC.iterdir()}
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text("utf-8")
    assert '"chat/static/*"' in pyproject


def test_index_has_no_inline_script_or_style_and_nothing_external() -> None:
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", INDEX, re.DOTALL | re.IGNORECASE)
    assert scripts, "the page loads its script"
    for attributes, body in scripts:
        assert body.strip() == "", "inline script"
        assert re.search(r'src="/static/[\w.-]+\.js"', attributes)
    assert not re.search(r"<style\b", INDEX, re.IGNORECASE), "inline <style>"
    assert not re.search(r"\sstyle=", INDEX, re.IGNORECASE), "style attribute"
    assert not re.search(r"\son[a-z]+=", INDEX, re.IGNORECASE), "inline event handler"
    assert not re.search(r"javascript:", INDEX, re.IGNORECASE)
    for text in (INDEX, APP, STYLE):
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.IGNORECASE), \
            "external asset"
        assert "@import" not in text and "@font-face" not in text


def test_script_never_evaluates_strings_or_builds_html() -> None:
    code = re.sub(r"//[^\n]*", "", APP)  # comments may mention what the code avoids
    for pattern in (r"\beval\s*\(", r"new\s+Function\b", r"\.innerHTML\b", r"\.outerHTML\s*=",
                    r"insertAdjacentHTML", r"document\.write", r"setTimeout\(\s*['\"`]",
                    r"setInterval\(\s*['\"`]", r"setAttribute\(\s*['\"]style"):
        assert not re.search(pattern, code), pattern
    assert APP.lstrip().startswith("//") and "'use strict';" in APP


def test_close_code_meanings_match_the_server() -> None:
    table = {int(code): text for code, text in js_table("CLOSE_MEANINGS").items()}
    for code, meaning in CLOSE_CODE_MEANINGS.items():
        assert table.get(code) == meaning, code
    assert table[CLOSE_AUTH_EXPIRED] == "token expired"
    assert table[CLOSE_AUTH_INVALID] == "invalid token"


def test_every_error_code_has_a_title() -> None:
    titles = js_table("ERROR_TITLES")
    assert set(titles) == {code.value for code in ErrorCode}


def test_the_page_handles_every_server_event_and_needs_no_api_key() -> None:
    handled = set(re.findall(r"case '(\w+)': return", APP))
    assert handled >= {"welcome", "pong", "joined", "left", "user_joined", "user_left",
                       "message", "private", "private_ack", "subscribed", "unsubscribed",
                       "published", "notification", "error", "rooms", "presence"}
    # The room list and online status come over the WebSocket (`rooms`, `presence`), so the
    # page works when the HTTP API needs a key; offline items are the ones the server marks.
    assert "/api/" not in re.sub(r"//[^\n]*", "", APP)
    assert "msg.offline === true" in APP and "offline_items" in APP


def test_every_control_has_a_label_in_the_markup() -> None:
    ids = set(re.findall(r'<label[^>]*\bfor="([\w-]+)"', INDEX))
    for tag, control_id in re.findall(r'<(input|textarea|select)\b[^>]*\bid="([\w-]+)"', INDEX):
        assert control_id in ids, f"<{tag} id={control_id}> has no label"


def test_missing_browser_pieces_give_a_clear_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", "/nonexistent/chromium")
    reason = conftest.missing_piece()
    assert reason is not None
    assert "/nonexistent/chromium" in reason or "playwright" in reason
    assert "make test-browser" in reason


async def test_page_and_assets_are_served_with_security_headers() -> None:
    async with ChatServer(ChatConfig(host="127.0.0.1", port=0)) as server:
        base = server.http_url

        def get(path: str) -> tuple[int, dict[str, str], bytes]:
            with urllib.request.urlopen(base + path, timeout=20) as response:
                return response.status, dict(response.headers), response.read()

        status, headers, body = await asyncio.to_thread(get, "/")
        assert status == 200
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["X-Content-Type-Options"] == "nosniff"
        csp = headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["connect-src"] == (f"'self' ws://127.0.0.1:{server.port} "
                                             f"wss://127.0.0.1:{server.port}")
        assert "unsafe" not in csp
        assert body.decode("utf-8") == INDEX
        for name, content_type in (("app.js", "text/javascript"), ("style.css", "text/css")):
            status, headers, _ = await asyncio.to_thread(get, f"/static/{name}")
            assert status == 200
            assert headers["Content-Type"].startswith(content_type)
            assert headers["X-Content-Type-Options"] == "nosniff"
