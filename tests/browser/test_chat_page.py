"""The demo page in a real Chromium: two people chat, presence, private messages, notifications,
topics with wildcards, offline items, permessage-deflate, headers, keyboard use, screenshots.

One chat server with the default configuration (compression on, so Chromium's permessage-deflate
offer is accepted) serves the whole module; each test uses its own user names so that tests do
not see each other.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rawws.chat.server import ChatConfig

from .conftest import NARROW, Pages
from .helpers import ChatServerThread, http, room_log, say, sign_in

pytestmark = pytest.mark.timeout(120)

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"


@pytest.fixture(scope="module")
def chat(browser: object) -> Iterator[ChatServerThread]:
    server = ChatServerThread(ChatConfig(host="127.0.0.1", port=0))
    server.start()
    try:
        yield server
    finally:
        server.close()


def expect(target: object) -> object:
    from playwright.sync_api import expect as playwright_expect
    return playwright_expect(target)  # type: ignore[call-overload]


def test_two_people_chat_both_ways_with_live_presence(chat: ChatServerThread,
                                                      pages: Pages) -> None:
    alice = pages.open(chat.base_url)
    sign_in(alice, "alice")
    bob = pages.open(chat.base_url)
    sign_in(bob, "bob")

    # bob's arrival shows in alice's presence list and in the room's member count.
    expect(alice.locator('#people-list li[data-user="bob"]')).to_be_visible()
    expect(alice.locator('#room-list li[data-room="lobby"] .count')).to_have_text("2")
    expect(room_log(alice, "lobby")).to_contain_text("bob joined.")

    say(alice, "Hello bob, welcome to the lobby")
    expect(room_log(bob, "lobby").locator("li.msg", has_text="Hello bob")).to_contain_text(
        "alice")
    say(bob, "Hi alice! Nice and quiet here.")
    message = room_log(alice, "lobby").locator("li.msg", has_text="Nice and quiet")
    expect(message).to_contain_text("bob")
    # The sender sees its own message once, marked as its own.
    expect(room_log(alice, "lobby").locator("li.msg.mine")).to_have_count(1)
    expect(room_log(bob, "lobby").locator("li.msg")).to_have_count(2)

    # bob's page closes: the browser closes its WebSocket, the server tells alice.
    bob.context.close()
    expect(alice.locator('#people-list li[data-user="bob"]')).to_have_count(0)
    expect(room_log(alice, "lobby")).to_contain_text("bob left.")
    expect(alice.locator('#room-list li[data-room="lobby"] .count')).to_have_text("1")


def test_private_message_from_the_presence_list(chat: ChatServerThread, pages: Pages) -> None:
    carol = pages.open(chat.base_url)
    sign_in(carol, "carol")
    dave = pages.open(chat.base_url)
    sign_in(dave, "dave")

    dave.get_by_role("button", name="Message carol").click()
    expect(dave.locator("#conv-title")).to_have_text("@ carol")
    expect(dave.locator("#composer-input")).to_be_focused()
    dave.keyboard.type("psst, carol: lunch at noon?")
    dave.keyboard.press("Enter")
    expect(dave.get_by_role("log", name="Conversation with carol")).to_contain_text("delivered")

    toast = carol.locator("#toasts .toast", has_text="Private message from dave")
    expect(toast).to_contain_text("lunch at noon?")
    entry = carol.locator('#dm-list li[data-user="dave"]')
    expect(entry.locator(".badge")).to_have_text("1")
    expect(carol).to_have_title("(1) rawws chat")
    entry.get_by_role("button").click()
    expect(carol.get_by_role("log", name="Conversation with dave")).to_contain_text(
        "lunch at noon?")
    expect(entry.locator(".badge")).to_have_count(0)
    expect(carol).to_have_title("rawws chat")


def test_room_directory_join_with_history_leave_and_sign_out(chat: ChatServerThread,
                                                            pages: Pages) -> None:
    # A room that exists only through the HTTP API: history, no members.
    status, _, body = http("POST", f"{chat.base_url}/api/rooms/announcements/messages",
                           {"content": "Office closed on Friday", "user_id": "hr"})
    assert status == 200, body
    page = pages.open(chat.base_url)
    sign_in(page, "oscar")
    entry = page.locator('#room-list li[data-room="announcements"]')
    expect(entry.locator(".count")).to_have_text("0")
    entry.get_by_role("button", name="Join announcements").click()
    expect(page.locator("#conv-title")).to_have_text("# announcements")
    log = room_log(page, "announcements")
    expect(log.locator("li.msg.history", has_text="Office closed on Friday")).to_contain_text("hr")
    expect(log).to_contain_text("Earlier messages")
    expect(entry.locator(".count")).to_have_text("1")
    expect(entry).to_have_class(re.compile(r"\bjoined\b"))

    page.get_by_role("button", name="Leave room").click()
    expect(page.locator('#room-list li.joined[data-room="announcements"]')).to_have_count(0)
    expect(page.locator("#conv-title")).to_have_text("# lobby")
    expect(entry.get_by_role("button", name="Join announcements")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("#status")).to_have_attribute("data-state", "idle")
    sign_in(page, "oscar2")
    expect(page.locator("#me-name")).to_have_text("oscar2")
    expect(page.locator("#conn-reconnects")).to_have_text("0")


def test_notify_api_shows_a_toast_and_a_list_entry(chat: ChatServerThread,
                                                    pages: Pages) -> None:
    erin = pages.open(chat.base_url)
    sign_in(erin, "erin")
    status, _, body = http("POST", f"{chat.base_url}/api/notify/erin",
                           {"message": "Your build passed"})
    assert (status, body) == (200, {"status": "sent", "recipients": 1})
    toast = erin.locator("#toasts .toast", has_text="Your build passed")
    expect(toast).to_be_visible()
    expect(toast).to_have_attribute("data-kind", "notify")
    item = erin.locator("#notif-list li", has_text="Your build passed")
    expect(item.locator(".tag.personal")).to_have_text("for you")
    expect(item.locator(".tag.offline")).to_have_count(0)
    expect(erin.locator("#notif-count")).to_have_text("1")


def test_topic_notifications_with_wildcards(chat: ChatServerThread, pages: Pages) -> None:
    frank = pages.open(chat.base_url)
    sign_in(frank, "frank")
    for pattern in ("news.*", "stock.#"):
        frank.get_by_label("Follow a topic").fill(pattern)
        frank.get_by_label("Follow a topic").press("Enter")
        expect(frank.locator(f'#topic-list li[data-topic="{pattern}"]')).not_to_have_class(
            "chip pending")

    # Published in this order; the server and the page keep it, so once the last has arrived
    # the one that matches no subscription would have arrived before it, had it matched.
    for topic, text in [("news.sports.late", "not for news.*"), ("news.sports", "Match starts"),
                        ("stock.us.AAPL", "AAPL up 2%"), ("weather", "Rain at 5")]:
        status, _, body = http("POST", f"{chat.base_url}/api/publish/{topic}", {"message": text})
        assert status == 200, body
    http("POST", f"{chat.base_url}/api/notify/frank", {"message": "end of batch"})

    expect(frank.locator("#notif-list li", has_text="end of batch")).to_be_visible()
    expect(frank.locator('#notif-list li[data-topic="news.sports"]')).to_contain_text(
        "Match starts")
    expect(frank.locator('#notif-list li[data-topic="stock.us.AAPL"]')).to_contain_text(
        "AAPL up 2%")
    expect(frank.locator("#toasts .toast", has_text="Match starts")).to_contain_text(
        "news.sports")
    expect(frank.locator("#notif-list li")).to_have_count(3)

    # Publishing from the page reaches the page's own wildcard subscription.
    frank.get_by_text("Publish to a topic").click()
    frank.get_by_label("Topic", exact=True).fill("news.local")
    frank.get_by_label("Message", exact=True).fill("Market opens at nine")
    frank.get_by_role("button", name="Publish").click()
    expect(frank.locator('#notif-list li[data-topic="news.local"]')).to_contain_text(
        "Market opens at nine")
    expect(frank.locator("#toasts .toast", has_text="Published to news.local")).to_contain_text(
        "1 subscriber")


def test_items_queued_while_offline_are_marked_on_sign_in(chat: ChatServerThread,
                                                          pages: Pages) -> None:
    grace = pages.open(chat.base_url)
    sign_in(grace, "grace")
    heidi = pages.open(chat.base_url)
    sign_in(heidi, "heidi")
    heidi.get_by_role("button", name="Message grace").click()
    grace.context.close()
    expect(room_log(heidi, "lobby")).to_contain_text("grace left.")

    # grace is offline now: a private message and a notification wait in her inbox.
    say(heidi, "Read this when you are back")
    expect(heidi.get_by_role("log", name="Conversation with grace")).to_contain_text(
        "queued: grace is offline")
    status, _, body = http("POST", f"{chat.base_url}/api/notify/grace",
                           {"message": {"title": "Invoice", "body": "due Friday"}})
    assert status == 200
    assert {k: body[k] for k in ("status", "recipients")} == {"status": "queued", "recipients": 0}
    assert body["message_id"]  # the store's id for the queued item (issue 15)

    grace = pages.open(chat.base_url)
    sign_in(grace, "grace")
    item = grace.locator("#notif-list li", has_text="Invoice: due Friday")
    expect(item.locator(".tag.offline")).to_have_text("offline")
    expect(grace.locator("#toasts .toast", has_text="Private message from heidi")).to_contain_text(
        "offline")
    expect(grace.locator("#toasts .toast", has_text="While you were away")).to_contain_text(
        "2 items")
    grace.locator('#dm-list li[data-user="heidi"] button').click()
    log = grace.get_by_role("log", name="Conversation with heidi")
    expect(log.locator("li.msg", has_text="Read this when you are back")
           .locator(".tag.offline")).to_be_visible()

    # Shown, so acknowledged by the page (issue 15): the inbox is empty, and the next
    # sign-in gets nothing again.
    assert chat.server is not None
    store = chat.server.store
    for _ in range(500):  # polled: the acks travel on the page's WebSocket (hang guard: 10 s)
        if chat.call(store.inbox_count) == 0:
            break
        grace.wait_for_timeout(20)
    assert chat.call(store.inbox_count) == 0

    # Live items after sign-in are not marked.
    http("POST", f"{chat.base_url}/api/notify/grace", {"message": "live one"})
    expect(grace.locator("#notif-list li", has_text="live one")).to_be_visible()
    expect(grace.locator("#notif-list li", has_text="live one").locator(".tag.offline")
           ).to_have_count(0)


def test_chromium_negotiates_permessage_deflate_and_the_page_shows_it(
        chat: ChatServerThread, pages: Pages) -> None:
    ivan = pages.open(chat.base_url)
    sign_in(ivan, "ivan")
    expect(ivan.locator("#conn-extensions")).to_contain_text("permessage-deflate")
    extensions = ivan.evaluate("window.rawwsChat.extensions")
    assert "permessage-deflate" in extensions
    # Without context takeover on the server's side: compressed once per fan-out group.
    assert "server_no_context_takeover" in extensions
    assert "client_no_context_takeover" in extensions
    expect(ivan.locator("#conn-extensions")).to_contain_text("server_no_context_takeover")
    expect(ivan.locator("#conn-url")).to_have_text(
        f"ws://127.0.0.1:{chat.port}/ws?user_id=ivan")
    expect(ivan.locator("#conn-state")).to_have_text("Connected")
    # A compressed round trip through the room.
    say(ivan, "squeeze " * 200)
    expect(room_log(ivan, "lobby").locator("li.msg.mine", has_text="squeeze squeeze")
           ).to_be_visible()


def test_page_is_served_with_strict_headers_and_runs_under_them(chat: ChatServerThread,
                                                                pages: Pages) -> None:
    page = pages.open(chat.base_url)
    response = page.goto(chat.base_url + "/")
    assert response is not None and response.status == 200
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert f"ws://127.0.0.1:{chat.port}" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-type"].startswith("text/html")
    for asset in ("app.js", "style.css"):
        status, head, _ = http("GET", f"{chat.base_url}/static/{asset}")
        assert status == 200
        assert head["X-Content-Type-Options"] == "nosniff"
    # The script ran (it exposes a read-only view) and the page works under that policy; any
    # CSP violation reported by Chromium fails the test (the `pages` fixture).
    sign_in(page, "judy")
    assert page.evaluate("typeof window.rawwsChat") == "object"


def test_keyboard_only_and_every_control_labelled(chat: ChatServerThread, pages: Pages) -> None:
    page = pages.open(chat.base_url)
    # The name field has focus on load; Enter submits the form.
    expect(page.locator("#signin-name")).to_be_focused()
    page.keyboard.type("kim")
    page.keyboard.press("Enter")
    page.locator('#room-list li.joined[data-room="lobby"]').wait_for()
    # Once in the room the message box has focus: type, Enter sends.
    expect(page.locator("#composer-input")).to_be_focused()
    page.keyboard.type("typed without a mouse")
    page.keyboard.press("Enter")
    expect(room_log(page, "lobby").locator("li.msg.mine")).to_contain_text(
        "typed without a mouse")
    # Tab reaches the Send button next; the skip link (first in the page) leads back.
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send")).to_be_focused()
    page.locator(".skip-link").focus()
    expect(page.locator(".skip-link")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("#composer-input")).to_be_focused()
    unlabelled = page.evaluate("""() => [...document.querySelectorAll(
        'input, textarea, select, button')].filter((el) => {
          const name = el.labels && el.labels.length ? el.labels[0].textContent.trim()
                     : (el.getAttribute('aria-label') || el.textContent).trim();
          return !name;
        }).map((el) => el.id || el.outerHTML.slice(0, 60))""")
    assert unlabelled == []
    assert page.evaluate("document.querySelectorAll('[aria-live]').length") >= 3


def test_screenshots_desktop_and_narrow(chat: ChatServerThread, pages: Pages,
                                        artifacts: Callable[[str], Path]) -> None:
    mallory = pages.open(chat.base_url)
    sign_in(mallory, "mallory", room="design")
    niaj = pages.open(chat.base_url)
    sign_in(niaj, "niaj", room="design")
    mallory.get_by_label("Follow a topic").fill("deploy.#")
    mallory.get_by_label("Follow a topic").press("Enter")
    say(niaj, "Morning! The new build is on staging.")
    say(mallory, "Great, I will have a look after standup.")
    say(niaj, "Thanks. Ping me here if anything looks off.")
    http("POST", f"{chat.base_url}/api/publish/deploy.staging.web",
         {"message": "web 1.4.2 deployed to staging"})
    expect(mallory.locator("#notif-list li")).to_have_count(1)
    expect(room_log(mallory, "design").locator("li.msg")).to_have_count(3)
    mallory.locator("#notif-list").hover()  # marks the notifications read
    expect(mallory.locator("#notif-count")).to_be_hidden()

    desktop = artifacts("page-desktop.png")
    mallory.screenshot(path=str(desktop), animations="disabled")
    mallory.set_viewport_size(NARROW)
    # Readable on a narrow screen: nothing wider than the viewport.
    assert mallory.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth + 1"), "horizontal scroll"
    narrow = artifacts("page-narrow.png")
    mallory.screenshot(path=str(narrow), animations="disabled", full_page=True)
    assert desktop.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert narrow.stat().st_size > 10_000
    # RAWWS_UPDATE_SCREENSHOT=1 refreshes the committed copy used by the README.
    if os.environ.get("RAWWS_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(desktop, DOCS_SCREENSHOT)
