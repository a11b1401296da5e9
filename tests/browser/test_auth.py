"""Sign-in with a token on a server with auth on: the identity comes from the token, the token
travels in the first message (never in the URL), refused tokens come back to the form with the
close code and its meaning (4001 expired, 4002 invalid, 1008 no token), and a token's room
claim turns a join elsewhere into a visible ``forbidden`` error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from rawws.chat.auth import encode_jwt
from rawws.chat.limits import Limits
from rawws.chat.server import ChatConfig

from .conftest import Pages
from .helpers import ChatServerThread, room_log, sign_in

pytestmark = pytest.mark.timeout(120)

SECRET = "browser-test-secret"


@pytest.fixture(scope="module")
def chat(browser: object) -> Iterator[ChatServerThread]:
    server = ChatServerThread(ChatConfig(
        host="127.0.0.1", port=0, jwt_secret=SECRET, jwt_leeway=0.0,
        static_tokens={"tok-peggy-0123456789": "peggy"}, limits=Limits(auth_timeout=1.0)))
    server.start()
    try:
        yield server
    finally:
        server.close()


def expect(target: object) -> object:
    from playwright.sync_api import expect as playwright_expect
    return playwright_expect(target)  # type: ignore[call-overload]


def submit(page: object, name: str, token: str) -> None:
    page.get_by_label("Name", exact=True).fill(name)  # type: ignore[attr-defined]
    page.get_by_label("Token").fill(token)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]


def test_jwt_sign_in_uses_the_token_identity_and_its_room_claims(chat: ChatServerThread,
                                                                 pages: Pages) -> None:
    token = encode_jwt({"sub": "olivia", "exp": time.time() + 3600,
                        "rooms": ["lobby", "team.*"]}, SECRET)
    page = pages.open(chat.base_url)
    # The name typed is ignored with auth on: the token says who this is.
    sign_in(page, "someone-else", token=token, expect_user="olivia")
    expect(page.locator("#conn-url")).to_have_text(f"ws://127.0.0.1:{chat.port}/ws"
                                                   "?user_id=someone-else")
    assert token not in page.locator("#conn-url").inner_text()

    page.get_by_label("Join a room").fill("team.red")
    page.get_by_label("Join a room").press("Enter")
    expect(page.locator('#room-list li.joined[data-room="team.red"]')).to_be_visible()

    page.get_by_label("Join a room").fill("secret")
    page.get_by_label("Join a room").press("Enter")
    toast = page.locator("#toasts .toast[role=alert]", has_text="Not allowed (forbidden)")
    expect(toast).to_contain_text("does not allow room 'secret'")
    expect(page.locator('#room-list li[data-room="secret"]')).to_have_count(0)
    expect(room_log(page, "team.red")).to_contain_text("Not allowed (forbidden)")


def test_static_token(chat: ChatServerThread, pages: Pages) -> None:
    page = pages.open(chat.base_url)
    sign_in(page, "", token="tok-peggy-0123456789", expect_user="peggy")
    expect(page.locator("#status")).to_have_attribute("data-state", "online")


def test_invalid_token_returns_to_the_form_with_4002(chat: ChatServerThread,
                                                     pages: Pages) -> None:
    page = pages.open(chat.base_url)
    submit(page, "", encode_jwt({"sub": "trudy"}, "not-the-secret"))
    error = page.locator("#signin-error")
    expect(error).to_contain_text("4002 invalid token")
    expect(error).to_contain_text("bad signature")
    expect(error).to_contain_text("check it and sign in again")
    expect(page.locator("#app-view")).to_be_hidden()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_expired_token_returns_to_the_form_with_4001(chat: ChatServerThread,
                                                     pages: Pages) -> None:
    page = pages.open(chat.base_url)
    submit(page, "", encode_jwt({"sub": "victor", "exp": time.time() - 60}, SECRET))
    error = page.locator("#signin-error")
    expect(error).to_contain_text("4001 token expired")
    expect(error).to_contain_text("sign in with a fresh one")


def test_no_token_on_an_auth_server_says_a_token_is_required(chat: ChatServerThread,
                                                             pages: Pages) -> None:
    page = pages.open(chat.base_url)
    page.get_by_label("Name", exact=True).fill("walter")
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#signin-error")
    expect(error).to_contain_text("1008 policy violation")
    expect(error).to_contain_text("This server requires a token.")
