"""``rawws echo`` through real processes: it echoes, limits, and fails in one line."""

from __future__ import annotations

import re
import signal

import rawws

from ..processes import ServerProcess, run


async def test_echo_serves_until_sigterm_and_enforces_max_size() -> None:
    proc = await ServerProcess.start("echo", "--port", "0", "--max-size", "10",
                                     "--log-level", "info")
    try:
        port = await proc.port()
        async with rawws.connect(f"ws://127.0.0.1:{port}/room?token=secret") as ws:
            await ws.send("0123456789")
            assert await ws.recv() == "0123456789"
            await ws.send("01234567890")
            try:
                await ws.recv()
            except rawws.ConnectionClosedError as exc:
                assert exc.code == 1009
        line = await proc.expect(r": accepted GET /room\?token=\*\*\*$")
        assert "secret" not in line.string and "secret" not in proc.output
        proc.signal(signal.SIGTERM)
        assert await proc.wait() == 0
    finally:
        proc.kill()


async def test_port_in_use_is_one_line_and_status_1() -> None:
    async with rawws.serve(None, "127.0.0.1", 0) as server:
        port = server.port
        status, output = await run("echo", "--port", str(port))
    assert status == 1
    assert re.fullmatch(rf"rawws echo: cannot listen on 127\.0\.0\.1:{port}: "
                        r"address already in use", output), output


async def test_bad_option_is_one_line_and_status_2() -> None:
    status, output = await run("echo", "--port", "nope")
    assert status == 2
    assert output.count("\n") == 0 and "--help" in output, output
