"""Support for the real-browser tests: a chat server on its own thread, HTTP calls, page steps.

The chat server runs on an asyncio loop in a background thread, so the synchronous Playwright
API can drive Chromium from the test's thread. Nothing here is timed: every wait is for a DOM
state or a server state, with a generous bound that only guards against hangs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from rawws.chat.server import ChatConfig, ChatServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

HOST = "127.0.0.1"
#: Upper bound of any single wait (a hang guard, not a performance assertion).
BOUND_MS = 30_000
BOUND = BOUND_MS / 1000

T = TypeVar("T")


class ChatServerThread:
    """A :class:`ChatServer` on 127.0.0.1 run by an event loop on a daemon thread.

    ``restart()`` stops it (every connection gets 1001) and starts a fresh one, with a fresh
    in-memory store, on the same port.
    """

    def __init__(self, config: ChatConfig) -> None:
        if config.host != HOST:
            raise ValueError("browser tests bind 127.0.0.1 only")
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chat-server",
                                       daemon=True)
        self.thread.start()
        self.server: ChatServer | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(BOUND)

    def call(self, function: Callable[[], T]) -> T:
        """Run ``function()`` on the server's loop thread (where the hub may be touched)."""
        async def job() -> T:
            return function()
        return self.run(job())

    def start(self, prepare: Callable[[ChatServer], object] | None = None) -> ChatServerThread:
        """Start a server; ``prepare(server)`` runs on its loop before it listens."""
        async def start() -> ChatServer:
            server = ChatServer(self.config)
            if prepare is not None:
                prepare(server)
            return await server.start()
        self.server = self.run(start())
        if self.config.port == 0:
            self.config = dataclasses.replace(self.config, port=self.server.port)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.run(self.server.close())
            self.server = None

    def restart(self, prepare: Callable[[ChatServer], object] | None = None) -> None:
        self.stop()
        self.start(prepare)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(BOUND)
            self.loop.close()

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def chat(self) -> ChatServer:
        assert self.server is not None, "the server is stopped"
        return self.server


def http(method: str, url: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """One HTTP request; returns (status, headers, decoded JSON body or text)."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=BOUND) as response:
            status, raw, head = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, raw, head = exc.code, exc.read(), dict(exc.headers)
    text = raw.decode("utf-8", "replace")
    try:
        return status, head, json.loads(text)
    except ValueError:
        return status, head, text


def raw_handshake(port: int, origin: str | None, path: str = "/ws?user_id=probe") -> str:
    """Send an upgrade request by hand and return the status line of the answer."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             "Sec-WebSocket-Version: 13"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    with socket.create_connection((HOST, port), timeout=BOUND) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return head.split(b"\r\n", 1)[0].decode("latin-1")


# --- page steps --------------------------------------------------------------------------------


def sign_in(page: Page, name: str = "", *, room: str = "lobby", token: str = "",
            expect_user: str | None = None) -> None:
    """Fill the sign-in form like a person and wait until the page is in ``room``."""
    page.get_by_label("Name", exact=True).fill(name)
    if token:
        page.get_by_label("Token").fill(token)
    page.get_by_label("Room to join").fill(room)
    page.get_by_role("button", name="Sign in").click()
    user = expect_user or name
    page.locator("#me-name").filter(has_text=user).wait_for(timeout=BOUND_MS)
    if room:
        page.locator(f'#room-list li.joined[data-room="{room}"]').wait_for(timeout=BOUND_MS)


def room_log(page: Page, room: str) -> Any:
    """The message list of ``room`` (a ``role=log`` list; found even while another
    conversation is shown)."""
    return page.locator(f'ol[role="log"][aria-label="Messages in {room}"]')


def say(page: Page, text: str) -> None:
    """Type into the message box and press Enter."""
    box = page.locator("#composer-input")
    box.fill(text)
    box.press("Enter")
