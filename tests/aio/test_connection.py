"""rawws.aio.connection over real sockets: messages, closing, errors, attributes (the tests that
depend on time or on what happens meanwhile on the virtual clock of rawws.testing)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

import rawws
from rawws import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ServerConnection,
    State,
)
from rawws.sansio.codes import Opcode
from rawws.testing import idle

from .peers import HOST, RawClient, until

#: Tests that depend on time or on what happens meanwhile run on rawws.testing's virtual clock
#: (in-memory network): ``idle()`` instead of sleeps, the real close timeout.
virtual_clock = pytest.mark.virtual_clock


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def uri(server: rawws.Server, path: str = "/") -> str:
    return f"ws://{HOST}:{server.port}{path}"


# --- messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    ["hello", b"\x00\x01\xfe\xff", "", b"", "héllo wörld ∑ 🌍 \u2028", "a" * 125, "b" * 126,
     b"c" * 65535, b"d" * 65536],
    ids=["text", "binary", "empty-text", "empty-binary", "unicode", "125", "126", "65535",
         "65536"],
)
async def test_echo_round_trip(message: str | bytes) -> None:
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        await ws.send(message)
        received = await ws.recv()
        assert type(received) is type(message)
        assert received == message


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_one_mib_messages_both_ways(compression: str | None) -> None:
    text = ("0123456789abcdef" * (2**20 // 16))
    binary = bytes(range(256)) * (2**20 // 256)
    assert len(text) == len(binary) == 2**20
    async with (rawws.serve(echo, HOST, 0, compression=compression) as server,
                rawws.connect(uri(server), compression=compression) as ws):
        await ws.send(text)
        await ws.send(binary)
        assert await ws.recv() == text
        assert await ws.recv() == binary


async def test_message_over_max_size_closes_1009() -> None:
    received: list[object] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            received.append(await ws.recv())
            await ws.recv()
        except ConnectionClosed as exc:
            received.append(exc)

    async with (rawws.serve(handler, HOST, 0, max_size=1000, compression=None) as server,
                rawws.connect(uri(server), compression=None) as ws):
        await ws.send(b"x" * 1000)  # exactly max_size: accepted
        await ws.send(b"x" * 1001)
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 1009
    assert received[0] == b"x" * 1000
    exc = received[1]
    assert isinstance(exc, ConnectionClosedError)
    # §7.1.7: after failing, the server processes nothing more (not even the echo): 1006.
    assert (exc.code, exc.sent_code) == (1006, 1009)


async def test_client_max_size_applies_to_server_messages() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("y" * 101)
        await ws.wait_closed()

    async with (rawws.serve(handler, HOST, 0) as server,
                rawws.connect(uri(server), max_size=100) as ws):
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent_code == 1009
    # §7.1.7: after failing, the client does not process the server's echo of the close.
    assert ws.close_code == 1006


async def test_many_messages_keep_their_order() -> None:
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        for i in range(200):
            await ws.send(f"message {i}" if i % 2 else f"{i}".encode())
        for i in range(200):
            assert await ws.recv() == (f"message {i}" if i % 2 else f"{i}".encode())


# --- fragmented sending ------------------------------------------------------------------------


async def agen(items: list[str] | list[bytes]) -> AsyncIterator[str | bytes]:
    for item in items:
        await asyncio.sleep(0)
        yield item


@pytest.mark.parametrize(
    "fragments, expected",
    [
        (["ab", "cd", "é€"], "abcdé€"),
        ([b"\x01", b"", b"\x02\x03"], b"\x01\x02\x03"),
        (("only",), "only"),
        (iter([b"x" * 70000, b"y" * 3]), b"x" * 70000 + b"yyy"),
    ],
    ids=["text", "binary-with-empty", "single", "iterator-large"],
)
async def test_send_iterable_as_one_message(fragments: object, expected: str | bytes) -> None:
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        await ws.send(fragments)  # type: ignore[arg-type]
        assert await ws.recv() == expected


@pytest.mark.parametrize("items, expected", [(["ab", "cd", "ef"], "abcdef"),
                                             ([b"1", b"23"], b"123")])
async def test_send_async_iterable_as_one_message(items: list[str] | list[bytes],
                                                  expected: str | bytes) -> None:
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        await ws.send(agen(items))
        assert await ws.recv() == expected


@pytest.mark.parametrize("source", ["list", "async"])
async def test_fragments_on_the_wire(source: str) -> None:
    """Each item is one frame: first TEXT with FIN clear, then CONTINUATION, the last with FIN."""
    parts = ["ab", "cd", "ef"]

    async def handler(ws: ServerConnection) -> None:
        await ws.send(parts if source == "list" else agen(parts))
        await ws.send("after")
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0) as server:
        raw = await RawClient.connect(server.port)
        frames = [await raw.read_frame() for _ in range(4)]
        assert frames == [
            (False, Opcode.TEXT, b"ab"),
            (False, Opcode.CONTINUATION, b"cd"),
            (True, Opcode.CONTINUATION, b"ef"),
            (True, Opcode.TEXT, b"after"),
        ]
        raw.send_close(1000)
        assert (await raw.read_until_close())[0] == (1000, "")
        await raw.aclose()


async def test_empty_iterable_sends_nothing() -> None:
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        await ws.send([])
        await ws.send("next")
        assert await ws.recv() == "next"


async def test_send_rejects_other_types() -> None:
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        with pytest.raises(TypeError):
            await ws.send(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ws.send_nowait(["a"])  # type: ignore[arg-type]
        await ws.send("still open")
        assert await ws.recv() == "still open"


# --- closing -----------------------------------------------------------------------------------


async def test_async_for_ends_on_normal_close() -> None:
    seen: list[object] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            seen.append(message)
        seen.append(("end", ws.close_code, ws.close_reason))
        done.set()

    async with rawws.serve(handler, HOST, 0) as server:
        async with rawws.connect(uri(server)) as ws:
            await ws.send("one")
            await ws.send(b"two")
            await ws.send("three")
        async with asyncio.timeout(20):
            await done.wait()
    assert seen == ["one", b"two", "three", ("end", 1000, "")]


async def test_async_for_raises_on_error_close() -> None:
    caught: list[BaseException] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            async for _ in ws:
                pass
        except ConnectionClosedError as exc:
            caught.append(exc)

    async with rawws.serve(handler, HOST, 0) as server:
        async with rawws.connect(uri(server)) as ws:
            await ws.close(4000, "custom")
        await until(lambda: caught)
    assert isinstance(caught[0], ConnectionClosedError)
    assert (caught[0].code, caught[0].reason) == (4000, "custom")


@pytest.mark.parametrize("code, reason, ok", [
    (1000, "", True),
    (1000, "done", True),
    (1001, "going", True),
    (3000, "registered", False),
    (4999, "private ✓", False),
])
async def test_client_closes_with_code(code: int, reason: str, ok: bool) -> None:
    outcome: list[object] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            outcome.append(exc)
        await ws.wait_closed()
        outcome.append((ws.close_code, ws.close_reason))

    async with rawws.serve(handler, HOST, 0) as server:
        ws = await rawws.connect(uri(server))
        await ws.close(code, reason)
        assert (ws.close_code, ws.close_reason) == (code, reason)  # the server's echo
        await until(lambda: len(outcome) == 2)
    exc = outcome[0]
    assert isinstance(exc, ConnectionClosedOK if ok else ConnectionClosedError)
    assert isinstance(exc, ConnectionClosed)
    assert (exc.code, exc.reason, exc.sent_code) == (code, reason, code)
    assert outcome[1] == (code, reason)
    with pytest.raises(ConnectionClosedOK if ok else ConnectionClosedError) as info:
        await ws.recv()
    assert (info.value.code, info.value.reason) == (code, reason)


@pytest.mark.parametrize("code, reason, ok", [
    (1000, "bye", True),
    (1001, "", True),
    (3000, "x", False),
    (4999, "y" * 123, False),
])
async def test_server_closes_with_code(code: int, reason: str, ok: bool) -> None:
    states: list[object] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.close(code, reason)
        states.append((ws.state, ws.close_code, ws.close_reason))

    async with rawws.serve(handler, HOST, 0) as server:
        async with rawws.connect(uri(server)) as ws:
            with pytest.raises(ConnectionClosedOK if ok else ConnectionClosedError) as info:
                await ws.recv()
            assert (info.value.code, info.value.reason) == (code, reason)
            await ws.wait_closed()
            assert (ws.state, ws.close_code, ws.close_reason) == (State.CLOSED, code, reason)
        await until(lambda: states)
    assert states == [(State.CLOSED, code, reason)]


async def test_close_code_and_reason_are_none_while_open() -> None:
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        assert ws.state is State.OPEN
        assert ws.close_code is None
        assert ws.close_reason is None


async def test_messages_before_close_are_delivered_then_closed() -> None:
    async def handler(ws: ServerConnection) -> None:
        for i in range(5):
            await ws.send(str(i))
        await ws.close(4001, "after five")

    async with rawws.serve(handler, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        await ws.wait_closed()
        assert [await ws.recv() for _ in range(5)] == ["0", "1", "2", "3", "4"]
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert (info.value.code, info.value.reason) == (4001, "after five")


async def test_abrupt_disconnect_is_1006() -> None:
    caught: list[ConnectionClosed] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            caught.append(exc)

    async with rawws.serve(handler, HOST, 0) as server:
        raw = await RawClient.connect(server.port)
        raw.abort()
        await until(lambda: caught)
    assert isinstance(caught[0], ConnectionClosedError)
    assert (caught[0].code, caught[0].reason, caught[0].sent_code) == (1006, "", None)


async def test_handler_return_closes_1000() -> None:
    async def handler(ws: ServerConnection) -> None:
        return

    async with rawws.serve(handler, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.recv()
        assert (info.value.code, info.value.reason) == (1000, "")


async def test_handler_exception_closes_1011(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        raise RuntimeError("boom")

    async with rawws.serve(handler, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        await ws.send("trigger")
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 1011
        assert ws.close_code == 1011
    assert any("boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)


async def test_close_is_idempotent() -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        ws = await rawws.connect(uri(server))
        await asyncio.gather(ws.close(), ws.close(4000))
        await ws.close(3000)
        assert ws.close_code == 1000


# --- misuse ------------------------------------------------------------------------------------


async def test_concurrent_recv_raises_concurrency_error() -> None:
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        first = asyncio.ensure_future(ws.recv())
        await asyncio.sleep(0)
        with pytest.raises(ConcurrencyError):
            await ws.recv()
        await ws.send("for the first")
        assert await first == "for the first"
        # The first waiter is gone: recv() works again.
        await ws.send("again")
        assert await ws.recv() == "again"


async def test_cancelled_recv_loses_nothing() -> None:
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        waiting = asyncio.ensure_future(ws.recv())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await ws.send("kept")
        assert await ws.recv() == "kept"


@pytest.mark.parametrize("closer", ["client", "server"])
async def test_send_after_close_raises(closer: str) -> None:
    async def handler(ws: ServerConnection) -> None:
        if closer == "server":
            await ws.close()
        else:
            await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0) as server:
        ws = await rawws.connect(uri(server))
        if closer == "client":
            await ws.close()
        else:
            await ws.wait_closed()
        with pytest.raises(ConnectionClosedOK):
            await ws.send("late")
        with pytest.raises(ConnectionClosedOK):
            ws.send_nowait(b"late")
        with pytest.raises(ConnectionClosedOK):
            await ws.send(["a", "b"])
        with pytest.raises(ConnectionClosedOK):
            await ws.ping()


async def test_send_while_closing_raises() -> None:
    """After close() is called, send() fails at once even before the peer answers."""
    async with rawws.serve(echo, HOST, 0) as server:
        ws = await rawws.connect(uri(server))
        closing = asyncio.ensure_future(ws.close())
        await asyncio.sleep(0)
        assert ws.state in (State.CLOSING, State.CLOSED)
        with pytest.raises(ConnectionClosed):
            await ws.send("late")
        await closing


# --- attributes ----------------------------------------------------------------------------------


async def test_request_path_query_headers() -> None:
    seen: list[rawws.Request] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen.append(ws.request)

    async with rawws.serve(handler, HOST, 0) as server:
        port = server.port
        async with rawws.connect(
            uri(server, "/room/a%20b?user=alice&x=1&x=2&empty="),
            extra_headers=[("X-Custom", "value 1"), ("Authorization", "Bearer t")],
        ) as ws:
            await ws.wait_closed()
            assert ws.request is not None
            assert ws.request.target == "/room/a%20b?user=alice&x=1&x=2&empty="
    request = seen[0]
    assert request.method == "GET"
    assert request.path == "/room/a%20b?user=alice&x=1&x=2&empty="  # as websockets
    assert request.unquoted_path == "/room/a b"
    assert request.query == {"user": "alice", "x": "2", "empty": ""}
    assert request.query_all["x"] == ["1", "2"]
    assert request.headers["x-custom"] == "value 1"
    assert request.headers["Authorization"] == "Bearer t"
    assert request.headers["Host"] == f"{HOST}:{port}"
    assert request.headers["User-Agent"] == "rawws"


@pytest.mark.parametrize("server_protocols, client_protocols, expected", [
    (["chat", "superchat"], ["superchat", "chat"], "chat"),
    (["superchat"], ["chat", "superchat"], "superchat"),
    (None, ["chat"], None),
])
async def test_subprotocol_negotiation(server_protocols: list[str] | None,
                                       client_protocols: list[str] | None,
                                       expected: str | None) -> None:
    seen: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(ws.subprotocol)

    async with (rawws.serve(handler, HOST, 0, subprotocols=server_protocols) as server,
                rawws.connect(uri(server), subprotocols=client_protocols) as ws):
        assert ws.subprotocol == expected
        await ws.wait_closed()
    assert seen == [expected]


@pytest.mark.parametrize("client_protocols", [["other"], None])
async def test_subprotocol_required_when_the_server_lists_some(
        client_protocols: list[str] | None) -> None:
    async with rawws.serve(echo, HOST, 0, subprotocols=["chat"]) as server:
        with pytest.raises(rawws.InvalidStatus) as info:
            await rawws.connect(uri(server), subprotocols=client_protocols)
        assert info.value.status_code == 400


async def test_select_subprotocol_callable() -> None:
    offered: list[list[str]] = []

    def select(protocols: object) -> str | None:
        offered.append(list(protocols))  # type: ignore[call-overload]
        return "b"

    async with (rawws.serve(echo, HOST, 0, select_subprotocol=select) as server,
                rawws.connect(uri(server), subprotocols=["a", "b"]) as ws):
        assert ws.subprotocol == "b"
    assert offered == [["a", "b"]]


async def test_addresses() -> None:
    seen: list[tuple[object, object]] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append((ws.remote_address, ws.local_address))
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        assert ws.remote_address == (HOST, server.port)
        await until(lambda: seen)
        assert seen[0] == (ws.local_address, (HOST, server.port))


async def test_connection_ids_are_unique_and_user_data_is_per_connection() -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        a = await rawws.connect(uri(server))
        b = await rawws.connect(uri(server))
        assert a.id != b.id
        assert a.id == a.id
        a.user_data["k"] = 1
        assert b.user_data == {}
        await a.close()
        await b.close()


async def test_server_connections_tracks_open_connections() -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        clients = [await rawws.connect(uri(server)) for _ in range(3)]
        await until(lambda: server.open_count == 3)
        assert len(server.connections) == 3
        for client in clients:
            await client.close()
        await until(lambda: not server.connections)
        assert server.open_count == 0


# --- odd but legal inputs ------------------------------------------------------------------------


async def test_close_frame_without_status_code_is_a_normal_close() -> None:
    """A close frame with no body (what a browser's ``ws.close()`` sends) reports 1005 and is a
    normal closure: ``async for`` ends quietly, recv() raises ConnectionClosedOK."""
    outcome: list[object] = []

    async def handler(ws: ServerConnection) -> None:
        async for _ in ws:
            pass
        outcome.append(("loop ended", ws.close_code, ws.close_reason))
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            outcome.append(exc)

    async with rawws.serve(handler, HOST, 0) as server:
        raw = await RawClient.connect(server.port)
        raw.send_close(None)
        (code, reason), _ = await raw.read_until_close()
        assert (code, reason) == (1005, "")  # the echo is an empty close frame too
        await raw.read_eof()
        await raw.aclose()
        await until(lambda: len(outcome) == 2)
    assert outcome[0] == ("loop ended", 1005, "")
    assert isinstance(outcome[1], ConnectionClosedOK)
    assert outcome[1].code == 1005


async def test_str_subclasses_are_text() -> None:
    import enum

    class Color(enum.StrEnum):
        RED = "red"

    class Markup(str):
        pass

    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        await ws.send(Color.RED)
        assert await ws.recv() == "red"
        ws.send_nowait(Markup("<b>"))
        assert await ws.recv() == "<b>"
        await ws.send([Markup("a"), Color.RED])
        assert await ws.recv() == "ared"


def broken_fragments() -> object:
    yield "first"
    yield "second"
    raise RuntimeError("generator failed")


async def broken_async_fragments() -> AsyncIterator[str]:
    yield "first"
    yield "second"
    raise RuntimeError("generator failed")


@pytest.mark.parametrize("fragments, error", [
    (broken_fragments, RuntimeError),
    (broken_async_fragments, RuntimeError),
    (lambda: iter(["text", b"bytes"]), TypeError),
    (lambda: agen([b"bytes", "text"]), TypeError),
    (lambda: iter(["text", 42]), TypeError),
], ids=["iterator-raises", "async-iterator-raises", "mixed-str-bytes", "mixed-async",
        "not-a-fragment"])
async def test_a_fragmented_message_that_cannot_finish_closes_1011(fragments: object,
                                                                   error: type) -> None:
    """Half a message is on the wire and the rest will never come: nothing else can be sent on
    this connection, so it closes with 1011 (as websockets does) instead of staying stuck."""
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        with pytest.raises(error):
            await ws.send(fragments())  # type: ignore[operator]
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent_code == 1011
        assert info.value.code == 1011  # the server echoed our close
        with pytest.raises(ConnectionClosed):
            await ws.send("after")


@pytest.mark.parametrize("message", [
    {"type": "chat"}, 42, 1.5, None, object(), ["text", b"bytes"], [1, 2], ("a", None),
    iter([{"x": 1}]), agen([3]),
], ids=["dict", "int", "float", "None", "object", "mixed-list", "int-list", "tuple-None",
        "iterator-of-dict", "async-iterator-of-int"])
async def test_send_refuses_what_is_not_a_message_before_a_byte_is_sent(message: object) -> None:
    """websockets raises TypeError for these; rawws too, and the connection stays usable (a
    list or tuple is checked whole; an iterator's first item before anything is sent)."""
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        with pytest.raises(TypeError):
            await ws.send(message)  # type: ignore[arg-type]
        await ws.send("still open")
        assert await ws.recv() == "still open"
        assert ws.state is State.OPEN


@pytest.mark.parametrize("message, text, expected", [
    (b"caf\xc3\xa9", True, "café"), ("café", False, "café".encode()),
    ([b"ab", b"cd"], True, "abcd"), (["ab", "cd"], False, b"abcd"), ("plain", None, "plain"),
])
async def test_send_text_flag_chooses_the_frame_type(message: object, text: bool | None,
                                                     expected: str | bytes) -> None:
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        await ws.send(message, text=text)  # type: ignore[arg-type]
        assert await ws.recv() == expected


async def test_recv_decode() -> None:
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        await ws.send("té")
        assert await ws.recv(decode=False) == "té".encode()
        await ws.send("té".encode())
        assert await ws.recv(decode=True) == "té"
        await ws.send(b"raw")
        assert await ws.recv(decode=False) == b"raw"
        await ws.send(b"\xff\xfe")
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv(decode=True)
        assert info.value.sent_code == 1007


async def test_recv_streaming_yields_the_message() -> None:
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        await ws.send(["frag", "ments"])
        assert [part async for part in ws.recv_streaming()] == ["fragments"]
        await ws.send(b"bin")
        assert [part async for part in ws.recv_streaming(decode=True)] == ["bin"]


async def test_closed_is_a_bool_and_wait_closed_waits() -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        ws = await rawws.connect(uri(server))
        assert ws.closed is False
        await ws.close()
        assert ws.closed is True
        await ws.wait_closed()
        assert ws.state is State.CLOSED


async def test_connection_as_context_manager_closes_1011_on_error() -> None:
    codes: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()
        codes.append(ws.close_code)

    async with rawws.serve(handler, HOST, 0) as server:
        with pytest.raises(RuntimeError):
            async with rawws.connect(uri(server)) as ws:
                raise RuntimeError("the block failed")
        assert ws.close_code == 1011
        async with await rawws.connect(uri(server)) as ws:
            pass
        assert ws.close_code == 1000
    assert sorted(codes) == [1000, 1011]


@virtual_clock
async def test_cancelled_fragmented_send_closes_1011() -> None:
    forever = asyncio.Event()

    async def stalled() -> AsyncIterator[str]:
        yield "a"
        yield "b"
        await forever.wait()
        yield "c"

    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        sending = asyncio.ensure_future(ws.send(stalled()))
        await idle()
        assert ws.protocol.sending_fragmented
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.sent_code == 1011


@virtual_clock
async def test_send_during_a_fragmented_send_waits_for_it() -> None:
    """Frames of two messages may not interleave (§5.4): a send() while a fragmented message is
    going out waits for its last fragment, instead of failing."""
    release = asyncio.Event()
    errors: list[BaseException] = []

    async def slow() -> AsyncIterator[str]:
        yield "a"
        yield "b"
        await release.wait()
        yield "c"

    async def handler(ws: ServerConnection) -> None:
        fragmented = asyncio.ensure_future(ws.send(slow()))
        await idle()
        assert ws.protocol.sending_fragmented
        others = [asyncio.ensure_future(ws.send(m)) for m in ("x", b"y", ["z1", "z2"])]
        await idle()
        assert not any(task.done() for task in others)  # waiting for the last fragment
        release.set()
        for task in (fragmented, *others):
            try:
                await task
            except Exception as exc:
                errors.append(exc)
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        assert [await ws.recv() for _ in range(4)] == ["abc", "x", b"y", "z1z2"]
    assert errors == []


async def test_debug_transcript(caplog: pytest.LogCaptureFixture) -> None:
    """With the ``rawws`` logger at DEBUG, both sides log a transcript with the prefixes of the
    guide: ``<`` received, ``>`` sent, ``=`` state change, ``x`` TCP closed."""
    caplog.set_level(logging.DEBUG, logger="rawws")
    async with rawws.serve(echo, HOST, 0) as server, rawws.connect(uri(server)) as ws:
        await ws.send("transcribed")
        assert await ws.recv() == "transcribed"
    for side in ("rawws.server", "rawws.client"):
        lines = [r.getMessage() for r in caplog.records if r.name == side]
        prefixes = {line[:1] for line in lines}
        assert {"<", ">", "="} <= prefixes, (side, lines)
        assert any("transcribed" in line for line in lines if line.startswith("<"))
        assert any("CONNECTING -> OPEN" in line for line in lines)
    assert any(r.getMessage().startswith("x") for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- answers to messages that arrive together with a bad frame or the peer's close --------------


async def _echo_handler(ws: rawws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@virtual_clock
@pytest.mark.parametrize("trailer", ["bad frame", "close"])
async def test_async_server_answers_before_the_close_frame(trailer: str) -> None:
    """Autobahn 3.2 / 5.15 with a recv() handler: "Hello" and a bad frame (or a close) in one
    write; the echo of "Hello" goes out before the close frame."""
    async with rawws.serve(_echo_handler, HOST, 0, compression=None) as server:
        raw = await RawClient.connect(server.port)
        second = (RawClient.frame(Opcode.TEXT, b"x", rsv=0x20) if trailer == "bad frame"
                  else RawClient.frame(Opcode.CLOSE, b"\x03\xe8"))
        raw.write(RawClient.frame(Opcode.TEXT, b"Hello") + second)
        (code, _), before = await raw.read_until_close()
        assert before == [(True, Opcode.TEXT, b"Hello")]
        assert code == (1002 if trailer == "bad frame" else 1000)
        await raw.aclose()


@virtual_clock
async def test_async_client_answers_before_the_close_frame() -> None:
    from rawws.sansio.frames import serialize_frame

    from .peers import RawServer, RawServerSide

    received: asyncio.Future[list[tuple[bool, int, bytes]]] = (
        asyncio.get_running_loop().create_future())

    async def behave(side: RawServerSide) -> None:
        side.writer.write(serialize_frame(Opcode.TEXT, b"Hello")
                          + serialize_frame(Opcode.CLOSE, b"\x03\xe8"))
        received.set_result([await side.read_frame(), await side.read_frame()])

    async with RawServer(behave) as peer:
        async with rawws.connect(f"ws://{HOST}:{peer.port}/", compression=None) as ws:
            async for message in ws:
                await ws.send(message)
        assert await received == [(True, Opcode.TEXT, b"Hello"), (True, Opcode.CLOSE,
                                                                  b"\x03\xe8")]


@virtual_clock
async def test_handler_that_never_answers_still_gets_the_close_out() -> None:
    """The close owed behind messages the handler never reads goes out after close_timeout
    (the bound of the whole closing handshake), not never."""

    async def never_reads(ws: rawws.ServerConnection) -> None:
        await asyncio.sleep(3600)  # never calls recv()

    async with rawws.serve(never_reads, HOST, 0, compression=None) as server:
        raw = await RawClient.connect(server.port)
        raw.write(RawClient.frame(Opcode.TEXT, b"Hello") + RawClient.frame(Opcode.TEXT, b"x",
                                                                           rsv=0x20))
        sent = asyncio.get_running_loop().time()
        (code, _), before = await raw.read_until_close()
        assert (code, before) == (1002, [])
        assert asyncio.get_running_loop().time() - sent == 10.0  # close_timeout, exactly
        await raw.aclose()


@virtual_clock
async def test_async_client_big_answer_then_small_before_the_close() -> None:
    """Autobahn 7.1.6, client side: the first answer waits in drain() while the peer reads it
    slowly; the second one still goes out before the close frame."""
    from rawws.sansio.frames import serialize_frame

    from .peers import RawServer, RawServerSide

    big = bytes(range(256)) * 1024
    received: asyncio.Future[list[tuple[bool, int, bytes]]] = (
        asyncio.get_running_loop().create_future())

    async def behave(side: RawServerSide) -> None:
        side.writer.write(serialize_frame(Opcode.BINARY, big)
                          + serialize_frame(Opcode.TEXT, b"Hello World!")
                          + serialize_frame(Opcode.CLOSE, b"\x03\xe8"))
        await asyncio.sleep(5)  # read nothing for a while: the client's big echo waits
        received.set_result([await side.read_frame() for _ in range(3)])

    async with RawServer(behave) as peer:
        async with rawws.connect(f"ws://{HOST}:{peer.port}/", compression=None, max_size=None,
                                 write_limit=1024) as ws:
            async for message in ws:
                await ws.send(message)
        assert await received == [(True, Opcode.BINARY, big),
                                  (True, Opcode.TEXT, b"Hello World!"),
                                  (True, Opcode.CLOSE, b"\x03\xe8")]
