"""A page from another origin cannot open a WebSocket to the chat server: the handshake is
refused with 403 (the server checks ``Origin`` against the page's own origin by default).

The foreign page is served by a second local HTTP server (another port on 127.0.0.1 is another
origin); Chromium's own attempt is refused, and a raw handshake shows the 403 itself.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rawws.chat.server import ChatConfig

from .conftest import Pages
from .helpers import HOST, ChatServerThread, raw_handshake

pytestmark = pytest.mark.timeout(120)

FOREIGN_PAGE = b"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>another site</title></head><body><p>Another site, trying to ride your session.</p>
</body></html>"""

# Opens a WebSocket and reports how it ended: "open" (then closes it) or the close code.
TRY_WEBSOCKET = """(url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onopen = () => { ws.close(1000); resolve({ opened: true, code: null }); };
  ws.onclose = (event) => resolve({ opened: false, code: event.code });
})"""


@pytest.fixture(scope="module")
def chat() -> Iterator[ChatServerThread]:
    server = ChatServerThread(ChatConfig(host="127.0.0.1", port=0))
    server.start()
    try:
        yield server
    finally:
        server.close()


class _ForeignHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(FOREIGN_PAGE)))
        self.end_headers()
        self.wfile.write(FOREIGN_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def foreign_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer((HOST, 0), _ForeignHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def origin_rejections(chat: ChatServerThread) -> int:
    return chat.call(lambda: chat.chat.metrics.handshake_rejections["origin"])


def test_a_page_from_another_origin_is_refused(chat: ChatServerThread, foreign_site: str,
                                               pages: Pages) -> None:
    ws_url = f"ws://{HOST}:{chat.port}/ws?user_id=mallory"
    before = origin_rejections(chat)

    page = pages.open(foreign_site + "/")
    assert page.evaluate("location.origin") == foreign_site
    result = page.evaluate(TRY_WEBSOCKET, ws_url)
    # A browser reports only "closed before opening" (1006); the server counted why.
    assert result == {"opened": False, "code": 1006}
    assert origin_rejections(chat) == before + 1

    # The same attempt from the chat server's own page succeeds.
    own = pages.open(chat.base_url + "/")
    assert own.evaluate(TRY_WEBSOCKET, ws_url) == {"opened": True, "code": None}
    assert origin_rejections(chat) == before + 1


def test_raw_handshake_with_a_foreign_origin_gets_403(chat: ChatServerThread) -> None:
    assert raw_handshake(chat.port, "http://evil.example").startswith("HTTP/1.1 403")
    assert raw_handshake(chat.port, f"http://{HOST}:{chat.port + 1}").startswith("HTTP/1.1 403")
    assert raw_handshake(chat.port, f"http://{HOST}:{chat.port}").startswith("HTTP/1.1 101")
    # Clients that send no Origin (not browsers) are not affected.
    assert raw_handshake(chat.port, None).startswith("HTTP/1.1 101")
