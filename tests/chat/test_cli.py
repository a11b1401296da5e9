"""python -m rawws serve / chat as real processes, and the terminal view of every event."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import pytest

from rawws.chat.cli import ChatView, config_from_args, format_event, main_serve
from rawws.chat.cli import _serve_parser as serve_parser

from .e2e import WAIT

ROOT = Path(__file__).resolve().parents[2]


class Proc:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str) -> Proc:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rawws", *args, cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        return cls(process)

    async def expect(self, pattern: str) -> re.Match[str]:
        """Read output lines until one matches ``pattern``."""
        assert self.process.stdout is not None
        regex = re.compile(pattern)
        for line in self.lines:
            if (found := regex.search(line)) is not None:
                self.lines.remove(line)
                return found
        async with asyncio.timeout(WAIT):
            while True:
                raw = await self.process.stdout.readline()
                assert raw, f"process ended before {pattern!r}; output: {self.lines}"
                line = raw.decode().rstrip("\n")
                if (found := regex.search(line)) is not None:
                    return found
                self.lines.append(line)

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def wait(self) -> int:
        async with asyncio.timeout(WAIT):
            return await self.process.wait()


async def http_post(port: int, target: str, body: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}"
                 f"\r\n\r\n{body}".encode())
    raw = await reader.read()
    writer.close()
    head, _, payload = raw.decode().partition("\r\n\r\n")
    return int(head.split()[1]), payload


async def test_two_terminals_and_a_curl() -> None:
    server = await Proc.start("serve", "--port", "0", "--log-level", "warning")
    try:
        port = int((await server.expect(r"on http://127\.0\.0\.1:(\d+)")).group(1))
        url = f"ws://127.0.0.1:{port}"
        alice = await Proc.start("chat", url, "--user", "alice", "--room", "lobby")
        await alice.expect(r"^= connected as alice$")
        await alice.expect(r"^= joined #lobby; here: alice$")
        bob = await Proc.start("chat", url, "--user", "bob")  # --room defaults to lobby
        await bob.expect(r"^= joined #lobby; here: alice, bob$")
        await alice.expect(r"^\* bob joined #lobby$")

        await alice.type("hello bob")
        await bob.expect(r"#lobby alice: hello bob  \(seq 1\)$")
        await bob.type("hi alice")
        await alice.expect(r"#lobby bob: hi alice  \(seq 2\)$")
        await bob.type("/msg alice psst")
        await alice.expect(r"\(private\) bob: psst$")

        status, body = await http_post(port, "/api/notify/alice",
                                       json.dumps({"message": "build finished"}))
        assert (status, json.loads(body)) == (200, {"status": "sent", "recipients": 1})
        await alice.expect(r"\(notification\) build finished$")

        await alice.type("/sub deploy.*")
        await alice.expect(r"^= subscribed to deploy\.\*$")
        await bob.type("/pub deploy.web {\"version\": 2}")
        await alice.expect(r'\(deploy\.web\) \{"version": 2\}$')
        await bob.type("/nonsense")
        await bob.expect(r"^! unknown command")
        await bob.type('/join bad room')
        await bob.expect(r"^! bad_request: invalid room name$")
        await bob.type("/ping")
        await bob.expect(r"^= pong$")
        assert not [line for line in bob.lines if "invalid room name" in line]  # shown once

        await bob.type("/quit")
        assert await bob.wait() == 0
        await alice.expect(r"^\* bob left #lobby$")
        assert alice.process.stdin is not None
        alice.process.stdin.close()  # end of input also quits
        assert await alice.wait() == 0
    finally:
        if server.process.returncode is None:
            server.process.send_signal(signal.SIGINT)
        assert await server.wait() == 0


async def test_chat_reports_a_refused_token() -> None:
    server = await Proc.start("serve", "--port", "0", "--jwt-secret", "s3cret")
    try:
        port = int((await server.expect(r"on http://127\.0\.0\.1:(\d+)")).group(1))
        chat = await Proc.start("chat", f"ws://127.0.0.1:{port}", "--token", "forged")
        await chat.expect(r"could not connect: auth: closed by the server: 4002")
        assert await chat.wait() == 1
    finally:
        server.process.send_signal(signal.SIGTERM)
        assert await server.wait() == 0


def test_serve_rejects_a_bad_tokens_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    bad = tmp_path / "tokens.txt"
    bad.write_text("just-one-field\n")
    assert main_serve(["--tokens", str(bad)]) == 2
    assert "expected 'TOKEN USER'" in capsys.readouterr().err
    assert main_serve(["--tokens", str(tmp_path / "missing.txt")]) == 2


@pytest.mark.parametrize("argv", [["--slow-consumer-grace", "-1"], ["--http-rate", "-5"],
                                  ["--http-burst", "0.5"]])
def test_serve_rejects_bad_limits(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main_serve(argv) == 2
    assert capsys.readouterr().err.startswith("rawws serve: ")


def test_config_from_args() -> None:
    args = serve_parser().parse_args([
        "--port", "9000", "--jwt-secret", "k", "--jwt-alg", "HS256", "--api-key", "a",
        "--allow-origin", "http://x", "--allow-origin", "http://y", "--slow-consumer",
        "drop-oldest", "--no-client-publish", "--rate", "5", "--max-connections-per-ip", "7",
        "--compression"])
    config = config_from_args(args)
    assert (config.port, config.jwt_secret, config.jwt_algorithms) == (9000, "k", ("HS256",))
    assert config.allowed_origins == ("http://x", "http://y")
    assert (config.slow_consumer, config.client_publish) == ("drop-oldest", False)
    assert (config.limits.rate, config.limits.max_connections_per_ip) == (5.0, 7)
    assert config.compression == "deflate"
    default = config_from_args(serve_parser().parse_args([]))
    assert (default.host, default.port, default.api_key) == ("127.0.0.1", 8765, None)
    # Compression is on by default; --no-compression turns it off.
    assert default.compression == "deflate"
    assert default.slow_consumer_grace == 1.0
    assert (default.limits.http_rate, default.limits.http_burst) == (20.0, 100.0)
    off = config_from_args(serve_parser().parse_args([
        "--no-compression", "--slow-consumer-grace", "0.5", "--http-rate", "0"]))
    assert off.compression is None
    assert off.slow_consumer_grace == 0.5
    assert off.limits.http_rate is None  # 0: no per-address limit
    tuned = config_from_args(serve_parser().parse_args(["--http-rate", "2", "--http-burst", "4"]))
    assert (tuned.limits.http_rate, tuned.limits.http_burst) == (2.0, 4.0)


STAMP = "2024-05-01T12:34:56.789Z"


@pytest.mark.parametrize(("event", "lines"), [
    ({"type": "welcome", "user_id": "al", "connection_id": "c"}, ["= connected as al"]),
    ({"type": "disconnected", "code": 1006, "reason": ""},
     ["= connection lost (1006); reconnecting..."]),
    ({"type": "message", "room": "r", "user_id": "bo", "content": "hi", "timestamp": STAMP,
      "seq": 3}, ["[12:34:56] #r bo: hi  (seq 3)"]),
    ({"type": "message", "room": "r", "user_id": "bo", "content": {"a": 1}},
     ['[--:--:--] #r bo: {"a": 1}']),
    ({"type": "joined", "room": "r", "users": ["a", "b"], "history": [
        {"type": "message", "room": "r", "user_id": "a", "content": "old", "timestamp": STAMP,
         "seq": 1}]}, ["[12:34:56] #r a: old  (seq 1)", "= joined #r; here: a, b"]),
    ({"type": "user_joined", "room": "r", "user_id": "c", "users": ["c"]}, ["* c joined #r"]),
    ({"type": "user_left", "room": "r", "user_id": "c", "users": []}, ["* c left #r"]),
    ({"type": "left", "room": "r"}, ["= left #r"]),
    ({"type": "welcome", "user_id": "al", "connection_id": "c", "offline_items": 2},
     ["= connected as al; 2 items waited for you"]),
    ({"type": "private", "from": "x", "content": "yo", "timestamp": STAMP},
     ["[12:34:56] (private) x: yo"]),
    ({"type": "private", "from": "x", "content": "yo", "timestamp": STAMP, "offline": True},
     ["[12:34:56] (private, offline) x: yo"]),
    ({"type": "notification", "message": "n", "timestamp": STAMP, "offline": True},
     ["[12:34:56] (notification, offline) n"]),
    ({"type": "notification", "message": "n", "timestamp": STAMP},
     ["[12:34:56] (notification) n"]),
    ({"type": "notification", "topic": "a.b", "message": [1], "timestamp": STAMP, "seq": 1},
     ["[12:34:56] (a.b) [1]"]),
    ({"type": "subscribed", "topics": ["a", "b.*"]}, ["= subscribed to a, b.*"]),
    ({"type": "unsubscribed", "topics": ["a"]}, ["= unsubscribed from a"]),
    ({"type": "published", "topic": "a", "recipients": 2}, ["= published to a (2 recipients)"]),
    ({"type": "private_ack", "target": "z", "status": "queued", "recipients": 0},
     ["= to z: queued (offline: delivered when they connect)"]),
    ({"type": "error", "code": "forbidden", "message": "no"}, ["! forbidden: no"]),
    ({"type": "pong"}, ["= pong"]),
    ({"type": "future-thing", "x": 1}, ['< {"type": "future-thing", "x": 1}']),
])
def test_format_event(event: dict[str, object], lines: list[str]) -> None:
    assert format_event(event) == lines


def test_view_shows_history_once_per_room() -> None:
    view = ChatView()
    joined = {"type": "joined", "room": "r", "users": ["a"], "history": [
        {"type": "message", "room": "r", "user_id": "a", "content": "x", "seq": 1}]}
    assert len(view.format(joined)) == 2
    assert view.format(joined) == ["= rejoined #r; here: a"]
