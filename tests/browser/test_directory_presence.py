"""The room list and online status come over the WebSocket (`rooms`, `presence`): the page shows
the room directory on a server whose HTTP API needs a key it does not have, and shows whether a
private-message partner is online, following them as they come and go.

The server runs with its defaults (so permessage-deflate, negotiated without context takeover)
plus an API key.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rawws.chat.server import ChatConfig

from .conftest import Pages
from .helpers import ChatServerThread, http, room_log, say, sign_in

pytestmark = pytest.mark.timeout(120)

KEY = "browser-api-key"


@pytest.fixture(scope="module")
def chat(browser: object) -> Iterator[ChatServerThread]:
    server = ChatServerThread(ChatConfig(host="127.0.0.1", port=0, api_key=KEY))
    server.start()
    try:
        yield server
    finally:
        server.close()


def expect(target: object) -> object:
    from playwright.sync_api import expect as playwright_expect
    return playwright_expect(target)  # type: ignore[call-overload]


def test_room_directory_without_the_api_key(chat: ChatServerThread, pages: Pages) -> None:
    # Without the key the HTTP list is refused; the page does not need it.
    status, _, _ = http("GET", f"{chat.base_url}/api/rooms")
    assert status == 401
    status, _, body = http("POST", f"{chat.base_url}/api/rooms/releases/messages",
                           {"content": "1.4 is out", "user_id": "ci"},
                           {"Authorization": f"Bearer {KEY}"})
    assert status == 200, body
    walt = pages.open(chat.base_url)
    sign_in(walt, "walt", room="ops")
    xena = pages.open(chat.base_url)
    sign_in(xena, "xena", room="ops")
    entry = walt.locator('#room-list li[data-room="releases"]')
    expect(entry.locator(".count")).to_have_text("0")
    expect(walt.locator('#room-list li[data-room="ops"] .count')).to_have_text("2")
    expect(walt.locator("#room-dir-note")).to_be_hidden()
    # A room someone else creates shows up after the page's next refresh (it refreshes after
    # its own joins and leaves, and every 15 s): join and leave one to trigger it.
    xena.get_by_label("Join a room").fill("standup")
    xena.get_by_label("Join a room").press("Enter")
    expect(xena.locator('#room-list li.joined[data-room="standup"]')).to_be_visible()
    walt.get_by_label("Join a room").fill("scratch")
    walt.get_by_label("Join a room").press("Enter")
    expect(walt.locator('#room-list li.joined[data-room="scratch"]')).to_be_visible()
    expect(walt.locator('#room-list li[data-room="standup"] .count')).to_have_text("1")
    entry.get_by_role("button", name="Join releases").click()
    expect(room_log(walt, "releases").locator("li.msg.history")).to_contain_text("1.4 is out")


def test_private_partner_online_status(chat: ChatServerThread, pages: Pages) -> None:
    yara = pages.open(chat.base_url)
    sign_in(yara, "yara")
    zack = pages.open(chat.base_url)
    sign_in(zack, "zack")
    yara.get_by_role("button", name="Message zack").click()
    entry = yara.locator('#dm-list li[data-user="zack"]')
    expect(entry).to_have_attribute("data-online", "true")
    expect(yara.locator("#conv-sub")).to_have_text("Online now")
    expect(entry.get_by_role("button")).to_have_attribute(
        "aria-label", "Conversation with zack, online")

    # zack's page closes: his last connection is gone; yara's page sees him leave the lobby
    # and asks the server.
    zack.context.close()
    expect(entry).to_have_attribute("data-online", "false")
    expect(yara.locator("#conv-sub")).to_contain_text("Offline")
    say(yara, "see you tomorrow")
    expect(yara.get_by_role("log", name="Conversation with zack")).to_contain_text(
        "queued: zack is offline")

    # He comes back: his arrival in the lobby marks him online again.
    zack = pages.open(chat.base_url)
    sign_in(zack, "zack")
    expect(entry).to_have_attribute("data-online", "true")
    expect(yara.locator("#conv-sub")).to_have_text("Online now")
    # What waited for him is marked offline on his side; the live reply on hers is not.
    item = zack.locator('#dm-list li[data-user="yara"]')
    item.get_by_role("button").click()
    log = zack.get_by_role("log", name="Conversation with yara")
    expect(log.locator("li.msg", has_text="see you tomorrow").locator(".tag.offline")
           ).to_be_visible()
    expect(item).to_have_attribute("data-online", "true")  # yara is online
    say(zack, "morning!")
    yara_log = yara.get_by_role("log", name="Conversation with zack")
    expect(yara_log.locator("li.msg", has_text="morning!")).to_be_visible()
    expect(yara_log.locator("li.msg", has_text="morning!").locator(".tag.offline")
           ).to_have_count(0)
