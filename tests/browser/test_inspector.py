"""The live frame inspector in a real Chromium: the /inspect page and the demo page's Frames
panel show the frames of the browser's own connection as the server decodes them, under the
page's strict Content-Security-Policy (the fixtures fail a test on any CSP violation)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from rawws.chat.server import ChatConfig

from .conftest import Pages
from .helpers import ChatServerThread, say, sign_in

pytestmark = pytest.mark.timeout(120)


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


def test_a_sent_chat_message_appears_as_a_text_frame_with_its_length(
        chat: ChatServerThread, pages: Pages) -> None:
    page = pages.open(chat.base_url + "/inspect")
    page.get_by_label("Name").fill("inspecta")
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#inspect-status")).to_contain_text("Connected as inspecta")
    content = "Hello from the inspector page, " + "a long enough message " * 8
    page.get_by_label("Message").fill(content)
    page.get_by_role("button", name="Send").click()

    sent = json.dumps({"type": "message", "room": "lobby", "content": content},
                      separators=(",", ":")).encode()
    # The browser's frame: masked, TEXT, and (Chromium negotiates permessage-deflate) sent
    # compressed: its length is the compressed size, its inflated size the JSON's.
    row = page.locator(f'#inspect-table tr.c2s[data-opcode="TEXT"][data-size="{len(sent)}"]')
    expect(row).to_have_count(1)
    length = int(row.get_attribute("data-length") or 0)
    assert 0 < length < len(sent)
    expect(row.locator("td.mask")).to_have_text(__import__("re").compile(r"^[0-9a-f]{8}$"))
    expect(row.locator("td.size")).to_have_text(f"{length} → {len(sent)}")
    expect(row.locator("td.preview")).to_contain_text('{"type":"message"')
    # The server's echo to the room comes back as a frame of this connection too.
    expect(page.locator('#inspect-table tr.s2c[data-opcode="TEXT"]').filter(
        has_text='"type":"message"')).to_have_count(1)
    # The report frames themselves are counted, never listed.
    expect(page.locator("#inspect-page .inspect-note")).to_contain_text("report frames not shown")
    extensions = chat.call(lambda: [str(e) for c in chat.server.server.connections  # type: ignore[union-attr]
                                    for e in c.extensions])
    assert any("permessage-deflate" in e for e in extensions)


def test_the_demo_page_panel_shows_my_frames_and_only_mine(chat: ChatServerThread,
                                                           pages: Pages) -> None:
    alice = pages.open(chat.base_url)
    sign_in(alice, "panel-alice")
    bob = pages.open(chat.base_url)
    sign_in(bob, "panel-bob")

    alice.get_by_label("Show my connection's frames").check()
    expect(alice.locator("#frames-body")).to_be_visible()
    alice.locator('#room-list li.joined[data-room="lobby"]').wait_for()
    say(alice, "seen by me")
    rows = alice.locator('#frames-table tr.c2s[data-opcode="TEXT"]').filter(
        has_text="seen by me")
    expect(rows).to_have_count(1)
    # Bob did not ask: his connection is not traced and his page shows nothing.
    expect(bob.locator("#frames-body")).to_be_hidden()
    assert bob.locator("#frames-table tbody tr").count() == 0
    traced = chat.call(lambda: sorted(
        (c.request.target if c.request else "", c.protocol.tracer is not None)
        for c in chat.server.server.connections))  # type: ignore[union-attr]
    assert [t for _, t in traced] .count(True) == 1
    assert any("inspect=1" in target and on for target, on in traced)
