"""``rawws replay``: a capture made by the tracing proxy, replayed against a server of the same
kind, matches (exit 0); against a server that answers differently it names the first frame
that differs (exit 1). Real sockets on 127.0.0.1; the tests about waiting run on the virtual
clock of rawws.testing (in-memory network), where "the replay waited" is an exact statement."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import rawws
from rawws.tools.replay import Capture, CaptureError, compare, load_capture, replay
from rawws.wirelog import Event, FrameEvent, dumps, read_jsonl

from ..processes import run
from .helpers import BOUND, HOST, tracing

websockets = pytest.importorskip("websockets")
from websockets.asyncio.server import serve as ws_serve  # noqa: E402


async def echo(ws: rawws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def shout(ws: rawws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message.upper() if isinstance(message, str) else message)


async def conversation(ws: rawws.ClientConnection) -> None:
    for message in ("one", "compress me " * 40, b"\x00\x01", ["frag", "mented"]):
        await ws.send(message)
        await ws.recv()
    await (await ws.ping(b"p"))


async def record(handler: Callable[[Any], Awaitable[None]],
                 client: Callable[[rawws.ClientConnection], Awaitable[None]] = conversation,
                 **serve_options: Any) -> list[Event]:
    """Trace ``client`` talking to a rawws server running ``handler``; return the events."""
    async with rawws.serve(handler, HOST, 0, **serve_options) as server, \
            tracing(server.port) as (proxy, writer):
        async with asyncio.timeout(BOUND), \
                rawws.connect(f"ws://{HOST}:{proxy.port_listening}/echo?x=1") as ws:
            await client(ws)
        await proxy.drain()
    return writer.events


def write(tmp_path: Path, events: list[Event]) -> Path:
    path = tmp_path / "wire.jsonl"
    path.write_text("".join(dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def websockets_echo() -> AsyncIterator[int]:
    async def handler(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with ws_serve(handler, HOST, 0) as server:
        yield next(iter(server.sockets)).getsockname()[1]


async def test_a_capture_replayed_against_the_same_kind_of_server_matches() -> None:
    capture = load_capture(await record(echo))
    assert [f.opcode for f in capture.client_frames] == [
        "TEXT", "TEXT", "BINARY", "TEXT", "CONT", "PING", "CLOSE"]
    assert capture.client_frames[1].compressed  # replayed compressed, as captured
    async with rawws.serve(echo, HOST, 0) as server:
        result = await replay(capture, f"ws://{HOST}:{server.port}/echo?x=1")
    assert compare(capture, result) == []
    assert [f.opcode for f in result.frames] == [
        "TEXT", "TEXT", "BINARY", "TEXT", "PONG", "CLOSE"]
    # And against another implementation of the same server: websockets' echo.
    async with websockets_echo() as port:
        result = await replay(capture, f"ws://{HOST}:{port}/")
    assert compare(capture, result) == []


async def test_a_server_that_answers_differently_is_named_frame_by_frame() -> None:
    capture = load_capture(await record(echo))
    async with rawws.serve(shout, HOST, 0) as server:
        result = await replay(capture, f"ws://{HOST}:{server.port}/")
    assert compare(capture, result) == [
        "server frame 1 differs from the capture:",
        "  capture: TEXT fin=1 rsv=000 len=3 'one'",
        "  replay:  TEXT fin=1 rsv=000 len=3 'ONE'",
    ]


@pytest.mark.virtual_clock  # the replay waits out its timeout for frames that never come
async def test_missing_and_extra_frames_are_named() -> None:
    capture = load_capture(await record(echo))

    async def closes_after_two(ws: rawws.ServerConnection) -> None:
        for _ in range(2):
            await ws.send(await ws.recv())
        await ws.close(1001, "bye")

    async with rawws.serve(closes_after_two, HOST, 0) as server:
        result = await replay(capture, f"ws://{HOST}:{server.port}/")
    differences = compare(capture, result)
    assert differences[0] == "server frame 3 differs from the capture:"
    assert differences[2] == "  replay:  CLOSE fin=1 rsv=000 len=5 code=1001 reason='bye'"

    # A capture that lacks the server's close frame: the server's is extra, and named (the
    # replay reads until the server closes TCP after a client close).
    client_close = capture.client_frames[-1]
    extra = dataclasses.replace(capture, frames=(*capture.frames[:2], client_close))
    async with rawws.serve(echo, HOST, 0) as server:
        result = await replay(extra, f"ws://{HOST}:{server.port}/")
    assert compare(extra, result) == [
        "server frame 2 is not in the capture:", "  capture: (none)",
        "  replay:  CLOSE fin=1 rsv=000 len=2 code=1000 reason=''"]


async def test_a_different_handshake_status_is_the_difference() -> None:
    capture = load_capture(await record(echo))

    def forbid(ws: rawws.ServerConnection, request: rawws.Request) -> rawws.Response:
        return rawws.Response(403, body=b"no")

    async with rawws.serve(echo, HOST, 0, process_request=forbid) as server:
        result = await replay(capture, f"ws://{HOST}:{server.port}/")
    assert compare(capture, result) == [
        "handshake: the capture has HTTP 101, the server answered HTTP 403"]
    assert result.frames == []


async def test_a_protocol_error_replayed_gets_the_same_close_code() -> None:
    async def bad_client(ws: rawws.ClientConnection) -> None:
        await ws.send("fine")
        await ws.recv()
        assert ws.transport is not None
        ws.transport.write(bytes.fromhex("838011223344"))  # reserved opcode 0x3, masked, empty
        with contextlib.suppress(rawws.ConnectionClosed):
            await ws.recv()

    events = await record(echo, bad_client, compression=None)
    capture = load_capture(events)
    assert [f.opcode for f in capture.client_frames] == ["TEXT", 3, "CLOSE"]  # and the echo
    assert [(f.opcode, f.code) for f in capture.server_frames] == [("TEXT", None),
                                                                   ("CLOSE", 1002)]
    async with rawws.serve(echo, HOST, 0, compression=None) as server:
        result = await replay(capture, f"ws://{HOST}:{server.port}/")
    assert compare(capture, result) == []
    assert compare(capture, result, close_code_only=True) == []


# --- order and timeout, on the virtual clock -----------------------------------------------------


@pytest.mark.virtual_clock
async def test_client_frames_wait_for_the_server_frames_that_preceded_them() -> None:
    loop = asyncio.get_running_loop()
    log: list[tuple[str, float]] = []

    async def greeter(ws: rawws.ServerConnection) -> None:
        reading = asyncio.ensure_future(ws.recv())
        await asyncio.sleep(5)  # the welcome takes its time
        log.append(("welcome sent", loop.time()))
        await ws.send("welcome")
        message = await reading
        log.append((f"got {message}", loop.time()))
        await ws.send(message)
        await ws.wait_closed()

    async def client(ws: rawws.ClientConnection) -> None:
        assert await ws.recv() == "welcome"
        await ws.send("hi")
        assert await ws.recv() == "hi"

    events = await record(greeter, client)
    capture = load_capture(events)
    log.clear()
    async with rawws.serve(greeter, HOST, 0) as server:
        started = loop.time()
        result = await replay(capture, f"ws://{HOST}:{server.port}/")
    assert compare(capture, result) == []
    # Nothing was sent before the welcome the capture shows first.
    assert log == [("welcome sent", started + 5), ("got hi", started + 5)]


@pytest.mark.virtual_clock
async def test_a_server_that_never_answers_times_out_and_is_reported() -> None:
    loop = asyncio.get_running_loop()
    capture = load_capture(await record(echo))

    async def silent(ws: rawws.ServerConnection) -> None:
        await ws.recv()
        await asyncio.Event().wait()

    async with rawws.serve(silent, HOST, 0, ping_interval=None) as server:
        started = loop.time()
        result = await replay(capture, f"ws://{HOST}:{server.port}/", timeout=7)
        assert loop.time() - started == pytest.approx(7)
    assert compare(capture, result) == [
        "server frame 1 is missing (timed out waiting for server frame 1 before client "
        "frame 2)",
        "  capture: TEXT fin=1 rsv=000 len=3 'one'",
        "  replay:  (none)",
    ]


# --- what cannot be replayed -------------------------------------------------------------------


async def test_redacted_or_truncated_captures_are_refused() -> None:
    events = await record(echo)
    frame = next(e for e in events if isinstance(e, FrameEvent) and e.dir == "c2s")
    redacted = [dataclasses.replace(e, payload=None, redacted=True) if e is frame else e
                for e in events]
    with pytest.raises(CaptureError, match="redacted"):
        load_capture(redacted)
    truncated = [dataclasses.replace(e, truncated=True) if e is frame else e for e in events]
    with pytest.raises(CaptureError, match="truncated"):
        load_capture(truncated)
    with pytest.raises(CaptureError, match="no opening handshake"):
        load_capture([e for e in events if isinstance(e, FrameEvent)])


async def test_a_default_trace_capture_is_refused_for_its_redacted_target() -> None:
    async with rawws.serve(echo, HOST, 0) as server, \
            tracing(server.port, show_secrets=False) as (proxy, writer):
        async with rawws.connect(f"ws://{HOST}:{proxy.port_listening}/",
                                 extra_headers=[("Authorization", "Bearer s3cret")]) as ws:
            await ws.send("x")
            await ws.recv()
        await proxy.drain()
    with pytest.raises(CaptureError, match="--show-secrets"):
        load_capture(writer.events)


# --- the command line --------------------------------------------------------------------------


async def test_the_command_exits_0_on_a_match_and_1_with_the_difference(tmp_path: Path) -> None:
    path = write(tmp_path, await record(echo))
    capture: Capture = load_capture(read_jsonl(path.read_text().splitlines()))
    assert len(capture.server_frames) == 6
    async with rawws.serve(echo, HOST, 0) as server:
        status, output = await run("replay", str(path), "--target",
                                   f"ws://{HOST}:{server.port}/")
    assert status == 0, output
    assert "6 server frame(s) match the capture (7 client frame(s) replayed)" in output
    async with rawws.serve(shout, HOST, 0) as server:
        status, output = await run("replay", str(path), "--target",
                                   f"ws://{HOST}:{server.port}/")
    assert status == 1
    assert output.splitlines()[:3] == [
        "rawws replay: server frame 1 differs from the capture:",
        "  capture: TEXT fin=1 rsv=000 len=3 'one'",
        "  replay:  TEXT fin=1 rsv=000 len=3 'ONE'"]


@pytest.mark.parametrize("content, message", [
    (None, "No such file"), ("not json\n", "line 1"), ("", "no opening handshake")])
async def test_bad_captures_exit_2(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "capture.jsonl"
    if content is not None:
        path.write_text(content)
    status, output = await run("replay", str(path), "--target", "ws://127.0.0.1:9/")
    assert status == 2
    assert message in output
