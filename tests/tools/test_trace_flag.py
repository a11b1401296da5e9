"""``--trace``: the core's tracing hook, turned into wire-log events (rawws.wirelog.Tracing), on a
server's and a client's own connections. Checked against an independent decoder: the tracing
proxy between the same two peers. Both must tell the same story, frame by frame, field by field
(the hook sees frames inside the stack, the proxy sees bytes on the wire)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import rawws
from rawws.wirelog import EventWriter, FrameEvent, HandshakeEvent, Tracing

from ..processes import ServerProcess, run
from .helpers import BOUND, HOST, frames, tracing


async def echo(ws: rawws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def story(events: list[Any]) -> list[dict[str, Any]]:
    """Frames without the fields that depend on who watched (time, connection number)."""
    out = []
    for event in frames(events):
        data = event.to_json()
        for key in ("t", "conn"):
            del data[key]
        out.append(data)
    return out


def heads(events: list[Any]) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    return [(e.dir, e.line, e.headers) for e in events if isinstance(e, HandshakeEvent)]


async def conversation(ws: rawws.ClientConnection) -> None:
    for message in ("short", "compress me " * 30, b"\x00\xff", ["frag", "ments"]):
        await ws.send(message)
        await ws.recv()
    await (await ws.ping(b"p"))


def keeping() -> EventWriter:
    writer = EventWriter(show_secrets=True)
    writer.keep = True
    return writer


async def test_server_and_client_tracing_agree_with_the_proxy() -> None:
    server_side, client_side = keeping(), keeping()
    server_tracing, client_tracing = Tracing(server_side), Tracing(client_side)
    async with rawws.serve(echo, HOST, 0,
                           process_response=server_tracing.process_response) as server, \
            tracing(server.port) as (proxy, wire):
        tracer = client_tracing.client_tracer()
        async with asyncio.timeout(BOUND), rawws.connect(
                f"ws://{HOST}:{proxy.port_listening}/x", tracer=tracer) as ws:
            client_tracing.client_opened(tracer, ws)
            await conversation(ws)
        await proxy.drain()
    on_the_wire = story(wire.events)
    assert len(on_the_wire) == 13  # 7 from the client, 6 back (the fragments echoed as one)
    assert story(server_side.events) == on_the_wire
    assert story(client_side.events) == on_the_wire
    assert heads(server_side.events) == heads(client_side.events) == heads(wire.events)
    compressed = [f for f in frames(wire.events) if f.compressed]
    assert len(compressed) == 4  # the long message, both ways; both fragments, one way


async def test_a_violation_is_traced_with_its_section() -> None:
    writer = keeping()
    trace = Tracing(writer)
    async with rawws.serve(echo, HOST, 0, process_response=trace.process_response,
                           compression=None) as server:
        reader, stream = await asyncio.open_connection(HOST, server.port)
        stream.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade"
                     b"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        stream.write(bytes.fromhex("8200"))  # an unmasked client frame
        async with asyncio.timeout(BOUND):
            await reader.read()
        stream.close()
    violation = [(e.dir, e.rfc, e.code) for e in writer.events if e.kind == "violation"]
    assert violation == [("c2s", "5.1", 1002)]
    closing = [f for f in frames(writer.events) if f.opcode == "CLOSE"]
    assert [(f.dir, f.code) for f in closing] == [("s2c", 1002)]


async def test_connections_are_numbered_and_untraced_ones_cost_nothing() -> None:
    writer = keeping()
    trace = Tracing(writer)
    async with rawws.serve(echo, HOST, 0, process_response=trace.process_response) as server:
        for _ in range(3):
            async with rawws.connect(f"ws://{HOST}:{server.port}/") as ws:
                await ws.send("x")
                await ws.recv()
    assert sorted({e.conn for e in writer.events}) == [1, 2, 3]
    async with rawws.serve(echo, HOST, 0) as server, \
            rawws.connect(f"ws://{HOST}:{server.port}/") as ws:
        (connection,) = server.connections
        assert connection.protocol.tracer is None and ws.protocol.tracer is None


# --- the flags on the commands -----------------------------------------------------------------


async def test_rawws_echo_trace_prints_frames_on_stderr_and_writes_json(tmp_path: Path) -> None:
    capture = tmp_path / "echo.jsonl"
    process = await ServerProcess.start("echo", "--port", "0", "--trace", "--trace-jsonl",
                                        str(capture))
    try:
        port = await process.port()
        async with rawws.connect(f"ws://{HOST}:{port}/room?token=s3cret") as ws:
            await ws.send("traced by the server")
            await ws.recv()
        await process.expect(r"< CLOSE fin=1 rsv=000 len=2 code=1000")
    finally:
        assert await process.stop() == 0
    output = process.output
    assert "> GET /room?token=*** HTTP/1.1" in output and "s3cret" not in output
    assert "> TEXT fin=1 rsv=000 mask=" in output and "'traced by the server'" in output
    events = [json.loads(line) for line in capture.read_text().splitlines()]
    assert [e["kind"] for e in events] == ["handshake", "handshake"] + ["frame"] * 4
    assert "s3cret" not in capture.read_text()


async def test_rawws_client_trace() -> None:
    import os
    import sys

    from ..processes import ROOT

    async with rawws.serve(echo, HOST, 0) as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rawws", "client", f"ws://{HOST}:{server.port}/", "--trace",
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        async with asyncio.timeout(BOUND):
            out, err = await process.communicate(b"typed line\n")  # sent, then closed 1000
    assert process.returncode == 0, err
    trace = err.decode()
    assert "> GET / HTTP/1.1" in trace and "< HTTP/1.1 101 Switching Protocols" in trace
    assert "> TEXT fin=1 rsv=000 mask=" in trace and "len=10 'typed line'" in trace
    assert "< TEXT fin=1 rsv=000 len=10 'typed line'" in trace
    assert "> CLOSE fin=1 rsv=000 mask=" in trace
    assert out.decode() == "typed line\n"  # the echo, as it came


async def test_rawws_serve_trace_jsonl(tmp_path: Path) -> None:
    from ..processes import free_port

    capture = tmp_path / "serve.jsonl"
    port = free_port()
    process = await ServerProcess.start("serve", "--port", str(port), "--trace-jsonl",
                                        str(capture))
    try:
        await process.port()
        async with rawws.connect(f"ws://{HOST}:{port}/ws?user_id=alice") as ws:
            welcome = json.loads(await ws.recv())
            assert welcome["type"] == "welcome"
    finally:
        assert await process.stop() == 0
    events = [json.loads(line) for line in capture.read_text().splitlines()]
    sent = [e for e in events if e["kind"] == "frame" and e["dir"] == "s2c"]
    assert sent[0]["opcode"] == "TEXT" and '"welcome"' in sent[0]["text"]
    assert "--trace" not in process.output  # no usage error


@pytest.mark.parametrize("command", [["echo", "--port", "0"], ["client", "ws://127.0.0.1:9/"]])
async def test_an_unwritable_trace_file_is_a_usage_error(command: list[str]) -> None:
    status, output = await run(*command, "--trace-jsonl", "/nonexistent/dir/trace.jsonl")
    assert status == 2
    assert "No such file" in output


def test_frames_helper_sees_frame_events() -> None:
    assert frames([FrameEvent(0, 1, "c2s", 1, "TEXT", True, False, False, False, True,
                              b"abcd", 0, b"")])


async def test_set_tracer_starts_and_stops_tracing_on_a_live_connection() -> None:
    records: list[Any] = []
    async with rawws.serve(echo, HOST, 0) as server, \
            rawws.connect(f"ws://{HOST}:{server.port}/") as ws:
        await ws.send("before")
        await ws.recv()
        ws.set_tracer(records.append)
        await ws.send("during")
        await ws.recv()
        ws.set_tracer(None)
        await ws.send("after")
        await ws.recv()
    assert [(r.direction, bytes(r.payload)) for r in records] == [
        ("sent", b"during"), ("received", b"during")]
