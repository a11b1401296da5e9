"""SIGTERM on ``rawws serve`` and ``rawws echo`` as real processes (issue 11 item 16): every
connection is closed with 1001, a client that never reads is aborted at the
``--shutdown-timeout`` deadline instead of holding the exit for its close timeout (10 s), and
the process exits 0.

Nothing is timed: the deadline is shown by what the server does at it (the warning it logs
when it aborts, the stalled client's connection ending without a close frame), not by a clock.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import rawws

from .processes import WAIT, ServerProcess, raw_upgrade

COMMANDS = {
    "serve": ["serve", "--port", "0", "--log-level", "warning"],
    "echo": ["echo", "--port", "0"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_sigterm_aborts_a_client_that_never_reads_and_exits_0(command: str) -> None:
    proc = await ServerProcess.start(*COMMANDS[command], "--shutdown-timeout", "0.5")
    try:
        port = await proc.port()
        path = "/ws?user_id=stalled" if command == "serve" else "/"
        # A client that completes the handshake, then never reads again: it never sees the
        # 1001, so it never answers it.
        reader, writer, head = await raw_upgrade(port, path)
        assert head.startswith(b"HTTP/1.1 101 "), head
        polite = await rawws.connect(f"ws://127.0.0.1:{port}{'/ws' if command == 'serve' else '/'}",
                                     compression=None, ping_interval=None)
        proc.keep_reading()
        proc.signal()
        # The polite client reads its 1001 and answers it.
        with contextlib.suppress(rawws.ConnectionClosed):
            async with asyncio.timeout(WAIT):
                while True:
                    await polite.recv()
        assert polite.close_code == 1001
        assert await proc.wait() == 0
        assert "shutdown: 1 connection(s) still open after 0.5 s: aborting" in proc.output
        # The stalled client's connection ended (reset or EOF), whatever it had not read.
        async with asyncio.timeout(WAIT):
            with contextlib.suppress(ConnectionResetError):
                while await reader.read(65536):
                    pass
        writer.close()
    finally:
        proc.kill()


@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_a_negative_shutdown_timeout_is_a_startup_error(command: str) -> None:
    proc = await ServerProcess.start(*COMMANDS[command], "--shutdown-timeout", "-1")
    try:
        assert await proc.wait() == 2
    finally:
        proc.kill()
    assert len(proc.lines) == 1, proc.lines
    assert proc.lines[0].startswith(f"rawws {command}: ") and "shutdown" in proc.lines[0]
