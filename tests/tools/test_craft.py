"""``rawws craft`` against real rawws peers on 127.0.0.1: every named attack gets the reaction
the RFC requires, the transcript says what happened, and a broken expectation fails the run.

Nothing here is timed: the attacks' own bounds end them (the slowloris one ends because the
server's open timeout, set short here, drops it; the test does not measure when)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

import rawws
from rawws.__main__ import EchoListener
from rawws.tools import craft
from rawws.tools.attacks import ATTACKS
from rawws.tools.craftscript import parse_script

HOST = "127.0.0.1"
CLIENT_ATTACKS = sorted(n for n, a in ATTACKS.items() if a.side == "client")
SERVER_ATTACKS = sorted(n for n, a in ATTACKS.items() if a.side == "server")


@asynccontextmanager
async def echo_server(**options: object) -> AsyncIterator[int]:
    settings: dict[str, object] = {"compression": "deflate", "ping_interval": None,
                                   "open_timeout": 0.5}
    settings.update(options)
    async with rawws.serve(EchoListener(), HOST, 0, **settings) as server:
        yield server.sockets[0].getsockname()[1]


async def attack(port: int, name: str, out: io.StringIO | None = None) -> craft.Outcome:
    steps = parse_script(ATTACKS[name].script)
    return await craft.run_script(steps, HOST, port, timeout=5, out=out)


@pytest.mark.parametrize("name", CLIENT_ATTACKS)
async def test_each_attack_on_a_rawws_server_gets_the_reaction_the_rfc_requires(
        name: str) -> None:
    async with echo_server() as port:
        outcome = await attack(port, name)
    assert outcome.error is None
    assert outcome.passed, outcome.checks
    if name not in ("non-minimal-length", "split-utf8", "ping-flood"):
        # Every attack that calls for failing the connection ends with TCP closed by rawws.
        assert outcome.dropped_by_peer()


async def test_the_transcript_shows_frames_codes_and_the_tcp_close() -> None:
    out = io.StringIO()
    async with echo_server() as port:
        outcome = await attack(port, "rsv-bits", out)
    text = out.getvalue()
    assert "< HTTP/1.1 101 Switching Protocols" in text
    assert "> TEXT [F1] 'hello' (5 bytes)" in text
    assert "< CLOSE [F] 1002 protocol error" in text
    assert "x TCP closed by the peer" in text
    assert "? expect close 1002: PASS" in text
    assert outcome.close_code() == 1002 and outcome.status() == 101
    assert craft.summarize(outcome).startswith(
        "result: HTTP 101; closed by the peer with 1002 (protocol error); TCP closed by the peer")


async def test_a_reaction_other_than_the_expected_one_fails() -> None:
    async with echo_server() as port:
        # A valid message: the echo comes back, not a close.
        steps = parse_script('send text "fine"\nexpect close 1002 within=1')
        outcome = await craft.run_script(steps, HOST, port)
    assert not outcome.passed
    assert outcome.checks == [("expect close 1002 within=1", False, "nothing within 1 s")]
    assert [e.kind for e in outcome.events] == ["status", "frame"]  # the echo, no close


async def test_violations_by_the_peer_are_named_with_their_section() -> None:
    """craft as a server sends a masked frame; a craft client reading it names the rule."""
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server_steps = parse_script('respond\nsend text "x" mask=01020304\nwait 0.2')
    serving = asyncio.create_task(craft.serve_script(server_steps, HOST, 0, once=True,
                                                     ready=ready))
    port = await ready
    out = io.StringIO()
    outcome = await craft.run_script(parse_script("read 0.1"), HOST, port, out=out)
    await serving
    frame = next(e for e in outcome.events if e.kind == "frame")
    assert frame.payload == b"x" and frame.violation is not None
    assert "RFC 6455 §5.1" in frame.violation
    assert "! server frame is masked (RFC 6455 §5.1)" in out.getvalue()


@pytest.mark.parametrize("name", SERVER_ATTACKS)
async def test_each_attack_on_a_rawws_client(name: str) -> None:
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    steps = parse_script(ATTACKS[name].script)
    serving = asyncio.create_task(craft.serve_script(steps, HOST, 0, once=True, ready=ready,
                                                     timeout=5))
    port = await ready
    with pytest.raises((rawws.ConnectionClosed, rawws.InvalidHandshake, OSError)):
        async with rawws.connect(f"ws://{HOST}:{port}", open_timeout=5) as ws:
            await ws.recv()
    outcome = await serving
    assert outcome.passed, outcome.checks


def test_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert craft.main(["--list"]) == 0
    listing = capsys.readouterr().out
    assert "deflate-bomb" in listing and "RFC 6455 §10.4" in listing
    assert craft.main(["ws://127.0.0.1:1", "-e", "launch"]) == 2
    assert "line 1: unknown step 'launch'" in capsys.readouterr().err


def test_the_command_line_against_a_server_with_json(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    async def serve_and_run() -> int:
        async with echo_server() as port:
            return await asyncio.to_thread(
                craft.main, [f"ws://{HOST}:{port}", "--attack", "reserved-opcode", "--json"])

    assert asyncio.run(serve_and_run()) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert [e["kind"] for e in report["events"]][:2] == ["status", "close"]
    assert report["events"][1]["code"] == 1002


def test_rawws_craft_is_registered() -> None:
    from rawws.__main__ import main

    with pytest.raises(SystemExit) as info:
        main(["craft", "--help"])
    assert info.value.code == 0
