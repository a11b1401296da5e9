"""The page reconnects by itself: after the server drops its connection (and then recovers, with
``since``, the room messages sent while it was away) and across a server restart on the same
port (the in-memory store starts empty, so there is nothing to recover; the page says so).

Nothing is timed: the tests wait for DOM states (the reconnect counter, messages) with generous
bounds; the page's backoff starts at half a second.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from rawws.chat.router import Answer
from rawws.chat.server import ChatConfig, ChatServer

from .conftest import Pages
from .helpers import ChatServerThread, http, room_log, say, sign_in

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def chat(browser: object) -> Iterator[ChatServerThread]:
    server = ChatServerThread(ChatConfig(host="127.0.0.1", port=0, compression="deflate"))
    server.start()
    try:
        yield server
    finally:
        server.close()


def expect(target: object) -> object:
    from playwright.sync_api import expect as playwright_expect
    return playwright_expect(target)  # type: ignore[call-overload]


def test_dropped_connection_reconnects_and_recovers_missed_messages(
        chat: ChatServerThread, pages: Pages) -> None:
    alice = pages.open(chat.base_url)
    sign_in(alice, "alice")
    bob = pages.open(chat.base_url)
    sign_in(bob, "bob")
    say(bob, "before the drop")
    expect(room_log(alice, "lobby").locator("li.msg", has_text="before the drop")).to_be_visible()
    alice.get_by_label("Follow a topic").fill("alerts.#")
    alice.get_by_label("Follow a topic").press("Enter")
    expect(alice.locator('#topic-list li[data-topic="alerts.#"]')).to_have_class("chip")

    # In one step on the server's loop: close alice's connection (1012), then post three room
    # messages. alice's session is already closing, so they reach bob but not alice.
    def drop_alice_and_post() -> None:
        hub = chat.chat.hub
        for peer in list(hub.peers):
            if peer.session is not None and peer.session.user == "alice":
                hub.close_peer(peer, 1012, "dropped by the test")
        for n in (1, 2, 3):
            response = chat.chat.api.handle("POST", "/api/rooms/lobby/messages", {},
                                            f'{{"content": "missed {n}", "user_id": "carol"}}'
                                            .encode())
            assert response.status == 200, response.body

    chat.call(drop_alice_and_post)
    expect(room_log(bob, "lobby").locator("li.msg", has_text="missed 3")).to_be_visible()

    # alice's page reconnects by itself, re-joins with `since` and shows each missed message
    # once, in order.
    expect(alice.locator("#conn-reconnects")).to_have_text("1")
    log = room_log(alice, "lobby")
    expect(log).to_contain_text("3 missed messages recovered")
    for n in (1, 2, 3):
        expect(log.locator("li.msg", has_text=f"missed {n}")).to_have_count(1)
    seqs = log.locator("li.msg").evaluate_all("items => items.map((li) => +li.dataset.seq)")
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), seqs
    expect(log.locator("li.msg", has_text="before the drop")).to_have_count(1)
    expect(alice.locator("#conn-last-close")).to_contain_text(
        "1012 service restart — “dropped by the test”")
    expect(alice.locator("#status")).to_have_attribute("data-state", "online")

    # Its topic subscription came back too, and the room works both ways again.
    http("POST", f"{chat.base_url}/api/publish/alerts.disk.full", {"message": "disk 91%"})
    expect(alice.locator('#notif-list li[data-topic="alerts.disk.full"]')).to_be_visible()
    say(alice, "back again")
    expect(room_log(bob, "lobby").locator("li.msg", has_text="back again")).to_be_visible()


def test_page_reconnects_by_itself_after_a_server_restart(chat: ChatServerThread,
                                                          pages: Pages) -> None:
    dave = pages.open(chat.base_url)
    sign_in(dave, "dave", room="ops")
    erin = pages.open(chat.base_url)
    sign_in(erin, "erin", room="ops")
    say(dave, "restarting the server now")
    expect(room_log(erin, "ops").locator("li.msg", has_text="restarting")).to_be_visible()

    chat.restart()  # every connection gets 1001; a new server (empty store) on the same port

    for page in (dave, erin):
        expect(page.locator("#conn-reconnects")).to_have_text("1")
        expect(page.locator("#status")).to_have_attribute("data-state", "online")
        expect(page.locator("#conn-last-close")).to_contain_text("1001 going away")
        expect(room_log(page, "ops")).to_contain_text("forgot this room’s history")
        expect(page.locator('#room-list li.joined[data-room="ops"]')).to_be_visible()
        # What was said before the restart is still on the page.
        expect(room_log(page, "ops").locator("li.msg", has_text="restarting")).to_have_count(1)
    expect(dave.locator('#people-list li[data-user="erin"]')).to_be_visible()

    say(erin, "hello from the other side")
    expect(room_log(dave, "ops").locator("li.msg", has_text="hello from the other side")
           ).to_be_visible()
    say(dave, "loud and clear")
    expect(room_log(erin, "ops").locator("li.msg", has_text="loud and clear")).to_be_visible()


def test_a_restarted_room_is_a_new_stream_even_when_it_has_more_messages_than_before(
        chat: ChatServerThread, pages: Pages) -> None:
    """The new server's room already has seqs 1 and 2 when the page comes back (its last seq
    seen was 1): only the stream epoch tells a lost history from one message missed. The page
    says so and shows both new messages (the seq-only page dropped the new seq 1)."""
    gina = pages.open(chat.base_url)
    sign_in(gina, "gina", room="epochs")
    say(gina, "the old stream")
    expect(room_log(gina, "epochs").locator("li.msg", has_text="the old stream")
           ).to_be_visible()

    def post_twice(server: ChatServer) -> None:
        for text in ("new one", "new two"):  # no one is connected yet: nobody to tell
            server.hub.execute(server.router.post("epochs", "api", text, Answer()))

    chat.restart(post_twice)
    expect(gina.locator("#status")).to_have_attribute("data-state", "online")
    log = room_log(gina, "epochs")
    expect(log).to_contain_text("forgot this room’s history")
    expect(log.locator("li.msg", has_text="new one")).to_have_count(1)
    expect(log.locator("li.msg", has_text="new two")).to_have_count(1)
    expect(log.locator("li.msg", has_text="the old stream")).to_have_count(1)


def test_a_long_missed_history_is_read_page_by_page(chat: ChatServerThread,
                                                     pages: Pages) -> None:
    """Replies are bounded (256 KiB): 100 missed messages of 8 KB do not fit in the `joined`
    reply, and the page reads the rest with `history` requests, each message once."""
    hana = pages.open(chat.base_url)
    sign_in(hana, "hana", room="pages")
    say(hana, "before")
    expect(room_log(hana, "pages").locator("li.msg", has_text="before")).to_be_visible()

    def drop_hana_and_post() -> None:
        hub = chat.chat.hub
        for peer in list(hub.peers):
            if peer.session is not None and peer.session.user == "hana":
                hub.close_peer(peer, 1012, "dropped by the test")
        for n in range(1, 101):
            body = json.dumps({"content": f"page {n:03d} " + "x" * 8000, "user_id": "ivan"})
            response = chat.chat.api.handle("POST", "/api/rooms/pages/messages", {},
                                            body.encode())
            assert response.status == 200, response.body

    chat.call(drop_hana_and_post)
    expect(hana.locator("#conn-reconnects")).to_have_text("1")
    log = room_log(hana, "pages")
    expect(log).to_contain_text("100 missed messages recovered")
    expect(log.locator("li.msg", has_text="page ")).to_have_count(100)
    seqs = log.locator("li.msg").evaluate_all("items => items.map((li) => +li.dataset.seq)")
    assert seqs == list(range(1, 102)), seqs


def test_page_keeps_retrying_while_the_server_is_down(chat: ChatServerThread,
                                                      pages: Pages) -> None:
    frank = pages.open(chat.base_url)
    sign_in(frank, "frank")
    chat.stop()
    try:
        status = frank.locator("#status")
        expect(status).to_have_attribute("data-state", "reconnecting")
        expect(status).to_contain_text("retrying in")
        expect(frank.get_by_role("button", name="Reconnect now")).to_be_visible()
        expect(frank.locator("#composer-input")).to_be_disabled()
        # At least one attempt failed while the server was away: the page says why.
        expect(status).to_contain_text("Cannot reach the server")
    finally:
        chat.start()
    # "Reconnect now" skips the rest of the backoff (if the page has not reconnected already).
    frank.evaluate("() => { const b = document.getElementById('retry-now');"
                   " if (!b.hidden) b.click(); }")
    expect(frank.locator("#conn-reconnects")).to_have_text("1")
    expect(frank.locator("#composer-input")).to_be_enabled()
