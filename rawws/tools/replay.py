"""``rawws replay WIRELOG.jsonl --target ws://HOST:PORT/PATH``: replay a capture against a server.

Owns: reading one connection out of a wire log (:func:`load_capture`), replaying its client
side (:func:`replay`) and comparing what the server answers with what the capture recorded
(:func:`compare`); and the command line.

Does not own: decoding the server's bytes (:class:`~rawws.tools.decode.ConnectionDecoder`, the
same decoder as the tracing proxy, so compressed answers are compared inflated).

Theory of operation:

1. The handshake: a fresh upgrade request to ``--target`` (its path and query), with a fresh
   ``Sec-WebSocket-Key``, carrying the captured request's other headers (extension offer,
   subprotocols, origin, credentials). ``Host`` is the target's.
2. Client frames are sent as captured: opcode (reserved ones included), FIN, RSV bits and the
   payload as it was on the wire (still compressed where it was: the server's inflater sees the
   same bytes in the same order, so it inflates them the same way), masked with a fresh key.
   Lengths are encoded minimally.
3. Order: before sending a client frame, the replay waits (``--timeout`` seconds at most) until
   the server has sent as many frames as preceded that client frame in the capture.
4. After the last client frame, it waits for the rest of the server's frames: when that frame
   was a close frame, until the server closes the connection (so that frames the capture does
   not have are seen too), else until the server has sent as many as the capture holds (or
   closes); ``--timeout`` bounds each wait.
5. Comparison, frame by frame in order: opcode, FIN, and the application data (the payload,
   inflated when compressed; for close frames the code and reason). Masks and timing are
   ignored. The first difference is reported with both frames; missing or extra frames too.

A capture recorded with redaction (the default of ``rawws trace``) cannot be replayed: its
secrets are gone. Record it with ``--show-secrets``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..aio.client import parse_uri
from ..errors import InvalidURI
from ..redact import REDACTED
from ..sansio.frames import serialize_frame
from ..wirelog import Event, FrameEvent, HandshakeEvent, format_event, read_jsonl
from .decode import ConnectionDecoder

__all__ = ["Capture", "ReplayResult", "add_parser", "compare", "load_capture", "replay", "run"]

#: Request headers that belong to one connection and are never replayed.
_PER_CONNECTION = frozenset({"host", "sec-websocket-key", "content-length"})


class CaptureError(ValueError):
    """The capture cannot be replayed (the message says why)."""


@dataclasses.dataclass(frozen=True)
class Capture:
    """One connection of a wire log: the handshake heads and the frames both ways, in order."""

    conn: int
    request: HandshakeEvent
    response: HandshakeEvent | None
    frames: tuple[FrameEvent, ...]

    @property
    def client_frames(self) -> list[FrameEvent]:
        return [f for f in self.frames if f.dir == "c2s"]

    @property
    def server_frames(self) -> list[FrameEvent]:
        return [f for f in self.frames if f.dir == "s2c"]

    @property
    def status(self) -> int | None:
        if self.response is None:
            return None
        return _status_of(self.response.line)


def _status_of(line: str) -> int | None:
    parts = line.split(" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def load_capture(events: Iterable[Event], conn: int | None = None) -> Capture:
    """The connection ``conn`` of a wire log (default: the first one with a request head)."""
    events = list(events)
    if conn is None:
        conn = next((e.conn for e in events if isinstance(e, HandshakeEvent) and e.dir == "c2s"),
                    None)
        if conn is None:
            raise CaptureError("the capture has no opening handshake")
    mine = [e for e in events if e.conn == conn]
    request = next((e for e in mine if isinstance(e, HandshakeEvent) and e.dir == "c2s"), None)
    if request is None:
        raise CaptureError(f"connection {conn} has no opening handshake in the capture")
    response = next((e for e in mine if isinstance(e, HandshakeEvent) and e.dir == "s2c"), None)
    frames = tuple(e for e in mine if isinstance(e, FrameEvent))
    for name, value in request.headers:
        if REDACTED in value and name.lower() not in _PER_CONNECTION:
            raise CaptureError(f"the capture is redacted (header {name}: {value}): record it "
                               "with rawws trace --show-secrets to replay it")
    for frame in frames:
        if frame.dir == "c2s" and (frame.redacted or frame.payload is None):
            raise CaptureError(f"client frame {frame.index} is redacted in the capture: record "
                               "it with rawws trace --show-secrets to replay it")
        if frame.dir == "c2s" and frame.truncated:
            raise CaptureError(f"client frame {frame.index} is truncated in the capture "
                               f"({frame.length} bytes): record it with a larger --max-payload")
    return Capture(conn, request, response, frames)


@dataclasses.dataclass
class ReplayResult:
    """What the server did: its response status, its frames, and how the replay ended."""

    status: int | None = None
    frames: list[FrameEvent] = dataclasses.field(default_factory=list)
    events: list[Event] = dataclasses.field(default_factory=list)
    closed: bool = False
    timed_out: str | None = None  # what the replay was waiting for when the timeout hit


def _request_bytes(capture: Capture, host: str, port: int, resource: str,
                   random: Callable[[int], bytes]) -> bytes:
    method, _, rest = capture.request.line.partition(" ")
    version = rest.rpartition(" ")[2] or "HTTP/1.1"
    key = base64.b64encode(random(16)).decode()
    host_header = f"[{host}]" if ":" in host else host
    lines = [f"{method or 'GET'} {resource} {version}", f"Host: {host_header}:{port}"]
    for name, value in capture.request.headers:
        lower = name.lower()
        if lower == "sec-websocket-key":
            lines.append(f"{name}: {key}")
        elif lower not in _PER_CONNECTION:
            lines.append(f"{name}: {value}")
    if not any(n.lower() == "sec-websocket-key" for n, _ in capture.request.headers):
        lines.append(f"Sec-WebSocket-Key: {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _frame_bytes(frame: FrameEvent, random: Callable[[int], bytes]) -> bytes:
    assert frame.payload is not None
    rsv = (0x40 if frame.rsv1 else 0) | (0x20 if frame.rsv2 else 0) | (0x10 if frame.rsv3 else 0)
    # A frame captured unmasked (a bad client) is replayed unmasked: the capture is the script.
    key = random(4) if frame.masked else None
    return serialize_frame(frame.opcode_value, frame.payload, fin=frame.fin, rsv=rsv,
                           masking_key=key)


async def replay(capture: Capture, target: str, *, timeout: float = 10.0,
                 random: Callable[[int], bytes] = os.urandom) -> ReplayResult:
    """Replay the client side of ``capture`` against ``target`` (``ws://`` only)."""
    secure, host, port, resource = parse_uri(target)
    if secure:
        raise CaptureError("replay speaks ws:// only")
    result = ReplayResult()
    decoder = ConnectionDecoder(capture.conn, clock=asyncio.get_running_loop().time)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    got_frame = asyncio.Event()

    def take(events: Sequence[Event]) -> None:
        for event in events:
            result.events.append(event)
            if isinstance(event, FrameEvent) and event.dir == "s2c":
                result.frames.append(event)
            elif isinstance(event, HandshakeEvent) and event.dir == "s2c":
                result.status = _status_of(event.line)
        got_frame.set()

    async def read() -> None:
        while data := await reader.read(65536):
            take(decoder.feed("s2c", data))
        take(decoder.eof("s2c"))
        result.closed = True
        got_frame.set()

    async def wait_until(done: Callable[[], bool], what: str) -> bool:
        try:
            async with asyncio.timeout(timeout):
                while not done() and not result.closed:
                    got_frame.clear()
                    await got_frame.wait()
        except TimeoutError:
            result.timed_out = what
            return False
        return done()

    async def wait_for(count: int, what: str) -> bool:
        return await wait_until(lambda: len(result.frames) >= count, what)

    request = _request_bytes(capture, host, port, resource, random)
    decoder.feed("c2s", request)
    writer.write(request)
    reading = asyncio.ensure_future(read())
    try:
        await wait_until(lambda: result.status is not None, "the handshake response")
        seen_server = 0
        for frame in capture.frames:
            if frame.dir == "s2c":
                seen_server += 1
                continue
            if not await wait_for(seen_server, f"server frame {seen_server} before client "
                                                f"frame {frame.index}"):
                break
            if result.closed or result.status != 101:
                break
            data = _frame_bytes(frame, random)
            decoder.feed("c2s", data)
            writer.write(data)
            await writer.drain()
        else:
            if capture.client_frames and capture.client_frames[-1].opcode == "CLOSE":
                # The client closed: read until the server closes TCP, so that a frame the
                # capture does not have shows up too.
                await wait_until(lambda: result.closed, "the server to close the connection")
            else:
                await wait_for(len(capture.server_frames),
                               f"server frame {len(capture.server_frames)}")
    except ConnectionError:
        result.closed = True
    finally:
        writer.transport.abort()
        reading.cancel()
        try:
            await reading
        except (asyncio.CancelledError, ConnectionError):
            pass
    return result


def _describe(frame: FrameEvent | None) -> str:
    if frame is None:
        return "(none)"
    line = format_event(dataclasses.replace(frame, t=0.0, conn=0))[0]
    return line.strip().split(" ", 3)[3]  # drop the time, connection and arrow


def _data(frame: FrameEvent) -> Any:
    if frame.opcode == "CLOSE":
        return ("close", frame.code, frame.reason) if frame.code is not None else frame.payload
    return frame.data


def compare(capture: Capture, result: ReplayResult, *, close_code_only: bool = False
            ) -> list[str]:
    """The differences between the capture's server frames and the replay's, as readable
    lines; empty when they match (opcode, FIN and data of every frame, in order)."""
    if capture.status is not None and result.status != capture.status:
        return [f"handshake: the capture has HTTP {capture.status}, the server answered "
                f"{'nothing' if result.status is None else f'HTTP {result.status}'}"]
    expected = capture.server_frames
    got = result.frames
    for n, (want, have) in enumerate(zip(expected, got, strict=False), 1):
        same = want.opcode == have.opcode and want.fin == have.fin
        if same and want.opcode == "CLOSE" and close_code_only:
            same = want.code == have.code
        elif same:
            same = _data(want) == _data(have)
        if not same:
            return [f"server frame {n} differs from the capture:",
                    f"  capture: {_describe(want)}", f"  replay:  {_describe(have)}"]
    if len(got) < len(expected):
        n = len(got) + 1
        why = (f"(timed out waiting for {result.timed_out})" if result.timed_out
               else "(the server closed the connection)" if result.closed else "")
        return [f"server frame {n} is missing {why}".rstrip(),
                f"  capture: {_describe(expected[n - 1])}", "  replay:  (none)"]
    if len(got) > len(expected):
        n = len(expected) + 1
        return [f"server frame {n} is not in the capture:", "  capture: (none)",
                f"  replay:  {_describe(got[n - 1])}"]
    return []


# --- command line ------------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay", help="replay the client side of a capture against a server and compare",
        description="Replay the client frames of a rawws trace capture (JSON lines) against a "
                    "server and compare its frames with the capture: exit 0 when they match, "
                    "1 with the first difference (python -m pydoc rawws.tools.replay).")
    parser.add_argument("capture", metavar="WIRELOG.jsonl")
    parser.add_argument("--target", required=True, metavar="ws://HOST:PORT/PATH")
    parser.add_argument("--conn", type=int, help="the connection to replay (default: first)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="longest wait for one server frame (default 10)")
    parser.add_argument("--close-code-only", action="store_true",
                        help="compare close frames by their code only, not their reason")
    parser.add_argument("--verbose", action="store_true",
                        help="print the server's frames as they are compared")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        parse_uri(args.target)
        with open(args.capture, encoding="utf-8") as file:
            capture = load_capture(read_jsonl(file), args.conn)
    except (OSError, ValueError, InvalidURI) as exc:
        print(f"rawws replay: {exc}", file=sys.stderr)
        return 2
    if args.timeout <= 0:
        print("rawws replay: --timeout must be > 0", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(replay(capture, args.target, timeout=args.timeout))
    except CaptureError as exc:
        print(f"rawws replay: {exc}", file=sys.stderr)
        return 2
    except (OSError, TimeoutError) as exc:
        print(f"rawws replay: cannot connect to {args.target}: {exc or 'timeout'}",
              file=sys.stderr)
        return 1
    if args.verbose:
        for frame in result.frames:
            print(f"  server: {_describe(frame)}")
    differences = compare(capture, result, close_code_only=args.close_code_only)
    if differences:
        print("\n".join(f"rawws replay: {line}" if i == 0 else line
                        for i, line in enumerate(differences)))
        return 1
    print(f"rawws replay: {len(result.frames)} server frame(s) match the capture "
          f"({len(capture.client_frames)} client frame(s) replayed)")
    return 0
