"""End to end: every response of ``rawws serve`` carries ``X-Content-Type-Options: nosniff``
and ``Cache-Control: no-store``, exactly once each (issue 11 item 14): the API's answers and
failures, the page and its files, /healthz, /metrics, the handshake refusals of the chat layer
and of the protocol layer underneath it."""

from __future__ import annotations

import asyncio

import pytest

from .e2e import WAIT, Limits, running

SECRET = "headers-test-secret-of-32-bytes-or-more"
KEY = "headers-test-api-key"


def upgrade(path: str, *extra: str, host: str = "127.0.0.1") -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             "Sec-WebSocket-Version: 13", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def plain(method: str, target: str, body: bytes = b"", *extra: str,
          host: str = "127.0.0.1") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *extra]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


#: name -> (request bytes, expected status). The chat layer builds these answers.
CHAT = {
    "page": (plain("GET", "/"), 200),
    "static file": (plain("GET", "/static/app.js"), 200),
    "missing static file": (plain("GET", "/static/nope.js"), 404),
    "healthz": (plain("GET", "/healthz"), 200),
    "metrics": (plain("GET", "/metrics"), 200),
    "api 200": (plain("GET", "/api/rooms", b"", f"Authorization: Bearer {KEY}"), 200),
    "api 401": (plain("GET", "/api/rooms"), 401),
    "api 403": (plain("GET", "/api/rooms", b"", "Authorization: Bearer wrong"), 403),
    "api 400": (plain("POST", "/api/broadcast", b"{nope", f"Authorization: Bearer {KEY}"),
                400),
    "api 405": (plain("DELETE", "/api/rooms"), 405),
    "api 404": (plain("GET", "/nope"), 404),
    "api 413": (plain("POST", "/api/broadcast", b'"' + b"x" * 20000 + b'"',
                      f"Authorization: Bearer {KEY}"), 413),
    "api 429": (plain("GET", "/api/rooms", b"", "Authorization: Bearer x"), 429),
    "host 421": (plain("GET", "/", host="evil.example"), 421),
    "upgrade 421": (upgrade("/ws", host="evil.example"), 421),
    "upgrade 404": (upgrade("/elsewhere"), 404),
    "upgrade 403 origin": (upgrade("/ws", "Origin: http://evil.example"), 403),
    "upgrade 503 per ip": (upgrade("/ws"), 503),
    "upgrade 101": (upgrade("/ws"), 101),
    # Refused by the protocol's handshake checks, after the chat layer's hook: the chat
    # server's process_response hook secures them.
    "upgrade 400 no key": (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket"
                           b"\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13"
                           b"\r\n\r\n", 400),
    "upgrade 426 wrong version": (upgrade("/ws").replace(b"Version: 13", b"Version: 8"), 426),
}
#: The protocol layer builds these (rawws.sansio / rawws.aio): core adds the headers there.
PROTOCOL = {
    "400 malformed request line": (b"GARBAGE\r\n\r\n", 400),
    "411 chunked body": (plain("POST", "/api/broadcast", b"", "Transfer-Encoding: chunked"),
                         411),
    "413 body over max_body_size": (b"POST /api/broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    b"Content-Length: 999999999\r\n\r\n", 413),
    "414 request line too long": (plain("GET", "/" + "a" * 9000), 414),
    "431 headers too large": (plain("GET", "/", b"", *[f"X-{i}: {'v' * 100}"
                                                       for i in range(2000)]), 431),
}


async def exchange(port: int, data: bytes) -> tuple[int, list[tuple[str, str]]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        async with asyncio.timeout(WAIT):
            head = await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(n.strip().lower(), v.strip()) for n, _, v in
               (line.partition(":") for line in lines if line)]
    return int(status_line.split()[1]), headers


def assert_secured(headers: list[tuple[str, str]]) -> None:
    assert [v for n, v in headers if n == "x-content-type-options"] == ["nosniff"], headers
    assert [v for n, v in headers if n == "cache-control"] == ["no-store"], headers


async def check(name: str, cases: dict[str, tuple[bytes, int]]) -> None:
    data, expected = cases[name]
    limits = Limits(http_rate=0.001, http_burst=1, max_connections_per_ip=1,
                    max_body_size=65536)
    async with running(jwt_secret=SECRET, api_key=KEY, limits=limits) as server:
        port = server.port
        held = None
        if name == "api 429":  # spend the burst first
            await exchange(port, plain("GET", "/api/rooms"))
        if name == "upgrade 503 per ip":  # hold the one connection this address may have
            held = await asyncio.open_connection("127.0.0.1", port)
            held[1].write(upgrade("/ws"))
            async with asyncio.timeout(WAIT):
                await held[0].readuntil(b"\r\n\r\n")
        status, headers = await exchange(port, data)
        assert status == expected, (name, status)
        assert_secured(headers)
        if held is not None:
            held[1].close()


@pytest.mark.parametrize("name", sorted(CHAT))
async def test_every_chat_response_carries_nosniff_and_no_store(name: str) -> None:
    await check(name, CHAT)


@pytest.mark.parametrize("name", sorted(PROTOCOL))
async def test_every_protocol_layer_response_carries_nosniff_and_no_store(name: str) -> None:
    await check(name, PROTOCOL)
