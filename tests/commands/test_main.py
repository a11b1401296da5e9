"""The command line as a whole: help texts, --debug's position, the chat client without a
server, through real processes."""

from __future__ import annotations

import re
import socket

import pytest

from rawws.chat.cli import format_event

from ..processes import ServerProcess, run

COMMANDS = ["", "echo", "client", "serve", "chat", "trace", "replay", "craft"]


@pytest.mark.parametrize("command", COMMANDS)
async def test_help_shows_defaults_and_no_repository_paths(command: str) -> None:
    status, text = await run(*([command] if command else []), "--help")
    assert status == 0
    # An installed package has no docs/ directory to point at.
    assert not re.search(r"\bdocs/", text), text
    if command in ("echo", "client", "serve", "chat"):
        assert "(default:" in text


async def test_every_option_with_a_default_shows_it() -> None:
    _, text = await run("client", "--help")
    for option in ("--wait", "--ping-interval", "--open-timeout"):
        assert re.search(rf"{option} SECONDS\s+.*?\(default: [\d.]+\)", text, re.S), option
    _, text = await run("serve", "--help")
    assert re.search(r"--max-connections MAX_CONNECTIONS\s+\(default: \d+\)", text), text


@pytest.mark.parametrize("position", ["before", "after"])
async def test_debug_before_or_after_the_subcommand(position: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["client", f"ws://127.0.0.1:{port}/"]
    args = ["--debug", *args] if position == "before" else [*args, "--debug"]
    status, output = await run(*args)
    assert status == 1 and "connection refused" in output


def test_plurals() -> None:
    assert format_event({"type": "published", "topic": "t", "recipients": 1}) == [
        "= published to t (1 recipient)"]
    assert format_event({"type": "published", "topic": "t", "recipients": 2}) == [
        "= published to t (2 recipients)"]


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"


async def test_chat_without_a_server_fails_at_once() -> None:
    status, output = await run("chat", refused_url(), "--user", "alice")
    assert status == 1
    assert output.splitlines()[-1].startswith("! could not connect: [Errno 111]"), output


async def test_chat_with_retry_says_it_is_retrying() -> None:
    proc = await ServerProcess.start("chat", refused_url(), "--user", "alice", "--retry")
    try:
        await proc.expect(r"retrying until it answers")
        await proc.expect(r"rawws\.chat\.client: connect failed: .*; retrying")
    finally:
        proc.kill()
        await proc.wait()
