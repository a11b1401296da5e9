"""End to end: the Host check (421, DNS rebinding) on every kind of request, and
--trusted-proxy as the only way X-Forwarded-For is believed (issue 11 items 4 and 6)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

import rawws

from ..processes import raw_upgrade
from .e2e import WAIT, Limits, connect, recv, running

EVIL = "rebind.attacker.example"


async def http_as(port: int, method: str, target: str, *, host: str | None,
                  headers: Sequence[tuple[str, str]] = (),
                  body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly the Host header given (None: none at all)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"{method} {target} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines.extend(f"{k}: {v}" for k, v in headers)
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
    try:
        async with asyncio.timeout(WAIT):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), found, payload


TARGETS = [("GET", "/"), ("GET", "/static/app.js"), ("GET", "/healthz"), ("GET", "/metrics"),
           ("GET", "/api/rooms"), ("POST", "/api/broadcast"), ("GET", "/nope")]


@pytest.mark.parametrize(("method", "target"), TARGETS)
async def test_a_rebound_host_gets_421_on_http(method: str, target: str) -> None:
    async with running() as server:
        port = server.port
        # What the attacker's page would send once its name points at 127.0.0.1: its own Host,
        # and (same-origin to the browser) its own Origin.
        status, headers, payload = await http_as(
            port, method, target, host=f"{EVIL}:{port}",
            headers=[("Origin", f"http://{EVIL}:{port}")],
            body=b'"x"' if method == "POST" else None)
        assert status == 421
        assert json.loads(payload)["error"] == "misdirected"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
        assert EVIL.encode() not in payload  # not reflected
        # The real names still work.
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST."):
            status, _, _ = await http_as(port, "GET", "/healthz", host=host)
            assert status == 200, host
        assert server.metrics.http_requests[421] == 1


async def test_a_rebound_host_gets_421_on_the_upgrade() -> None:
    async with running() as server:
        port = server.port
        _, writer, head = await raw_upgrade(
            port, "/ws?user_id=victim", host=f"{EVIL}:{port}",
            headers=[("Origin", f"http://{EVIL}:{port}")])
        assert head.startswith(b"HTTP/1.1 421 "), head
        assert b"nosniff" in head and b"no-store" in head
        writer.close()
        assert server.metrics.handshake_rejections["host"] == 1
        assert server.router.sessions == {}
        # Before the fix the same request was same-origin (Origin == http:// + Host): accepted.
        ws = await connect(server, "/ws?user_id=alice")
        assert (await recv(ws))["type"] == "welcome"
        await ws.close()


@pytest.mark.parametrize("hosts", [None, ["a", "b"], ["a b"], [""]])
async def test_a_missing_repeated_or_invalid_host_is_400(hosts: list[str] | None) -> None:
    async with running() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        lines = ["GET /healthz HTTP/1.1", *(f"Host: {h}" for h in hosts or [])]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(WAIT):
            raw = await reader.read()
        writer.close()
        assert raw.startswith(b"HTTP/1.1 400 "), raw


async def test_allowed_host_replaces_the_default() -> None:
    async with running(allowed_hosts=("chat.example",)) as server:
        port = server.port
        assert (await http_as(port, "GET", "/healthz", host="chat.example:443"))[0] == 200
        assert (await http_as(port, "GET", "/healthz", host=f"127.0.0.1:{port}"))[0] == 421
        _, writer, head = await raw_upgrade(port, "/ws", host="chat.example")
        assert head.startswith(b"HTTP/1.1 101 "), head
        writer.close()


async def test_allow_origin_hosts_are_allowed_by_default() -> None:
    async with running(allowed_origins=("https://app.example",)) as server:
        port = server.port
        _, writer, head = await raw_upgrade(
            port, "/ws", host="app.example", headers=[("Origin", "https://app.example")])
        assert head.startswith(b"HTTP/1.1 101 "), head
        writer.close()


# --- X-Forwarded-For ----------------------------------------------------------------------------


async def test_forwarded_for_is_ignored_without_trusted_proxy() -> None:
    async with running(limits=Limits(max_connections_per_ip=1)) as server:
        first = await connect(server, "/ws", headers=[("X-Forwarded-For", "203.0.113.1")])
        await recv(first)
        with pytest.raises(rawws.InvalidStatus) as info:  # same peer, whatever the header says
            await connect(server, "/ws", headers=[("X-Forwarded-For", "203.0.113.2")])
        assert info.value.status_code == 503
        await first.close()


async def test_forwarded_for_from_a_trusted_proxy_counts_per_client() -> None:
    async with running(limits=Limits(max_connections_per_ip=1),
                       trusted_proxies=("127.0.0.1",)) as server:
        a = await connect(server, "/ws", headers=[("X-Forwarded-For", "203.0.113.1")])
        b = await connect(server, "/ws", headers=[("X-Forwarded-For", "6.6.6.6, 203.0.113.2")])
        for ws in (a, b):
            await recv(ws)
        # A client cannot dodge its cap by writing its own X-Forwarded-For in front.
        with pytest.raises(rawws.InvalidStatus) as info:
            await connect(server, "/ws", headers=[("X-Forwarded-For", "9.9.9.9, 203.0.113.1")])
        assert info.value.status_code == 503
        await a.close()
        await b.close()


async def test_forwarded_for_rate_limits_the_api_per_client() -> None:
    async with running(limits=Limits(http_rate=0.001, http_burst=1),
                       trusted_proxies=("127.0.0.0/8",)) as server:
        port = server.port
        host = f"127.0.0.1:{port}"
        one = [("X-Forwarded-For", "203.0.113.1")]
        two = [("X-Forwarded-For", "203.0.113.2")]
        assert (await http_as(port, "GET", "/api/rooms", host=host, headers=one))[0] == 200
        assert (await http_as(port, "GET", "/api/rooms", host=host, headers=one))[0] == 429
        assert (await http_as(port, "GET", "/api/rooms", host=host, headers=two))[0] == 200
