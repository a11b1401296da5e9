"""Errors are shown clearly: ``rate_limited`` and ``too_large`` replies as alerts (the
connection stays up), and a message over the WebSocket size limit as close code 1009 with its
meaning, after which the page reconnects by itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rawws.chat.limits import Limits
from rawws.chat.server import ChatConfig

from .conftest import Pages
from .helpers import ChatServerThread, room_log, say, sign_in

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def chat(browser: object) -> Iterator[ChatServerThread]:
    limits = Limits(rate=1.0, burst=8.0, max_content_size=1000, max_message_size=4096)
    server = ChatServerThread(ChatConfig(host="127.0.0.1", port=0, limits=limits))
    server.start()
    try:
        yield server
    finally:
        server.close()


def expect(target: object) -> object:
    from playwright.sync_api import expect as playwright_expect
    return playwright_expect(target)  # type: ignore[call-overload]


def test_rate_limited_is_shown_and_the_connection_stays(chat: ChatServerThread,
                                                        pages: Pages) -> None:
    page = pages.open(chat.base_url)
    sign_in(page, "chatty")
    # A burst of 8 (two spent on signing in), refilled at one per second: 15 quick messages
    # cannot all pass, and fewer than 20 refusals do not close the connection.
    for n in range(15):
        say(page, f"spam {n}")
    alert = page.locator("#toasts .toast[role=alert]", has_text="Slow down (rate_limited)")
    expect(alert.first).to_contain_text("message dropped")
    expect(room_log(page, "lobby")).to_contain_text(
        "Slow down (rate_limited)")
    expect(page.locator("#status")).to_have_attribute("data-state", "online")
    expect(page.locator("#conn-reconnects")).to_have_text("0")


def test_too_large_content_is_an_error_reply(chat: ChatServerThread, pages: Pages) -> None:
    page = pages.open(chat.base_url)
    sign_in(page, "wordy")
    say(page, "x" * 1500)  # over max_content_size, under the WebSocket message limit
    expect(page.locator("#toasts .toast[role=alert]", has_text="Too large (too_large)")
           ).to_contain_text("the limit is 1000")
    expect(page.locator("#conn-reconnects")).to_have_text("0")


def test_message_over_the_size_limit_closes_with_1009_and_reconnects(chat: ChatServerThread,
                                                                     pages: Pages) -> None:
    page = pages.open(chat.base_url)
    sign_in(page, "bulky")
    say(page, "y" * 5000)  # over max_message_size: the server closes the connection
    expect(page.locator("#toasts .toast", has_text="Disconnected")).to_contain_text(
        "1009 message too big")
    expect(page.locator("#conn-reconnects")).to_have_text("1")
    expect(page.locator("#conn-last-close")).to_contain_text("1009 message too big")
    say(page, "short one")
    expect(room_log(page, "lobby").locator("li.msg.mine", has_text="short one")).to_be_visible()
