"""``python -m rawws trace`` as a real process: the text lines, the JSON lines, the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rawws
from rawws.tools.trace_proxy import parse_listen

from ..processes import ServerProcess, run

HOST = "127.0.0.1"


async def echo(ws: rawws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def test_trace_prints_lines_and_writes_json_lines(tmp_path: Path) -> None:
    capture = tmp_path / "wire.jsonl"
    async with rawws.serve(echo, HOST, 0, compression=None) as server:
        proxy = await ServerProcess.start("trace", "--listen", f"{HOST}:0",
                                          f"ws://{HOST}:{server.port}/", "--jsonl",
                                          str(capture))
        try:
            port = await proxy.port()
            async with rawws.connect(f"ws://{HOST}:{port}/room?token=hunter2",
                                     compression=None) as ws:
                await ws.send("through the proxy")
                assert await ws.recv() == "through the proxy"
            await proxy.expect(r"= connection closed")
        finally:
            assert await proxy.stop() == 0
    output = proxy.output
    assert "GET /room?token=*** HTTP/1.1" in output and "hunter2" not in output
    assert "HTTP/1.1 101 Switching Protocols" in output
    assert "> TEXT fin=1 rsv=000 mask=" in output and "len=17 'through the proxy'" in output
    assert "< TEXT fin=1 rsv=000 len=17 'through the proxy'" in output
    assert "> CLOSE fin=1 rsv=000" in output and "code=1000" in output
    events = [json.loads(line) for line in capture.read_text().splitlines()]
    assert [e["kind"] for e in events if e["kind"] != "tcp"] == [
        "handshake", "handshake", "frame", "frame", "frame", "frame"]
    assert all(e["v"] == 1 for e in events)
    assert "hunter2" not in capture.read_text()


@pytest.mark.parametrize("args, message", [
    (["trace", "--listen", "nowhere", "ws://127.0.0.1:1/"], "HOST:PORT"),
    (["trace", "--listen", "127.0.0.1:0", "http://127.0.0.1:1/"], "ws or wss"),
    (["trace", "--listen", "127.0.0.1:0", "ws://127.0.0.1:1/", "--max-payload", "-1"],
     "max-payload"),
])
async def test_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    status, output = await run(*args)
    assert status == 2
    assert message in output and len(output.strip().splitlines()) == 1


async def test_an_unreachable_upstream_is_reported_and_the_client_dropped() -> None:
    from ..processes import free_port

    proxy = await ServerProcess.start("trace", "--listen", f"{HOST}:0",
                                      f"ws://{HOST}:{free_port()}/")
    try:
        port = await proxy.port()
        with pytest.raises((OSError, rawws.InvalidHandshake, rawws.ConnectionClosed)):
            await rawws.connect(f"ws://{HOST}:{port}/")
        await proxy.expect(r"= error: cannot reach")
    finally:
        assert await proxy.stop() == 0


@pytest.mark.parametrize("value, expected", [
    ("127.0.0.1:8000", ("127.0.0.1", 8000)), (":9", ("127.0.0.1", 9)),
    ("[::1]:80", ("::1", 80)), ("0.0.0.0:0", ("0.0.0.0", 0))])
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected
