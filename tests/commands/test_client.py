"""``rawws client`` as a Unix tool, through real subprocesses against real servers.

Nothing here is timed: ``--wait`` is the client's own quiet period (part of what is tested),
and every wait on a process has a generous hang guard.
"""

from __future__ import annotations

import asyncio
import os
import pty
import re
import socket
import sys
from typing import Any

import pytest

import rawws

from ..processes import ROOT, WAIT

HOST = "127.0.0.1"


async def client(*args: str, stdin: bytes | None = b"") -> tuple[int, bytes, str]:
    """Run ``python -m rawws client ARGS`` with ``stdin`` (None: /dev/null); return the
    exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rawws", "client", *args, cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(WAIT):
        out, err = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, out, err.decode()


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


def uri(server: rawws.Server, path: str = "/") -> str:
    return f"ws://{HOST}:{server.port}{path}"


async def test_lines_from_a_pipe_are_sent_and_replies_printed() -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        status, out, err = await client(uri(server), stdin=b"a\nb\n\xc3\xa9t\xc3\xa9\n")
    assert (status, err) == (0, "")
    assert out.decode().splitlines() == ["a", "b", "été"]  # verbatim, in order


async def test_end_of_input_waits_for_late_replies() -> None:
    """The server answers the last line only after a delay: the client, at end of input,
    waits while the server is not quiet for --wait seconds, so the late reply is printed."""
    async def slow(ws: Any) -> None:
        async for message in ws:
            await asyncio.sleep(0.3)
            await ws.send(f"late {message}")
            await ws.send("later still")

    async with rawws.serve(slow, HOST, 0) as server:
        status, out, _ = await client(uri(server), "--wait", "2", stdin=b"x\n")
    assert status == 0
    assert out.decode().splitlines() == ["late x", "later still"]


async def test_dev_null_and_empty_input_exit_0_with_a_normal_close() -> None:
    codes: list[int | None] = []

    async def handler(ws: Any) -> None:
        await ws.wait_closed()
        codes.append(ws.close_code)

    async with rawws.serve(handler, HOST, 0) as server:
        assert (await client(uri(server), stdin=None))[:2] == (0, b"")
        assert (await client(uri(server), stdin=b""))[:2] == (0, b"")
    assert codes == [1000, 1000]


async def test_execute_binary_and_show_close() -> None:
    async with rawws.serve(echo, HOST, 0) as server:
        status, out, err = await client(uri(server), "-x", "one", "-x", "two", "--show-close")
        assert (status, out) == (0, b"one\ntwo\n")
        assert err == "closed: 1000 (normal closure)\n"
        data = bytes(range(256)) * 10
        status, out, _ = await client(uri(server), "--binary", stdin=data)
        assert (status, out) == (0, data)


async def test_headers_subprotocol_origin_and_no_compression() -> None:
    seen: list[Any] = []

    async def handler(ws: Any) -> None:
        request = ws.request
        seen.append((request.headers.get("X-One"), request.headers.get("X-Two"),
                     request.headers.get("Origin"), ws.subprotocol,
                     [e.name for e in ws.extensions]))
        await ws.send("ok")

    async with rawws.serve(handler, HOST, 0, subprotocols=["v2", "v1"]) as server:
        status, out, _ = await client(uri(server), "-H", "X-One: 1", "--header", "X-Two:  two ",
                                      "-s", "v1", "--origin", "https://o.example",
                                      "--no-compression", stdin=None)
    assert (status, out) == (0, b"ok\n")
    assert seen == [("1", "two", "https://o.example", "v1", [])]


async def test_the_server_closing_with_an_error_is_a_failure() -> None:
    async def refuse(ws: Any) -> None:
        await ws.recv()
        await ws.close(1011, "went wrong")

    async with rawws.serve(refuse, HOST, 0) as server:
        status, _, err = await client(uri(server), stdin=b"hi\n")
    assert status == 1
    assert err == "rawws client: connection closed: 1011 (internal error) went wrong\n"


async def test_a_refused_handshake_shows_the_status_and_the_body() -> None:
    def forbid(connection: Any, request: Any) -> Any:
        return connection.respond(403, "members only\nsecond line\n")

    async with rawws.serve(echo, HOST, 0, process_request=forbid) as server:
        port = server.port
        status, out, err = await client(uri(server), stdin=None)
    assert (status, out) == (1, b"")
    assert err == (f"rawws client: the server at {HOST}:{port} refused the WebSocket "
                   "handshake: HTTP 403 Forbidden: members only\n")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])  # bound, not listening: connections are refused


@pytest.mark.parametrize("target, message", [
    (lambda: f"ws://{HOST}:{closed_port()}/", "cannot connect to 127.0.0.1:{port}: connection "
     "refused (is the server running?)"),
    (lambda: "ws://no-such-host.invalid/", "cannot resolve no-such-host.invalid: "),
])
async def test_network_failures_are_one_line(target: Any, message: str) -> None:
    address = target()
    status, out, err = await client(address, stdin=None)
    assert (status, out) == (1, b"")
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    port = address.rsplit(":", 1)[-1].strip("/")
    assert lines[0].startswith("rawws client: " + message.format(port=port))


async def test_tls_failure_is_one_line() -> None:
    async with rawws.serve(echo, HOST, 0) as server:  # plain ws:// server, wss:// client
        status, _, err = await client(f"wss://{HOST}:{server.port}/", stdin=None)
    assert status == 1
    assert re.fullmatch(rf"rawws client: TLS with {HOST}:\d+ failed: .+\n", err), err


async def test_usage_errors_exit_2() -> None:
    for args in (["http://example.com/"], ["-H", "no colon", "ws://x/"],
                 ["--binary", "-x", "a", "ws://x/"], ["--wait", "-1", "ws://x/"], []):
        status, out, err = await client(*args, stdin=None)
        assert status == 2, (args, err)
        assert out == b"" and "Traceback" not in err and err.count("\n") == 1, err


async def test_interactive_on_a_terminal() -> None:
    """On a terminal (a pseudo-terminal here) lines are commands or text, and status lines
    start with = and x."""
    async with rawws.serve(echo, HOST, 0) as server:
        primary, secondary = pty.openpty()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rawws", "client", uri(server), cwd=ROOT,
            stdin=secondary, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        os.close(secondary)
        try:
            assert process.stdout is not None
            lines: list[str] = []

            async def expect(pattern: str) -> None:
                async with asyncio.timeout(WAIT):
                    while not any(re.search(pattern, line) for line in lines):
                        raw = await process.stdout.readline()  # type: ignore[union-attr]
                        assert raw, lines
                        lines.append(raw.decode().rstrip("\n"))

            await expect(r"^= connected to ws://127\.0\.0\.1:\d+/ \(extensions: "
                         r"permessage-deflate\); type /help")
            os.write(primary, b"hello\n/binary 0102ff\n//slash\n/nope\n/ping\n")
            await expect(r"^< hello$")
            await expect(r"^< \(binary\) 01 02 ff$")
            await expect(r"^< /slash$")
            await expect(r"^! unknown command /nope")
            await expect(r"^= pong after \d+\.\d\d ms$")
            os.write(primary, b"/close 4000 bye\n")
            async with asyncio.timeout(WAIT):
                rest, err = await process.communicate()
            lines += rest.decode().splitlines()
            assert lines[-1] == "x closed: 4000 application-defined (bye)"
            assert process.returncode == 0 and err == b""
        finally:
            os.close(primary)
            if process.returncode is None:
                process.kill()
                await process.wait()
