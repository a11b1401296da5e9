"""In-process micro-benchmarks of the hot paths in ``rawws/sansio`` (issue 6, scenario 6).

    python -m benchmarks.micro                 # a table per section
    python -m benchmarks.micro --json          # what benchmarks/run.py records
    python -m benchmarks.micro --only mask,frame --scale 0.2

Sections (the code cites them by name):

* ``mask``: masking throughput per payload size, for the two pure-Python strategies
  (one big-integer XOR; ``bytes.translate`` over four strided lanes), the chosen
  ``rawws.sansio.mask.apply_mask``, and websockets' C ``apply_mask`` as a reference.
* ``frame``: building a ``Frame`` as a ``NamedTuple`` against a frozen slotted dataclass (and a
  plain tuple), plus reading one field.
* ``serialize``: ``rawws.sansio.frames.serialize_frame`` per size, unmasked (server) and masked
  (client), next to websockets' ``Frame.serialize``.
* ``parse``: one masked client frame fed to ``ServerProtocol.receive_data`` and collected with
  ``events_received`` (one frame per call, as in request/response), next to the floor's parse
  loop (which also builds the echo) and websockets' sans-I/O ``ServerProtocol``.
* ``broadcast``: ``rawws.broadcast`` of a 1 KiB JSON message per recipient, plain, with
  permessage-deflate compressed once for all (``server_no_context_takeover``) and compressed per
  connection (context takeover): the compress-once path of issue 4.

Each figure is the best of 5 timing repeats (the least disturbed by other tenants of the machine);
``--scale`` shortens or lengthens every repeat.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

SIZES_MASK = [8, 64, 125, 512, 1024, 2048, 4096, 8192, 16384, 65536, 1 << 20]
SIZES_FRAME = [8, 64, 1024, 16384, 65536, 1 << 20]
REQUEST = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def timeit(fn: Callable[[], Any], scale: float, repeats: int = 5) -> float:
    """Seconds per call of ``fn``: calibrated to ~0.05 s x scale per repeat, best of repeats."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed > 0.01 * scale or n >= 1 << 24:
            break
        n *= 4
    n = max(1, int(n * 0.05 * scale / max(elapsed, 1e-9)))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n >> 20} MiB"
    if n >= 1024:
        return f"{n >> 10} KiB"
    return f"{n} B"


# -- mask ---------------------------------------------------------------------------------------


