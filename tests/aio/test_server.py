"""rawws.aio.server: handshake statuses, hooks, plain HTTP, limits, timeouts, graceful shutdown
(over real sockets; the tests that depend on time on the virtual clock of rawws.testing)."""

from __future__ import annotations

import asyncio

import pytest

import rawws
from rawws import (
    ConnectionClosed,
    ConnectionClosedOK,
    Headers,
    InvalidStatus,
    Request,
    Response,
    ServerConnection,
)
from rawws.sansio.codes import Opcode
from rawws.sansio.handshake import accept_key
from rawws.testing import idle

from .peers import HOST, RawClient, until, upgrade_request

#: Tests that depend on time or on the order of reads run on rawws.testing's virtual clock
#: (in-memory network): real defaults, exact deadlines, ``idle()`` instead of sleeps.
virtual_clock = pytest.mark.virtual_clock


def now() -> float:
    return asyncio.get_running_loop().time()


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the response, check the server then closes the connection."""
    raw = await RawClient.open(port)
    raw.write(request)
    status, headers, body = await raw.read_response()
    if status != 101:
        assert await raw.read_eof() == b""
    await raw.aclose()
    return status, headers, body


# --- handshake statuses ------------------------------------------------------------------------


async def test_valid_upgrade_gets_101() -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        request, key = upgrade_request()
        status, headers, _ = await exchange(server.port, request)
    assert status == 101
    assert headers["upgrade"].lower() == "websocket"
    assert headers["connection"].lower() == "upgrade"
    assert headers["sec-websocket-accept"] == accept_key(key)
    assert headers["server"] == "rawws"
    assert "sec-websocket-extensions" not in headers  # none offered


INVALID_REQUESTS: list[tuple[str, dict[str, object], int]] = [
    ("post", {"method": "POST"}, 405),
    ("put", {"method": "PUT"}, 405),
    ("http10", {"version": "HTTP/1.0"}, 400),
    ("no-host", {"drop": ["Host"]}, 400),
    ("two-hosts", {"extra": [("Host", "other")]}, 400),
    ("upgrade-h2c", {"replace": {"Upgrade": "h2c"}}, 400),
    ("no-upgrade", {"drop": ["Upgrade"]}, 400),
    ("no-connection", {"drop": ["Connection"]}, 400),
    ("connection-keep-alive", {"replace": {"Connection": "keep-alive"}}, 400),
    ("bad-key-short", {"key": "abc"}, 400),
    ("bad-key-15-bytes", {"key": "AAAAAAAAAAAAAAAAAAAA"}, 400),
    ("bad-key-not-base64", {"key": "!!!!!!!!!!!!!!!!!!!!!!=="}, 400),
    ("no-key", {"drop": ["Sec-WebSocket-Key"]}, 400),
]


@pytest.mark.parametrize("spoil, status", [(s, c) for _, s, c in INVALID_REQUESTS],
                         ids=[name for name, _, _ in INVALID_REQUESTS])
async def test_invalid_upgrade_status(spoil: dict[str, object], status: int) -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        request, _ = upgrade_request(**spoil)  # type: ignore[arg-type]
        got, headers, body = await exchange(server.port, request)
        await until(lambda: not server.connections)
    assert got == status
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert headers["content-type"].startswith("text/plain")
    assert body  # says what was wrong
    assert server.rejections[status] == 1


@pytest.mark.parametrize("version", ["8", "14", "13, 8"])
async def test_bad_version_gets_426_with_version_header(version: str) -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        request, _ = upgrade_request(replace={"Sec-WebSocket-Version": version})
        status, headers, _ = await exchange(server.port, request)
    assert status == 426
    assert headers["sec-websocket-version"] == "13"


async def test_missing_version_gets_426() -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        request, _ = upgrade_request(drop=["Sec-WebSocket-Version"])
        status, headers, _ = await exchange(server.port, request)
    assert (status, headers["sec-websocket-version"]) == (426, "13")


@pytest.mark.parametrize("origin_header, status", [
    (None, 403), ("https://evil.example", 403), ("https://good.example", 101),
])
async def test_origins_list(origin_header: str | None, status: int) -> None:
    extra = [] if origin_header is None else [("Origin", origin_header)]
    async with rawws.serve(echo, HOST, 0, origins=["https://good.example"]) as server:
        request, _ = upgrade_request(extra=extra)
        got, _, _ = await exchange(server.port, request)
    assert got == status


async def test_origins_none_allows_missing_origin_and_predicate() -> None:
    async with rawws.serve(echo, HOST, 0, origins=[None, "https://a.example"]) as server:
        assert (await exchange(server.port, upgrade_request()[0]))[0] == 101
    async with rawws.serve(echo, HOST, 0,
                           origins=lambda o: o is not None and o.endswith(".ok")) as server:
        assert (await exchange(server.port, upgrade_request(
            extra=[("Origin", "https://x.ok")])[0]))[0] == 101
        assert (await exchange(server.port, upgrade_request(
            extra=[("Origin", "https://x.no")])[0]))[0] == 403


async def test_client_origin_option_is_checked() -> None:
    async with rawws.serve(echo, HOST, 0, origins=["https://good.example"]) as server:
        good = await rawws.connect(f"ws://{HOST}:{server.port}/", origin="https://good.example")
        await good.close()
        with pytest.raises(InvalidStatus) as info:
            await rawws.connect(f"ws://{HOST}:{server.port}/", origin="https://bad.example")
        assert info.value.status_code == 403


@pytest.mark.parametrize("request_bytes, status", [
    # Request line over the 8 KiB line limit.
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    # A request line that never ends.
    (b"GET /" + b"a" * 9000, 414),
    # One header line over the limit.
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
    # Too many header lines.
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n", 431),
    # The whole head over 64 KiB in lines each under the line limit.
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: " % i + b"v" * 8000 + b"\r\n" for i in range(9))
     + b"\r\n", 431),
    # Malformed.
    (b"GET /\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\nHost: x\n\n", 400),
], ids=["long-request-line", "endless-request-line", "long-header", "many-headers",
        "big-head", "short-request-line", "no-colon", "space-before-colon", "bare-lf"])
async def test_malformed_or_oversized_heads(request_bytes: bytes, status: int) -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        raw = await RawClient.open(server.port)
        raw.write(request_bytes)
        got, headers, _ = await raw.read_response()
        assert got == status
        assert headers["connection"] == "close"
        await raw.read_eof()
        await raw.aclose()
        await until(lambda: not server.connections)


# --- plain HTTP on the same port -----------------------------------------------------------------


async def test_plain_get_without_http_handler_gets_426() -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        status, headers, _ = await exchange(
            server.port, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 426
    assert headers["upgrade"] == "websocket"


@virtual_clock
@pytest.mark.parametrize("is_async", [False, True])
async def test_http_handler_serves_plain_requests_with_bodies(is_async: bool) -> None:
    seen: list[Request] = []

    def respond(ws: rawws.ServerConnection, request: Request) -> Response:
        seen.append(request)
        host = ws.remote_address[0]  # the connection is there too (per-IP limits, logs)
        body = (f"{request.method} {request.unquoted_path} {request.query} from {host}".encode()
                + b" " + request.body)
        return Response(200, Headers([("Content-Type", "text/plain")]), body)

    async def respond_async(ws: rawws.ServerConnection, request: Request) -> Response:
        await asyncio.sleep(0)
        return respond(ws, request)

    async with rawws.serve(echo, HOST, 0,
                           http_handler=respond_async if is_async else respond) as server:
        status, headers, body = await exchange(
            server.port,
            b"POST /api/items?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
        )
        assert (status, body) == (200, b"POST /api/items {'x': '1'} from 127.0.0.1 hello world")
        assert headers["content-length"] == str(len(body))
        assert headers["connection"] == "close"
        # A body arriving in pieces, after the head.
        raw = await RawClient.open(server.port)
        raw.write(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab")
        await idle()  # the server has read the head and 2 bytes of the body, and waits
        assert len(seen) == 1
        raw.write(b"cdef")
        status, _, body = await raw.read_response()
        assert (status, body) == (200, b"PUT /p {} from 127.0.0.1 abcdef")
        await raw.aclose()
        # A GET without a body.
        status, _, body = await exchange(server.port, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (status, body) == (200, b"GET /x {} from 127.0.0.1 ")
        # WebSocket still works on the same port.
        async with rawws.connect(f"ws://{HOST}:{server.port}/") as ws:
            await ws.send("ws")
            assert await ws.recv() == "ws"
    assert [r.body for r in seen] == [b"hello world", b"abcdef", b""]


async def test_http_handler_body_over_max_body_size_gets_413() -> None:
    calls: list[Request] = []

    def respond(ws: rawws.ServerConnection, request: Request) -> Response:
        calls.append(request)
        return Response(200, body=b"ok")

    async with rawws.serve(None, HOST, 0, http_handler=respond, max_body_size=10) as server:
        status, _, body = await exchange(
            server.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
        assert (status, body) == (200, b"ok")
        status, _, _ = await exchange(
            server.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n0123456789a")
        assert status == 413
        status, _, _ = await exchange(
            server.port, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert status == 411
    assert len(calls) == 1


@pytest.mark.parametrize("is_async", [False, True])
async def test_http_handler_raising_gets_500(is_async: bool,
                                             caplog: pytest.LogCaptureFixture) -> None:
    def respond(ws: rawws.ServerConnection, request: Request) -> Response:
        raise RuntimeError("broken page")

    async def respond_async(ws: rawws.ServerConnection, request: Request) -> Response:
        await asyncio.sleep(0)
        raise RuntimeError("broken page")

    async with rawws.serve(None, HOST, 0,
                           http_handler=respond_async if is_async else respond) as server:
        status, _, _ = await exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 500


# --- hooks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize("status", [401, 403, 404, 418, 429, 503])
async def test_process_request_rejects_with_any_status(is_async: bool, status: int) -> None:
    def hook(ws: ServerConnection, request: Request) -> Response | None:
        if request.path == "/allowed":
            return None
        return Response(status, Headers([("X-Why", "hook")]), b"nope")

    async def hook_async(ws: ServerConnection, request: Request) -> Response | None:
        await asyncio.sleep(0)
        return hook(ws, request)

    async with rawws.serve(echo, HOST, 0,
                           process_request=hook_async if is_async else hook) as server:
        got, headers, body = await exchange(server.port, upgrade_request("/denied")[0])
        assert (got, headers["x-why"], body) == (status, "hook", b"nope")
        with pytest.raises(InvalidStatus) as info:
            await rawws.connect(f"ws://{HOST}:{server.port}/denied")
        assert info.value.status_code == status
        async with rawws.connect(f"ws://{HOST}:{server.port}/allowed") as ws:
            await ws.send("in")
            assert await ws.recv() == "in"
    assert server.rejections[status] == 2


async def test_process_request_sees_the_connection_and_request() -> None:
    seen: list[tuple[object, str, str | None]] = []

    def hook(ws: ServerConnection, request: Request) -> None:
        seen.append((ws.state, request.path, request.headers.get("Authorization")))
        ws.user_data["user"] = "alice"

    async def handler(ws: ServerConnection) -> None:
        await ws.send(ws.user_data["user"])

    async with (rawws.serve(handler, HOST, 0, process_request=hook) as server,
                rawws.connect(f"ws://{HOST}:{server.port}/p",
                              extra_headers=[("Authorization", "token")]) as ws):
        assert await ws.recv() == "alice"
    assert seen == [(rawws.State.CONNECTING, "/p", "token")]


@pytest.mark.parametrize("is_async", [False, True])
async def test_process_response_modifies_or_replaces(is_async: bool) -> None:
    def hook(ws: ServerConnection, request: Request, response: Response) -> Response | None:
        if request.path == "/replace":
            return Response(403, body=b"replaced")
        response.headers["X-Extra"] = "added"
        return None

    async def hook_async(ws: ServerConnection, request: Request,
                         response: Response) -> Response | None:
        await asyncio.sleep(0)
        return hook(ws, request, response)

    async with rawws.serve(echo, HOST, 0,
                           process_response=hook_async if is_async else hook) as server:
        async with rawws.connect(f"ws://{HOST}:{server.port}/") as ws:
            assert ws.response is not None
            assert ws.response.headers["X-Extra"] == "added"
            await ws.send("ok")
            assert await ws.recv() == "ok"
        status, _, body = await exchange(server.port, upgrade_request("/replace")[0])
        assert (status, body) == (403, b"replaced")


@pytest.mark.parametrize("hook_name", ["process_request", "process_response"])
@pytest.mark.parametrize("is_async", [False, True])
async def test_hook_raising_gets_500(hook_name: str, is_async: bool,
                                     caplog: pytest.LogCaptureFixture) -> None:
    def hook(*args: object) -> None:
        raise RuntimeError("hook bug")

    async def hook_async(*args: object) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("hook bug")

    handled: list[object] = []

    async def handler(ws: ServerConnection) -> None:
        handled.append(ws)

    async with rawws.serve(handler, HOST, 0,
                           **{hook_name: hook_async if is_async else hook}) as server:
        status, _, _ = await exchange(server.port, upgrade_request()[0])
        await until(lambda: not server.connections)
    assert status == 500
    assert handled == []
    assert any(r.exc_info and "hook bug" in str(r.exc_info[1]) for r in caplog.records)


@virtual_clock
async def test_async_hook_pauses_reading_and_keeps_early_frames() -> None:
    """Frames the client sends right behind its request, while an async hook runs, are
    processed once the connection opens."""
    release = asyncio.Event()

    async def hook(ws: ServerConnection, request: Request) -> None:
        await release.wait()

    async with rawws.serve(echo, HOST, 0, process_request=hook) as server:
        raw = await RawClient.open(server.port)
        request, _ = upgrade_request()
        raw.write(request)
        raw.send_frame(0x1, b"early")
        await idle()  # request and frame are in; the hook waits, reading is paused
        connection, = server.connections
        assert connection.state is rawws.State.CONNECTING
        assert connection.transport is not None and not connection.transport.is_reading()
        release.set()
        status, _, _ = await raw.read_response(body=False)
        assert status == 101
        assert await raw.read_frame() == (True, 0x1, b"early")
        raw.send_close()
        assert (await raw.read_until_close())[0] == (1000, "")
        await raw.aclose()


async def test_extra_headers_and_server_header() -> None:
    async with rawws.serve(echo, HOST, 0, extra_headers=[("X-Served-By", "test")],
                           server_header="custom/1") as server:
        status, headers, _ = await exchange(server.port, upgrade_request()[0])
    assert (status, headers["x-served-by"], headers["server"]) == (101, "test", "custom/1")


# --- limits and timeouts -----------------------------------------------------------------------


async def test_max_connections_gets_503() -> None:
    async with rawws.serve(echo, HOST, 0, max_connections=2) as server:
        first = await rawws.connect(f"ws://{HOST}:{server.port}/")
        second = await rawws.connect(f"ws://{HOST}:{server.port}/")
        with pytest.raises(InvalidStatus) as info:
            await rawws.connect(f"ws://{HOST}:{server.port}/")
        assert info.value.status_code == 503
        status, headers, _ = await exchange(server.port, upgrade_request()[0])
        assert (status, headers["retry-after"]) == (503, "5")
        await first.close()
        await until(lambda: server.open_count == 1)
        third = await rawws.connect(f"ws://{HOST}:{server.port}/")
        await third.send("room again")
        assert await third.recv() == "room again"
        await second.close()
        await third.close()
    assert server.rejections[503] == 2


@virtual_clock
@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"])
async def test_open_timeout_answers_408_to_a_slow_request(sent: bytes) -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        raw = await RawClient.open(server.port)
        opened = now()
        raw.write(sent)
        status, headers, _ = await raw.read_response()
        assert status == 408
        assert now() == opened + 10.0  # the default open_timeout
        assert headers["connection"] == "close"
        await raw.read_eof()
        await raw.aclose()
        await idle()
        assert not server.connections
        assert server.rejections[408] == 1


@virtual_clock
async def test_open_timeout_bounds_a_slow_hook() -> None:
    hook_cancelled = asyncio.Event()

    async def hook(ws: ServerConnection, request: Request) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            hook_cancelled.set()
            raise

    async with rawws.serve(echo, HOST, 0, open_timeout=3, process_request=hook) as server:
        started = now()
        status, _, _ = await exchange(server.port, upgrade_request()[0])
        assert status == 408
        assert now() == started + 3
        await idle()
        assert not server.connections
        assert hook_cancelled.is_set()


@virtual_clock
async def test_open_timeout_does_not_close_open_connections() -> None:
    async with (rawws.serve(echo, HOST, 0) as server,
                rawws.connect(f"ws://{HOST}:{server.port}/") as ws):
        await asyncio.sleep(3600)  # far past the 10 s open_timeout
        await ws.send("still here")
        assert await ws.recv() == "still here"


@virtual_clock
async def test_client_open_timeout_when_server_never_answers() -> None:
    server = await asyncio.start_server(lambda r, w: None, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    started = now()
    try:
        with pytest.raises(TimeoutError):
            await rawws.connect(f"ws://{HOST}:{port}/")
        assert now() == started + 10.0  # the default open_timeout
    finally:
        server.close()


# --- graceful shutdown ---------------------------------------------------------------------------


async def test_close_sends_1001_to_every_connection_and_waits_for_handlers() -> None:
    ended: list[tuple[int, str]] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            async for _ in ws:
                pass
        finally:
            await asyncio.sleep(0.01)  # some cleanup
            ended.append((ws.close_code or 0, ws.close_reason or ""))

    server = await rawws.serve(handler, HOST, 0)
    port = server.port
    clients = [await rawws.connect(f"ws://{HOST}:{port}/") for _ in range(4)]
    await until(lambda: server.open_count == 4)
    server.close()
    await server.wait_closed()
    # Every handler finished before wait_closed() returned.
    assert ended == [(1001, "server shutting down")] * 4
    assert not server.connections
    for ws in clients:
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.recv()
        assert (info.value.code, info.value.reason) == (1001, "server shutting down")
        await ws.wait_closed()
        assert ws.close_code == 1001
    # No new connections.
    with pytest.raises(OSError):
        await rawws.connect(f"ws://{HOST}:{port}/", open_timeout=5)


async def test_close_with_custom_code() -> None:
    server = await rawws.serve(echo, HOST, 0)
    ws = await rawws.connect(f"ws://{HOST}:{server.port}/")
    server.close(code=1012, reason="restarting")
    await server.wait_closed()
    with pytest.raises(rawws.ConnectionClosedError) as info:
        await ws.recv()
    assert (info.value.code, info.value.reason) == (1012, "restarting")


async def test_close_aborts_connections_in_the_handshake() -> None:
    server = await rawws.serve(echo, HOST, 0)
    raw = await RawClient.open(server.port)
    raw.write(b"GET / HTTP/1.1\r\n")  # half a request
    await until(lambda: server.connections)
    server.close()
    await server.wait_closed()
    assert await raw.read_eof() == b""  # no response, just the end of the connection
    assert not server.connections
    await raw.aclose()


@virtual_clock
async def test_close_waits_for_peers_within_close_timeout() -> None:
    """A peer that never answers the 1001 is dropped after close_timeout."""
    server = await rawws.serve(echo, HOST, 0)
    raw = await RawClient.connect(server.port)
    started = now()
    server.close()
    await server.wait_closed()
    assert now() == started + 10.0  # the default close_timeout
    (code, reason), _ = await raw.read_until_close()
    assert (code, reason) == (1001, "server shutting down")
    await raw.read_eof()
    await raw.aclose()


@virtual_clock
async def test_close_stops_a_handler_that_ignores_the_close() -> None:
    """A handler that never looks at its connection cannot hold the shutdown forever: after
    close_timeout it is cancelled."""
    cancelled = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = await rawws.serve(handler, HOST, 0)
    ws = await rawws.connect(f"ws://{HOST}:{server.port}/")
    await idle()
    assert server.open_count == 1
    started = now()
    server.close()
    await server.wait_closed()
    # The client answered the 1001 at once; the handler got close_timeout more, then was cancelled.
    assert now() == started + 10.0
    assert cancelled.is_set()
    await ws.wait_closed()
    assert ws.close_code == 1001


def _frames_in(data: bytes) -> list[int]:
    """The opcodes of the complete server frames at the start of ``data``."""
    opcodes = []
    while len(data) >= 2:
        length, offset = data[1] & 0x7F, 2
        if length == 126:
            length, offset = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, offset = int.from_bytes(data[2:10], "big"), 10
        if len(data) < offset + length:
            break
        opcodes.append(data[0] & 0x0F)
        data = data[offset + length:]
    return opcodes


@virtual_clock
async def test_shutdown_timeout_aborts_a_peer_that_never_reads(
        caplog: pytest.LogCaptureFixture) -> None:
    """A peer that never reads never receives its 1001 (the close frame waits behind what it
    has not read): at the shutdown deadline its connection is aborted, long before its
    close_timeout, while a peer that reads gets its 1001."""
    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        if ws.request.path == "/flood":
            while True:
                await ws.send(b"x" * 65536)
        async for _ in ws:
            pass

    server = await rawws.serve(handler, HOST, 0, close_timeout=60, shutdown_timeout=5)
    stalled = await RawClient.connect(server.port, "/flood", rcvbuf=4096)
    reader = await rawws.connect(f"ws://{HOST}:{server.port}/")
    await idle()
    assert server.open_count == 2
    assert any(c.writing_paused for c in server.connections)
    started = now()
    server.close()
    await server.wait_closed()
    assert now() == started + 5  # the deadline, not close_timeout (60 s)
    assert not server.connections
    assert "shutdown: 1 connection(s) still open after 5 s: aborting" in caplog.text
    await reader.wait_closed()
    assert reader.close_code == 1001
    received = await stalled.read_eof()  # what its socket buffers held, then the end
    opcodes = _frames_in(received)
    assert opcodes and set(opcodes) == {Opcode.BINARY}  # data, and never the close frame
    await stalled.aclose()


@virtual_clock
async def test_shutdown_timeout_also_bounds_the_handlers() -> None:
    cancelled = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = await rawws.serve(handler, HOST, 0, close_timeout=60, shutdown_timeout=5)
    ws = await rawws.connect(f"ws://{HOST}:{server.port}/")
    await idle()
    assert server.open_count == 1
    started = now()
    server.close()
    await server.wait_closed()
    assert now() == started + 5  # the deadline, not close_timeout (60 s)
    assert cancelled.is_set()
    await ws.wait_closed()
    assert ws.close_code == 1001


@pytest.mark.parametrize("value", [-1.0, float("nan")])
def test_shutdown_timeout_is_validated(value: float) -> None:
    with pytest.raises(ValueError, match="shutdown_timeout"):
        rawws.Server(None, shutdown_timeout=value)


async def test_async_with_serve_closes_gracefully() -> None:
    closed: list[ConnectionClosed] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            closed.append(exc)

    async with rawws.serve(handler, HOST, 0) as server:
        ws = await rawws.connect(f"ws://{HOST}:{server.port}/")
        await until(lambda: server.open_count == 1)
    assert isinstance(closed[0], ConnectionClosedOK)
    assert closed[0].sent_code == 1001
    await ws.wait_closed()
    assert ws.close_code == 1001


async def test_serve_with_existing_socket_and_multiple_connects() -> None:
    import socket

    sock = socket.socket()
    sock.bind((HOST, 0))
    async with rawws.serve(echo, sock=sock) as server:
        port = sock.getsockname()[1]
        assert server.port == port
        results = await asyncio.gather(*(roundtrip(port, i) for i in range(10)))
    assert results == [f"hello {i}" for i in range(10)]


async def roundtrip(port: int, i: int) -> str:
    async with rawws.connect(f"ws://{HOST}:{port}/") as ws:
        await ws.send(f"hello {i}")
        return str(await ws.recv())



async def test_max_connections_holds_with_concurrent_async_handshakes() -> None:
    """Handshakes waiting in an async hook count against max_connections: they cannot all slip
    through while none of them is open yet."""
    release = asyncio.Event()
    waiting: list[ServerConnection] = []

    async def hook(ws: ServerConnection, request: Request) -> None:
        waiting.append(ws)
        await release.wait()

    async with rawws.serve(echo, HOST, 0, max_connections=2, process_request=hook) as server:
        attempts = [asyncio.ensure_future(rawws.connect(f"ws://{HOST}:{server.port}/"))
                    for _ in range(4)]
        await until(lambda: len(waiting) == 2 and sum(t.done() for t in attempts) == 2)
        rejected = [t for t in attempts if t.done()]
        for task in rejected:
            assert isinstance(task.exception(), InvalidStatus)
            assert task.exception().status_code == 503  # type: ignore[union-attr]
        release.set()
        opened = [await t for t in attempts if t not in rejected]
        assert len(opened) == 2
        assert server.open_count == 2
        for ws in opened:
            await ws.close()
        await until(lambda: not server.connections)
        # The places are free again.
        async with rawws.connect(f"ws://{HOST}:{server.port}/") as ws:
            await ws.send("in")
            assert await ws.recv() == "in"


@pytest.mark.parametrize(("options", "request_bytes", "status"), [
    ({}, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 426),  # plain HTTP, no http_handler
    ({"max_connections": 0}, upgrade_request()[0], 503),
    ({}, upgrade_request(extra=[("Content-Length", "3")])[0] + b"abc", 400),
])
async def test_the_servers_own_refusals_are_nosniff_and_no_store(
        options: dict[str, int], request_bytes: bytes, status: int) -> None:
    """Issue 11 items 14 and 15, over a real socket."""
    async def never(ws: rawws.ServerConnection) -> None:
        raise AssertionError("no handler runs for a refused request")

    async with rawws.serve(never, HOST, 0, **options) as server:  # type: ignore[arg-type]
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(request_bytes)
        response = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    head = response.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0].startswith(b"HTTP/1.1 %d " % status)
    assert b"X-Content-Type-Options: nosniff" in head
    assert b"Cache-Control: no-store" in head
