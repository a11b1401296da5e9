"""A few cases end to end over real sockets on 127.0.0.1: against rawws' server, rawws' client,
and a deliberately lax server that the suite must catch. Nothing here is timed; the cases'
own timers (at most a few seconds for this subset) end every case."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import rawws
from rawws.__main__ import EchoListener
from rawws.conformance.runner import FuzzingServer, Results, run_fuzzing_client
from rawws.sansio.handshake import accept_key
from rawws.sansio.mask import apply_mask
from rawws.tools.wire import build_frame, decode_header, rsv_number

HOST = "127.0.0.1"
#: Quick cases from every family: sizes, pings, RSV, opcodes, fragments, UTF-8, close codes,
#: one 9.x, auto-fragmentation and two compression cases (deflate negotiated both ways).
SUBSET = ["1.1.1", "1.1.6", "1.2.8", "2.4", "2.5", "2.10", "3.2", "3.4", "4.2.4", "5.6", "5.15",
          "6.2.3", "6.3.1", "6.12.8", "7.1.1", "7.1.6", "7.3.6", "7.5.1", "7.7.10", "7.9.3",
          "7.13.1", "9.1.1", "10.1.1", "12.1.1", "13.3.1"]


def verdicts(results: Results, agent: str) -> dict[str, tuple[str, str]]:
    return {case_id: (r["behavior"], r["behaviorClose"])
            for case_id, r in results.by_agent[agent].items()}


def informational_or_ok(found: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    return {k: v for k, v in found.items()
            if v not in (("OK", "OK"), ("INFORMATIONAL", "INFORMATIONAL"))}


async def test_rawws_server_passes_the_subset(tmp_path: Path) -> None:
    async with rawws.serve(EchoListener(), HOST, 0, max_size=None, compression="deflate",
                           ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        results = Results(tmp_path)
        await run_fuzzing_client(f"ws://{HOST}:{port}", SUBSET, results, agent="rawws", jobs=4)
    found = verdicts(results, "rawws")
    assert sorted(found) == sorted(SUBSET)
    assert informational_or_ok(found) == {}
    assert found["7.13.1"] == ("INFORMATIONAL", "INFORMATIONAL")
    assert results.by_agent["rawws"]["2.5"]["remoteCloseCode"] == 1002
    assert results.by_agent["rawws"]["6.3.1"]["remoteCloseCode"] == 1007
    assert results.by_agent["rawws"]["12.1.1"]["permessageDeflate"] is not None


async def test_rawws_client_passes_the_subset(tmp_path: Path) -> None:
    results = Results(tmp_path)
    fuzzer = FuzzingServer(SUBSET, results, stream=open("/dev/null", "w"))  # noqa: SIM115
    port = await fuzzer.start(HOST, 0)
    base = f"ws://{HOST}:{port}"
    options: dict[str, Any] = {"max_size": None, "compression": "deflate", "ping_interval": None}
    async with rawws.connect(f"{base}/getCaseCount", **options) as ws:
        count = json.loads(await ws.recv())
    assert count == len(SUBSET)
    for n in range(1, count + 1):
        try:
            async with rawws.connect(f"{base}/runCase?case={n}&agent=rawws", **options) as ws:
                async for message in ws:
                    await ws.send(message)
        except rawws.ConnectionClosed:
            pass  # the fuzzer breaks connections on purpose
    async with rawws.connect(f"{base}/updateReports?agent=rawws", **options) as ws:
        await ws.wait_closed()
    fuzzer.stopped.set()
    await fuzzer.serve_until_stopped()
    found = verdicts(results, "rawws")
    assert sorted(found) == sorted(SUBSET)
    assert informational_or_ok(found) == {}
    index = json.loads((tmp_path / "index.json").read_text())
    assert sorted(index["rawws"]) == sorted(SUBSET)


async def lax_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server that echoes every frame as it came (RSV bits, opcode and all), answers pings
    and closes, and checks nothing: no UTF-8, no reserved bits, no close codes."""
    head = await reader.readuntil(b"\r\n\r\n")
    key = next(line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                 + accept_key(key).encode() + b"\r\n\r\n")
    buffer = b""
    while True:
        header = decode_header(buffer)
        if header is None or len(buffer) < header.header_length + header.length:
            data = await reader.read(65536)
            if not data:
                break
            buffer += data
            continue
        start = header.header_length
        payload = buffer[start:start + header.length]
        buffer = buffer[start + header.length:]
        if header.mask_key:
            payload = bytes(apply_mask(payload, header.mask_key))
        opcode = 10 if header.opcode == 9 else header.opcode
        writer.write(build_frame(opcode, payload, fin=header.fin, rsv=rsv_number(header)))
        if header.opcode == 8:
            break
    await writer.drain()
    writer.close()


async def test_a_lax_server_fails_what_it_does_not_check(tmp_path: Path) -> None:
    server = await asyncio.start_server(lax_echo, HOST, 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        results = Results(tmp_path)
        await run_fuzzing_client(f"ws://{HOST}:{port}", ["1.1.1", "3.1", "4.1.1", "6.3.1",
                                                        "7.9.1"], results, agent="lax", jobs=5)
    found = verdicts(results, "lax")
    assert found["1.1.1"] == ("OK", "OK")
    # The bad frame came back instead of a close: the fuzzer failed the connection itself
    # (and dropped the echo, a bad frame in its turn): closed by the wrong endpoint.
    assert found["3.1"] == ("OK", "FAILED")
    assert found["4.1.1"] == ("OK", "FAILED")  # nothing came back, but nor did a close
    assert found["6.3.1"] == ("FAILED", "FAILED")  # unseen invalid UTF-8 fails the case
    assert found["7.9.1"] == ("FAILED", "WRONG CODE")  # close code 0 echoed back


async def test_a_refused_connection_is_a_harness_error(tmp_path: Path) -> None:
    from rawws.conformance.runner import HarnessError

    probe = await asyncio.start_server(lambda r, w: None, HOST, 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    try:
        await run_fuzzing_client(f"ws://{HOST}:{port}", ["1.1.1"], Results(tmp_path))
    except HarnessError as exc:
        assert "could not connect" in str(exc)
    else:
        raise AssertionError("no HarnessError")
