"""``python -m rawws echo`` and ``python -m rawws client``: smoke tests through subprocesses."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

TIMEOUT = 60  # a hang guard for each subprocess, not a performance bound


@pytest.fixture
def echo_server() -> Iterator[int]:
    """Run ``python -m rawws echo`` on an ephemeral port; yield the port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rawws", "echo", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"rawws echo server listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match, (line, process.stderr.read() if process.poll() is not None else "")
        yield int(match.group(1))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            returncode = process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        assert returncode == 0, process.stderr.read() if process.stderr else ""


def run_client(port: int, commands: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rawws", "client", f"ws://127.0.0.1:{port}/", *extra],
        input=commands, capture_output=True, text=True, timeout=TIMEOUT,
    )


def test_client_talks_to_echo_server(echo_server: int) -> None:
    result = run_client(echo_server,
                        "hello\nhéllo wörld\n/binary 0102ff\n/ping\n/ping abc\n/close 4000 bye\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"= connected to ws://127.0.0.1:{echo_server}/")
    assert "< hello" in lines
    assert "< héllo wörld" in lines
    assert "< (binary) 01 02 ff" in lines
    assert sum(bool(re.fullmatch(r"= pong after \d+\.\d\d ms", line)) for line in lines) == 2
    assert re.fullmatch(r"x closed: 4000 .*\(bye\)", lines[-1]), lines[-1]
    # Echoes come back in the order they were typed.
    echoed = [line for line in lines if line.startswith("< ")]
    assert echoed == ["< hello", "< héllo wörld", "< (binary) 01 02 ff"]


def test_client_end_of_input_closes_normally(echo_server: int) -> None:
    # The ping's round trip makes sure the echo is back before end of input closes: a message
    # arriving together with the close could not be echoed any more.
    result = run_client(echo_server, "just this\n/ping\n", "--no-compression")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "(extensions" not in lines[0]
    assert "< just this" in lines
    assert lines[-1].startswith("x closed: 1000")


def test_client_reports_bad_commands_and_goes_on(echo_server: int) -> None:
    result = run_client(echo_server, "/nope\n/binary zz\n/help\nafter\n/ping\n/quit\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("! unknown command /nope") for line in lines)
    assert any(line.startswith("! ") and "zz" not in line for line in lines[2:])
    assert "< after" in lines
    assert lines[-1].startswith("x closed: 1000")


def test_client_cannot_connect() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        result = run_client(port, "")
    assert result.returncode == 1
    assert result.stderr.startswith("! could not connect")


def test_echo_server_max_size_option() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rawws", "echo", "--host", "127.0.0.1", "--port", "0",
         "--max-size", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().rsplit(":", 1)[1])
        result = run_client(port, "0123456789\n/ping\n01234567890\n")
        lines = result.stdout.splitlines()
        assert "< 0123456789" in lines
        assert lines[-1].startswith("x closed: 1009")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 0