def section_mask(scale: float) -> dict[str, Any]:
    from rawws.sansio import mask as rawws_mask

    tables = rawws_mask._XOR_TABLES

    def int_xor(data: bytes, key: bytes) -> bytes:
        n = len(data)
        q, r = divmod(n, 4)
        k = int.from_bytes(key * q + key[:r], "little")
        return (int.from_bytes(data, "little") ^ k).to_bytes(n, "little")

    def translate(data: bytes, key: bytes) -> bytes:
        out = bytearray(data)
        out[0::4] = data[0::4].translate(tables[key[0]])
        out[1::4] = data[1::4].translate(tables[key[1]])
        out[2::4] = data[2::4].translate(tables[key[2]])
        out[3::4] = data[3::4].translate(tables[key[3]])
        return bytes(out)

    def translate_zeroed(data: bytes, key: bytes) -> bytearray:
        # Same lanes, but into a fresh zeroed buffer (calloc: no copy of the input first) and
        # handed back as the bytearray (no final copy to bytes).
        out = bytearray(len(data))
        out[0::4] = data[0::4].translate(tables[key[0]])
        out[1::4] = data[1::4].translate(tables[key[1]])
        out[2::4] = data[2::4].translate(tables[key[2]])
        out[3::4] = data[3::4].translate(tables[key[3]])
        return out

    def int_xor_chunked(data: bytes, key: bytes, chunk: int = 1 << 16) -> bytes:
        # Big-integer XOR over cache-sized chunks (the whole-payload int is slow past ~64 KiB).
        if len(data) <= chunk:
            return int_xor(data, key)
        k = int.from_bytes(key * (chunk // 4), "little")
        parts = []
        for i in range(0, len(data), chunk):
            part = data[i : i + chunk]
            if len(part) == chunk:
                parts.append((int.from_bytes(part, "little") ^ k).to_bytes(chunk, "little"))
            else:
                parts.append(int_xor(part, key))
        return b"".join(parts)

    candidates: dict[str, Callable[[bytes, bytes], bytes | bytearray]] = {
        "int XOR": int_xor,
        "translate lanes": translate,
        "rawws apply_mask_python": rawws_mask.apply_mask_python,
        "translate, zeroed out": translate_zeroed,
        "int XOR per 64 KiB": int_xor_chunked,
    }
    try:
        from rawws.sansio._speedups import apply_mask as rawws_c

        candidates["rawws _speedups (C)"] = rawws_c
    except ImportError:  # not built
        pass
    try:
        from websockets.speedups import apply_mask as ws_c  # type: ignore[import-untyped]

        candidates["websockets C (ref)"] = ws_c
    except ImportError:
        pass
    key = b"\x37\xfa\x21\x3d"
    rows = []
    for size in SIZES_MASK:
        data = os.urandom(size)
        expected = int_xor(data, key)
        row: list[Any] = [_size(size)]
        for fn in candidates.values():
            assert bytes(fn(data, key)) == expected
            secs = timeit(lambda fn=fn, data=data: fn(data, key), scale)
            row.append(size / secs / 1e6)
        rows.append(row)
    return {
        "id": "mask", "title": "mask", "unit": "MB/s", "chart": "sizes",
        "columns": list(candidates), "rows": rows,
        "note": "Throughput of XOR-ing a payload with a 4-byte key (higher is better). "
                "rawws/sansio/mask.py's pure-Python reference switches from int XOR to translate "
                f"lanes at its threshold ({rawws_mask._TRANSLATE_THRESHOLD} bytes); rawws's "
                "optional C accelerator is what apply_mask is when built. 'translate, zeroed out' "
                "writes the lanes into bytearray(n) and returns it (two copies fewer); 'int XOR "
                "per 64 KiB' keeps the big integers cache-sized.",
    }


# -- frame --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class FrameDataclass:
    opcode: int
    payload: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False


class FrameNamedTuple(NamedTuple):
    opcode: int
    payload: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False


def section_frame(scale: float) -> dict[str, Any]:
    try:
        from rawws.sansio.frames import Frame
    except ImportError:
        Frame = FrameNamedTuple  # type: ignore[misc,assignment]
    payload = b"x" * 64
    nt = Frame(2, payload, True, False, False, False)
    dc = FrameDataclass(2, payload, True, False, False, False)
    tp = (2, payload, True, False, False, False)
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("build, 2 args", lambda: Frame(2, payload)),
        ("build, 6 args", lambda: Frame(2, payload, True, False, False, False)),
        ("build, keywords", lambda: Frame(opcode=2, payload=payload, fin=True, rsv1=True)),
        ("read .payload", lambda: nt.payload),
    ]
    dcases: list[Callable[[], Any]] = [
        lambda: FrameDataclass(2, payload),
        lambda: FrameDataclass(2, payload, True, False, False, False),
        lambda: FrameDataclass(opcode=2, payload=payload, fin=True, rsv1=True),
        lambda: dc.payload,
    ]
    tcases: list[Callable[[], Any] | None] = [
        lambda: (2, payload),
        lambda: (2, payload, True, False, False, False),
        None,
        lambda: tp[1],
    ]
    rows = []
    for (label, fn), dfn, tfn in zip(cases, dcases, tcases, strict=True):
        rows.append([
            label,
            timeit(fn, scale) * 1e9,
            timeit(dfn, scale) * 1e9,
            timeit(tfn, scale) * 1e9 if tfn else None,
        ])
    return {
        "id": "frame", "title": "frame", "unit": "ns per operation",
        "columns": ["Frame (NamedTuple)", "frozen slotted dataclass", "plain tuple"],
        "rows": rows,
        "note": "Cost of building one frame value and of reading a field (lower is better).",
    }


# -- serialize ----------------------------------------------------------------------------------


def section_serialize(scale: float) -> dict[str, Any]:
    from rawws.sansio.frames import serialize_frame

    columns = ["rawws unmasked", "rawws masked"]
    ws_frame: Any = None
    try:
        from websockets.frames import Frame as WsFrame
        from websockets.frames import Opcode as WsOpcode

        ws_frame = (WsFrame, WsOpcode)
        columns += ["websockets unmasked (ref)", "websockets masked (ref)"]
    except ImportError:
        pass
    key = b"\x01\x02\x03\x04"
    rows = []
    for size in SIZES_FRAME:
        payload = os.urandom(size)
        row: list[Any] = [_size(size)]
        row.append(timeit(lambda p=payload: serialize_frame(2, p), scale) * 1e9)
        row.append(timeit(lambda p=payload: serialize_frame(2, p, masking_key=key), scale) * 1e9)
        if ws_frame:
            wf = ws_frame[0](ws_frame[1].BINARY, payload)
            row.append(timeit(lambda wf=wf: wf.serialize(mask=False), scale) * 1e9)
            row.append(timeit(lambda wf=wf: wf.serialize(mask=True), scale) * 1e9)
        rows.append(row)
    return {
        "id": "serialize", "title": "serialize", "unit": "ns per frame", "chart": "sizes",
        "columns": columns, "rows": rows,
        "note": "Building the bytes of one binary frame (lower is better). Masked frames include "
                "masking; websockets' masked figure includes drawing a random key.",
    }


# -- parse --------------------------------------------------------------------------------------


def _client_frame(payload: bytes, key: bytes = b"\x11\x22\x33\x44") -> bytes:
    from rawws.sansio.frames import serialize_frame

    return serialize_frame(2, payload, masking_key=key)


def _rawws_parser() -> Callable[[bytes], Any] | None:
    try:
        from rawws.sansio.server import ServerProtocol
    except ImportError:
        return None
    p = ServerProtocol(max_size=None)
    p.receive_data(REQUEST)
    request = p.events_received()[0]
    p.send_response(p.accept(request))
    p.data_to_send()

    def parse(data: bytes) -> Any:
        p.receive_data(data)
        return p.events_received()

    return parse


def _floor_parser() -> Callable[[bytes], Any]:
    from .servers.floor import Floor

    class Sink:
        def write(self, data: bytes) -> None:
            pass

        def writelines(self, data: list[bytes]) -> None:
            pass

    f = Floor()
    f.connection_made(Sink())  # type: ignore[arg-type]
    f.data_received(REQUEST)
    return f.data_received


def _websockets_parser() -> Callable[[bytes], Any] | None:
    try:
        from websockets.server import ServerProtocol
    except ImportError:
        return None
    p = ServerProtocol(max_size=None)
    p.receive_data(REQUEST)
    request = p.events_received()[0]
    p.send_response(p.accept(request))
    p.data_to_send()

    def parse(data: bytes) -> Any:
        p.receive_data(data)
        return p.events_received()

    return parse


def section_parse(scale: float) -> dict[str, Any]:
    parsers = {
        "rawws ServerProtocol": _rawws_parser(),
        "floor loop (+echo)": _floor_parser(),
        "websockets ServerProtocol (ref)": _websockets_parser(),
    }
    parsers = {k: v for k, v in parsers.items() if v is not None}
    rows = []
    for size in SIZES_FRAME:
        payload = os.urandom(size)
        frame = _client_frame(payload)
        row: list[Any] = [_size(size)]
        for name, parse in parsers.items():
            if name.startswith("rawws"):
                events = parse(frame)
                assert events == [payload], "rawws parsed the frame wrong"
            row.append(timeit(lambda parse=parse, frame=frame: parse(frame), scale) * 1e9)
        rows.append(row)
    return {
        "id": "parse", "title": "parse", "unit": "ns per frame", "chart": "sizes",
        "columns": list(parsers), "rows": rows,
        "note": "One masked binary frame per receive_data call, message events collected "
                "(lower is better). The floor's loop also unmasks and builds its echo.",
    }


class _NullTransport:
    """Just enough of an asyncio transport for a connection that is never read from."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False


_UPGRADE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")


def section_broadcast(scale: float) -> dict[str, Any]:
    """What one ``rawws.broadcast`` costs per recipient, with and without compress-once."""
    import asyncio

    import rawws
    from rawws.aio.server import Server

    message = json.dumps({"type": "message", "room": "lobby", "user_id": "alice",
                          "content": "the quick brown fox jumps over the lazy dog " * 20,
                          "timestamp": "2026-11-21T12:00:00Z", "seq": 1})[:1024]
    configs = {
        "plain": None,
        "deflate, compressed once (server_no_context_takeover)": [
            rawws.ServerPerMessageDeflateFactory(server_no_context_takeover=True)],
        "deflate, per connection (context takeover)": [
            rawws.ServerPerMessageDeflateFactory()],
    }

    async def measure() -> list[list[Any]]:
        rows = []
        for count in (100, 1000):
            row: list[Any] = [f"{count} conns"]
            for extensions in configs.values():
                server = Server(rawws.Listener(), ping_interval=None, extensions=extensions or [],
                                compression=None)
                connections = []
                for _ in range(count):
                    ws = server._make_connection()
                    ws.connection_made(_NullTransport())  # type: ignore[arg-type]
                    ws.data_received(_UPGRADE)
                    connections.append(ws)
                sent = rawws.broadcast(connections, message)
                assert sent == count, "every connection is open"
                seconds = timeit(lambda c=connections: rawws.broadcast(c, message),
                                 scale * 0.5)
                row.append(seconds / count * 1e9)
            rows.append(row)
        return rows

    rows = asyncio.run(measure())
    return {
        "id": "broadcast", "title": "broadcast", "unit": "ns per recipient", "chart": None,
        "columns": list(configs), "rows": rows,
        "note": "One 1 KiB JSON text message to every connection with rawws.broadcast (lower is "
                "better). With server_no_context_takeover every compressed connection shares one "
                "broadcast_key, so the message is compressed once for all of them; with context "
                "takeover it is compressed once per connection.",
    }


SECTIONS = {
    "mask": section_mask,
    "frame": section_frame,
    "serialize": section_serialize,
    "parse": section_parse,
    "broadcast": section_broadcast,
}


def run(only: list[str], scale: float) -> dict[str, Any]:
    out: dict[str, Any] = {"sections": [], "errors": {}}
    for name in only:
        try:
            out["sections"].append(SECTIONS[name](scale))
        except Exception as exc:  # a section that cannot run yet (rawws still landing)
            out["errors"][name] = f"{type(exc).__name__}: {exc}"
    out["note"] = (f"Python {sys.version.split()[0]}, one process pinned to the server CPU when "
                   "run by benchmarks/run.py; best of 5 repeats.")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    result = run([s for s in args.only.split(",") if s], args.scale)
    if args.json:
        print(json.dumps(result))
    else:
        from .report import micro_text

        print(micro_text(result))
        for name, err in result["errors"].items():
            print(f"-- micro: {name}: skipped ({err})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
