"""``rawws craft``: a scriptable misbehaving WebSocket peer.

    rawws craft ws://127.0.0.1:9001 -e 'send text "hi" rsv1=1; expect close 1002'
    rawws craft ws://127.0.0.1:9001 script.craft
    rawws craft ws://127.0.0.1:9001 --attack deflate-bomb
    rawws craft --list
    rawws craft --serve 9002 --attack masked-server-frame --once

It sends what a script says — hand-made handshakes and frames, valid or not (the language is
in :mod:`rawws.tools.craftscript`, the named attacks in :mod:`rawws.tools.attacks`) — and prints
the peer's reaction as it happens: the HTTP status and headers, every frame it sends (decoded
with the core's reader, rule violations named with their RFC section, compressed payloads
inflated), close codes, and when TCP was closed and by whom, each line stamped with the
milliseconds since the connection opened. Transcript prefixes: ``>`` sent, ``<`` received,
``=`` a state change, ``!`` a broken rule or error, ``x`` TCP closed, ``?`` an expectation.

As a client (``craft URL``) it tests servers; with ``--serve PORT`` it plays the server and
runs the script on every client that connects (``--once``: the first one, then exit).

Exit status: 0 when every ``expect`` held, 1 when one did not, 2 for a bad script, bad
arguments or a peer that could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from ..sansio.codes import CLOSE_CODE_MEANINGS
from .attacks import ATTACKS
from .craftscript import FRAME_KINDS, ScriptError, Step, parse_number, parse_payload, parse_script
from .wire import build_frame, check_close_payload, check_header, decode_header, opcode_name

__all__ = ["Outcome", "Peer", "add_parser", "run", "run_script"]

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEFAULT_TIMEOUT = 5.0


@dataclass
class Event:
    """Something the peer did: ``status``, ``frame``, ``close`` or ``drop``."""

    kind: str
    at_ms: float
    opcode: int | None = None
    payload: bytes = b""
    code: int | None = None
    reason: str = ""
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    violation: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "at_ms": round(self.at_ms, 3)}
        if self.kind == "status":
            out.update(status=self.status, headers=self.headers)
        if self.kind in ("frame", "close"):
            out.update(opcode=self.opcode, payload=_preview(self.payload, 200))
        if self.kind == "close":
            out.update(code=self.code, reason=self.reason)
        if self.violation:
            out["violation"] = self.violation
        return out


@dataclass
class Outcome:
    """What one script run found."""

    events: list[Event] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(ok for _, ok, _ in self.checks)

    def close_code(self) -> int | None:
        return next((e.code for e in self.events if e.kind == "close"), None)

    def status(self) -> int | None:
        return next((e.status for e in self.events if e.kind == "status"), None)

    def dropped_by_peer(self) -> bool:
        return any(e.kind == "drop" for e in self.events)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "error": self.error,
                "events": [e.to_json() for e in self.events],
                "expectations": [{"step": s, "passed": ok, "got": got}
                                 for s, ok, got in self.checks]}


def _preview(payload: bytes, limit: int = 60) -> str:
    try:
        text = payload[:limit].decode("utf-8")
        shown = repr(text)
    except UnicodeDecodeError:
        shown = payload[: limit // 2].hex()
    more = "..." if len(payload) > limit else ""
    return f"{shown}{more} ({len(payload)} bytes)"


class Peer:
    """One connection driven by a script: the client or the server side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 is_server: bool, out: TextIO | None, timeout: float = DEFAULT_TIMEOUT,
                 host: str = "127.0.0.1", port: int = 80, path: str = "/") -> None:
        self.reader, self.writer = reader, writer
        self.is_server = is_server
        self.out = out
        self.timeout = timeout
        self.host, self.port, self.path = host, port, path
        self.started = time.monotonic()
        self.outcome = Outcome()
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.reply_close, self.reply_ping = True, False
        self.default_mask = "none" if is_server else "auto"
        self.sent_close = False
        self.closed = False
        self.request_head: bytes | None = None
        self._inflater: zlib._Decompress | None = None
        self._deflate_agreed = False
        self._reading: asyncio.Task[None] | None = None
        self._in_message = False
        self._message_compressed = False

    # --- output ----------------------------------------------------------------------------

    def ms(self) -> float:
        return (time.monotonic() - self.started) * 1000

    def say(self, prefix: str, text: str) -> None:
        if self.out is not None:
            lines = text.split("\n")
            self.out.write(f"{self.ms():9.1f} ms {prefix} {lines[0]}\n")
            for line in lines[1:]:
                self.out.write(f"{'':16}{line}\n")
            self.out.flush()

    def _record(self, event: Event) -> None:
        self.outcome.events.append(event)
        self.events.put_nowait(event)

    # --- reading ---------------------------------------------------------------------------

    async def read_head(self) -> bytes | None:
        """The peer's HTTP head (request or response), or None if TCP closed first."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            self._dropped("before the HTTP head was complete")
            return None
        return head

    def _dropped(self, when: str = "") -> None:
        if not self.closed:
            self.closed = True
            self.say("x", f"TCP closed by the peer{(' ' + when) if when else ''}")
            self._record(Event("drop", self.ms()))

    def start_reading(self) -> None:
        self._reading = asyncio.create_task(self._read_frames())

    async def _read_frames(self) -> None:
        buffer = bytearray()
        while True:
            header = decode_header(buffer)
            if header is not None and len(buffer) >= header.header_length + header.length:
                payload = bytes(buffer[header.header_length:header.header_length
                                       + header.length])
                del buffer[:header.header_length + header.length]
                self._frame(header, payload)
                continue
            try:
                data = await self.reader.read(1 << 16)
            except ConnectionError:
                data = b""
            if not data:
                self._dropped()
                return
            buffer += data

    def _frame(self, header: Any, payload: bytes) -> None:
        from ..sansio.mask import apply_mask

        if header.mask_key is not None:
            payload = bytes(apply_mask(payload, header.mask_key))
        violation = check_header(header, expect_mask=self.is_server,
                                 rsv_allowed=0x40 if self._deflate_agreed else 0,
                                 in_message=self._in_message)
        if not header.is_control:
            if header.opcode != 0:
                self._message_compressed = header.rsv1 and self._deflate_agreed
            self._in_message = not header.fin
        flags = "".join(f for f, on in (("F", header.fin), ("1", header.rsv1),
                                        ("2", header.rsv2), ("3", header.rsv3)) if on)
        masked = f", masked {header.mask_key.hex()}" if header.mask_key else ""
        shown = payload
        note = ""
        if self._message_compressed and not header.is_control and self._inflater is not None:
            try:
                shown = self._inflater.decompress(payload + (b"\x00\x00\xff\xff"
                                                             if header.fin else b""), 1 << 20)
                note = f", {len(payload)} bytes compressed"
            except zlib.error as exc:
                note = f", not valid DEFLATE: {exc}"
        if header.opcode == 8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            reason = payload[2:].decode("utf-8", "replace")
            violation = violation or check_close_payload(payload)
            meaning = CLOSE_CODE_MEANINGS.get(code or 0, "")
            self.say("<", f"CLOSE [{flags or '-'}] {code if code is not None else '(no code)'}"
                          f"{' ' + meaning if meaning else ''} {reason!r}{masked}")
            event = Event("close", self.ms(), 8, payload, code if code is not None else 1005,
                          reason, violation=str(violation) if violation else None)
        else:
            self.say("<", f"{opcode_name(header.opcode)} [{flags or '-'}] {_preview(shown)}"
                          f"{masked}{note}")
            event = Event("frame", self.ms(), header.opcode, shown,
                          violation=str(violation) if violation else None)
        if violation is not None:
            self.say("!", str(violation))
        self._record(event)
        if header.opcode == 8 and self.reply_close and not self.sent_close:
            self.send_bytes(self._frame_bytes(8, payload[:2], mask=self.default_mask),
                            f"CLOSE [F] {event.code} (reply)")
            self.sent_close = True
            if self.is_server:
                self.drop("after the closing handshake (the server closes TCP first)")
        elif header.opcode == 9 and self.reply_ping and not self.sent_close:
            self.send_bytes(self._frame_bytes(10, payload, mask=self.default_mask),
                            f"PONG [F] {_preview(payload)} (reply)")

    # --- writing ---------------------------------------------------------------------------

    def send_bytes(self, data: bytes, what: str) -> None:
        if self.closed:
            self.say("!", f"not sent ({what}): TCP is closed")
            return
        self.say(">", what)
        self.writer.write(data)

    async def send_chopped(self, data: bytes, what: str, chop: int | None,
                           delay: float) -> None:
        if not chop:
            self.send_bytes(data, what)
            if delay:
                await asyncio.sleep(delay)
            return
        self.say(">", f"{what}, {chop} byte(s) at a time every {delay:g} s")
        for i in range(0, len(data), chop):
            if self.closed or self.writer.is_closing():
                self.say("!", f"stopped after {i} of {len(data)} bytes: TCP is closed")
                return
            self.writer.write(data[i:i + chop])
            try:
                await self.writer.drain()
            except ConnectionError:
                self._dropped()
                return
            if delay:
                await asyncio.sleep(delay)

    def _frame_bytes(self, opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0,
                     mask: str = "auto", length: int | None = None,
                     length_field: Any = None) -> bytes:
        key: bool | bytes = False if mask == "none" else (
            True if mask == "auto" else bytes.fromhex(mask))
        return build_frame(opcode, payload, fin=fin, rsv=rsv, mask=key, length=length,
                           length_field=length_field)

    def drop(self, why: str = "") -> None:
        if not self.closed:
            self.closed = True
            self.say("x", f"TCP closed by craft{(' ' + why) if why else ''}")
            self.writer.close()

    # --- the handshake ---------------------------------------------------------------------

    async def handshake(self, step: Step) -> None:
        opt = step.option
        key = opt("key") or base64.b64encode(os.urandom(16)).decode()
        omit = {name.strip().lower() for name in (opt("omit") or "").split(",") if name}
        headers = [("Host", opt("host") or f"{self.host}:{self.port}"),
                   ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                   ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", opt("version", "13"))]
        if (origin := opt("origin")) is not None:
            headers.append(("Origin", origin))
        if (protocol := opt("protocol")) is not None:
            headers.append(("Sec-WebSocket-Protocol", protocol))
        if (extensions := opt("extensions")) is not None:
            headers.append(("Sec-WebSocket-Extensions", extensions))
            self._deflate_agreed = False
        for extra in step.options.get("header", []):
            name, _, value = extra.partition(":")
            headers.append((name.strip(), value.strip()))
        headers = [(n, v) for n, v in headers if n.lower() not in omit]
        lines = [f"{opt('method', 'GET')} {opt('path', self.path)} HTTP/{opt('http', '1.1')}"]
        lines += [f"{n}: {v}" for n, v in headers]
        filler = parse_number(opt("headers", "0") or "0", step.line)
        lines += [f"X-Filler-{i}: {'x' * 16}" for i in range(filler)]
        if (size := opt("header-size")) is not None:
            lines.append("X-Big: " + "x" * parse_number(size, step.line))
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        summary = f"{lines[0]} ({len(data)} bytes, {len(lines) - 1} headers)"
        chop = self._number(step, "chop")
        reading = asyncio.create_task(self._read_response(key))
        await self.send_chopped(data, summary, chop, float(opt("delay", "0") or 0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reading), self._within(step))
        if not reading.done():
            reading.cancel()
            self.say("=", f"no HTTP response within {self._within(step):g} s; going on")

    def start_reading_response(self, key: str | None) -> None:
        self._reading = asyncio.create_task(self._read_response(key))

    async def _read_response(self, key: str | None) -> None:
        head = await self.read_head()
        if head is None:
            return
        lines = head.decode("latin-1").split("\r\n")
        status_line = lines[0]
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        headers = [(n.strip(), v.strip()) for n, _, v in
                   (line.partition(":") for line in lines[1:] if line)]
        self.say("<", "\n".join(line for line in lines if line))
        self._record(Event("status", self.ms(), status=status, headers=headers))
        if status == 101 and key is not None:
            accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
            got = next((v for n, v in headers if n.lower() == "sec-websocket-accept"), None)
            if got != accept:
                self.say("!", f"Sec-WebSocket-Accept is {got!r}, expected {accept!r}"
                              " (RFC 6455 §4.1)")
        if status == 101:
            agreed = next((v for n, v in headers if n.lower() == "sec-websocket-extensions"),
                          "")
            if "permessage-deflate" in agreed:
                self._deflate_agreed = True
                bits = re.search(r"server_max_window_bits=(\d+)", agreed)
                self._inflater = zlib.decompressobj(-(int(bits[1]) if bits else 15))
            self.say("=", "open" + (f" (extensions: {agreed})" if agreed else ""))
        self.start_reading()

    async def respond(self, step: Step) -> None:
        """Server side: answer the request head already read."""
        opt = step.option
        request = (self.request_head or b"").decode("latin-1")
        match = re.search(r"(?im)^sec-websocket-key:\s*(\S+)", request)
        key = match[1] if match else ""
        status = parse_number(opt("status", "101") or "101", step.line)
        accept_option = opt("accept", "ok")
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        if accept_option == "bogus":
            accept = base64.b64encode(os.urandom(20)).decode()
        elif accept_option not in ("ok", "none"):
            accept = accept_option or ""
        reason = "Switching Protocols" if status == 101 else "Crafted"
        headers = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        if accept_option != "none":
            headers.append(("Sec-WebSocket-Accept", accept))
        if (extensions := opt("extensions")) is not None:
            headers.append(("Sec-WebSocket-Extensions", extensions))
        if (protocol := opt("protocol")) is not None:
            headers.append(("Sec-WebSocket-Protocol", protocol))
        for extra in step.options.get("header", []):
            name, _, value = extra.partition(":")
            headers.append((name.strip(), value.strip()))
        omit = {name.strip().lower() for name in (opt("omit") or "").split(",") if name}
        headers = [(n, v) for n, v in headers if n.lower() not in omit]
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
        self.send_bytes((head + "\r\n").encode(), f"HTTP/1.1 {status} {reason}"
                        f" ({len(headers)} headers)")
        self.start_reading()

    # --- steps -----------------------------------------------------------------------------

    @staticmethod
    def _number(step: Step, name: str) -> int | None:
        value = step.option(name)
        return None if value is None else parse_number(value, step.line)

    def _within(self, step: Step) -> float:
        return float(step.option("within") or self.timeout)

    async def send(self, step: Step) -> None:
        kind, rest = step.args[0], step.args[1:]
        opt = step.option
        delay = float(opt("delay", "0") or 0)
        chop = self._number(step, "chop")
        if kind in ("raw", "http"):
            data = parse_payload(rest[0], step.line)
            what = f"{len(data)} raw bytes" if kind == "raw" else _http_summary(data)
            await self.send_chopped(data, what, chop, delay)
            return
        opcode = (parse_number(opt("opcode") or "0", step.line) if kind == "frame"
                  else FRAME_KINDS[kind])
        payload = b""
        code_text = ""
        if kind == "close" and rest and re.fullmatch(r"\d+", rest[0]):
            code = parse_number(rest[0], step.line)
            payload = code.to_bytes(2, "big")
            code_text = f" {code}"
            rest = rest[1:]
        if rest:
            payload += parse_payload(rest[0], step.line)
        rsv = parse_number(opt("rsv", "0") or "0", step.line)
        rsv |= (4 if step.flag("rsv1") else 0) | (2 if step.flag("rsv2") else 0) | (
            1 if step.flag("rsv3") else 0)
        fin = opt("fin", "1") not in ("0", "false", "no")
        length = self._number(step, "length")
        field_ = self._number(step, "length-field")
        mask = opt("mask") or self.default_mask
        data = self._frame_bytes(opcode, payload, fin=fin, rsv=rsv, mask=mask, length=length,
                                 length_field=field_)
        flags = "".join(f for f, on in (("F", fin), ("1", rsv & 4), ("2", rsv & 2),
                                        ("3", rsv & 1)) if on)
        declared = f", declared length {length}" if length is not None else ""
        lf = f", {field_}-bit length field" if field_ else ""
        shown = payload[2:] if code_text else payload
        what = (f"{opcode_name(opcode)} [{flags or '-'}]{code_text} {_preview(shown)}"
                f"{declared}{lf}{', unmasked' if mask == 'none' else ''}")
        if opcode == 8:
            self.sent_close = True
        await self.send_chopped(data, what, chop, delay)

    async def _next(self, within: float) -> Event | None:
        try:
            return await asyncio.wait_for(self.events.get(), within)
        except TimeoutError:
            return None

    async def expect(self, step: Step) -> None:
        what, rest = step.args[0], step.args[1:]
        within = self._within(step)
        deadline = time.monotonic() + within
        label = step.source

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        def check(ok: bool, got: str) -> None:
            self.outcome.checks.append((label, ok, got))
            self.say("?", f"{label}: {'PASS' if ok else 'FAIL'} ({got})")

        if what == "status":
            wanted = {int(c) for c in rest[0].split(",")}
            while (event := self._find("status")) is None and left() > 0:
                if await self._next(left()) is None:
                    break
            status = event.status if event else None
            dropped = " (TCP closed first)" if event is None and self.closed else ""
            return check(status in wanted, f"status {status}{dropped}")
        if what == "nothing":
            quiet = float(rest[0]) if rest else 0.5
            event = await self._next(quiet)
            return check(event is None, "nothing" if event is None else _describe(event))
        while True:
            event = await self._next(left())
            if event is None:
                state = "TCP closed" if self.closed else f"nothing within {within:g} s"
                return check(False, state)
            if what == "drop":
                if event.kind == "drop":
                    return check(True, "TCP closed by the peer")
                continue
            if what == "close":
                if event.kind == "close":
                    codes = rest[0] if rest else "any"
                    ok = codes == "any" or event.code in {int(c) for c in codes.split(",")}
                    return check(ok, f"close {event.code} {event.reason!r}")
                if event.kind == "drop":
                    return check(False, "TCP closed without a close frame")
                continue
            if event.kind in ("close", "drop"):
                return check(False, _describe(event))
            if event.kind != "frame":
                continue
            opcode = {"text": 1, "binary": 2, "pong": 10, "ping": 9}.get(what)
            if what != "ping" and event.opcode == 9:
                continue  # pings are skipped unless asked for
            if what == "message":
                return check(event.opcode in (1, 2), _describe(event))
            if event.opcode == 0:
                continue
            ok = event.opcode == opcode
            if ok and rest:
                ok = event.payload == parse_payload(rest[0], step.line)
                if not ok and what == "pong":
                    continue  # §5.5.3: pongs to earlier pings may come first
            return check(ok, _describe(event))

    def _find(self, kind: str) -> Event | None:
        return next((e for e in self.outcome.events if e.kind == kind), None)

    async def read(self, step: Step) -> None:
        seconds = float(step.args[0]) if step.args else self.timeout
        deadline = time.monotonic() + seconds
        while not self.closed and (left := deadline - time.monotonic()) > 0:
            await self._next(left)

    async def close(self, step: Step) -> None:
        code = parse_number(step.args[0], step.line) if step.args else 1000
        reason = " ".join(step.args[1:]).strip('"').encode()
        self.sent_close = True
        self.send_bytes(self._frame_bytes(8, code.to_bytes(2, "big") + reason,
                                          mask=self.default_mask), f"CLOSE [F] {code}")
        deadline = time.monotonic() + self._within(step)
        while (left := deadline - time.monotonic()) > 0:
            event = await self._next(left)
            if event is None or event.kind in ("close", "drop"):
                break

    def setting(self, step: Step) -> None:
        for name, values in step.options.items():
            value = values[-1]
            if name == "reply-close":
                self.reply_close = value not in ("0", "false", "no")
            elif name == "reply-ping":
                self.reply_ping = value not in ("0", "false", "no")
            elif name == "mask":
                self.default_mask = value
            elif name == "timeout":
                self.timeout = float(value)

    async def run(self, steps: list[Step]) -> Outcome:
        try:
            for step in steps:
                if step.verb == "handshake":
                    await self.handshake(step)
                elif step.verb == "respond":
                    await self.respond(step)
                elif step.verb == "send":
                    await self.send(step)
                elif step.verb == "wait":
                    await asyncio.sleep(float(step.args[0]))
                elif step.verb == "read":
                    await self.read(step)
                elif step.verb == "expect":
                    await self.expect(step)
                elif step.verb == "close":
                    await self.close(step)
                elif step.verb == "drop":
                    self.drop("(script)")
                elif step.verb == "set":
                    self.setting(step)
                with contextlib.suppress(ConnectionError):
                    await self.writer.drain()
        except ConnectionError as exc:
            self._dropped(f"({exc})")
        finally:
            self.drop("at the end of the script")
            if self._reading is not None:
                self._reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reading
        return self.outcome


def _describe(event: Event) -> str:
    if event.kind == "close":
        return f"close {event.code} {event.reason!r}"
    if event.kind == "drop":
        return "TCP closed by the peer"
    if event.kind == "status":
        return f"status {event.status}"
    return f"{opcode_name(event.opcode or 0)} {_preview(event.payload)}"


def _http_summary(data: bytes) -> str:
    first = data.split(b"\r\n", 1)[0].decode("latin-1")
    return f"{first} ({len(data)} bytes of HTTP written by hand)"


def _prepare(steps: list[Step], *, is_server: bool) -> list[Step]:
    """A client script that does not open with its own handshake gets the default one; a
    server script that does not answer the upgrade itself gets a plain 101."""
    if is_server:
        if not steps or steps[0].verb != "respond":
            return [Step("respond", source="respond"), *steps]
        return steps
    lead = 0
    while lead < len(steps) and steps[lead].verb == "set":
        lead += 1
    first = steps[lead] if lead < len(steps) else None
    starts_by_hand = first is not None and (
        first.verb == "handshake" or (first.verb == "send" and first.args[0] in ("raw", "http")))
    if starts_by_hand:
        return steps
    return [*steps[:lead], Step("handshake", source="handshake"), *steps[lead:]]


async def run_script(steps: list[Step], host: str, port: int, *, path: str = "/",
                     timeout: float = DEFAULT_TIMEOUT, out: TextIO | None = None) -> Outcome:
    """Run ``steps`` as a client against ``host:port``."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        outcome = Outcome(error=f"cannot connect to {host}:{port}: {exc}")
        return outcome
    peer = Peer(reader, writer, is_server=False, out=out, timeout=timeout, host=host, port=port,
                path=path)
    peer.say("=", f"connected to {host}:{port}")
    steps = _prepare(steps, is_server=False)
    if not any(step.verb == "handshake" for step in steps):
        # The request is written by hand: read the response head, then frames.
        peer.start_reading_response(None)
    return await peer.run(steps)


async def serve_script(steps: list[Step], host: str, port: int, *, once: bool,
                       timeout: float = DEFAULT_TIMEOUT, out: TextIO | None = None,
                       ready: asyncio.Future[int] | None = None) -> Outcome:
    """Play the misbehaving server: run ``steps`` on every client (``once``: the first)."""
    steps = _prepare(steps, is_server=True)
    finished: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
    count = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        peer = Peer(reader, writer, is_server=True, out=out, timeout=timeout)
        addr = writer.get_extra_info("peername")
        peer.say("=", f"client {count} connected from {addr[0]}:{addr[1]}")
        head = await peer.read_head()
        if head is None:
            outcome = peer.outcome
        else:
            peer.request_head = head
            peer.say("<", head.decode("latin-1").strip())
            outcome = await peer.run(steps)
        if once and not finished.done():
            finished.set_result(outcome)

    server = await asyncio.start_server(handle, host, port)
    bound = server.sockets[0].getsockname()[1]
    if out is not None:
        out.write(f"= craft serving on ws://{host}:{bound}\n")
        out.flush()
    if ready is not None:
        ready.set_result(bound)
    async with server:
        if once:
            return await finished
        await server.serve_forever()
    return Outcome()


# --- the command line ----------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``rawws craft``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "craft", help="a scriptable misbehaving peer (hand-made handshakes and frames)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="script language: python -m pydoc rawws.tools.craftscript; docs/craft.md")
    parser.add_argument("url", nargs="?", help="the server to attack, ws://HOST:PORT[/PATH]")
    parser.add_argument("script", nargs="?", help="a script file ('-' for stdin)")
    parser.add_argument("-e", "--execute", metavar="STEPS",
                        help="the script on the command line ('; ' between steps)")
    parser.add_argument("--attack", metavar="NAME", help="run a named attack (see --list)")
    parser.add_argument("--list", action="store_true", help="list the named attacks")
    parser.add_argument("--serve", type=int, metavar="PORT",
                        help="play the server on PORT (0: any) instead of connecting")
    parser.add_argument("--host", default="127.0.0.1", help="with --serve: address to bind")
    parser.add_argument("--once", action="store_true",
                        help="with --serve: handle one client, then exit with its result")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds an expect step waits (default 5)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.set_defaults(run=run)
    return parser


def _list(out: TextIO) -> int:
    width = max(len(name) for name in ATTACKS)
    for side, title in (("client", "against servers: rawws craft URL --attack NAME"),
                        ("server", "against clients: rawws craft --serve PORT --attack NAME")):
        out.write(f"{title}\n")
        for attack in ATTACKS.values():
            if attack.side == side:
                echo = " [echo server]" if attack.echo else ""
                out.write(f"  {attack.name:<{width}}  {attack.section:<28} "
                          f"{attack.summary}{echo}\n")
    return 0


def _script_text(args: argparse.Namespace) -> str:
    if args.attack:
        if args.attack not in ATTACKS:
            raise ScriptError(0, f"no attack {args.attack!r} (rawws craft --list)")
        return ATTACKS[args.attack].script
    if args.execute:
        return str(args.execute)
    if args.script == "-":
        return sys.stdin.read()
    if args.script:
        return Path(args.script).read_text()
    raise ScriptError(0, "nothing to do: give a script file, -e STEPS or --attack NAME")


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    if args.list:
        return _list(out)
    if args.serve is not None and args.url and not args.script:
        args.script, args.url = args.url, None  # `craft --serve 9002 script.craft`
    try:
        steps = parse_script(_script_text(args))
    except (ScriptError, OSError) as exc:
        print(f"rawws craft: {exc}", file=sys.stderr)
        return 2
    transcript = None if args.json else out
    if args.serve is not None:
        outcome = asyncio.run(serve_script(steps, args.host, args.serve, once=args.once,
                                           timeout=args.timeout, out=transcript))
    else:
        if not args.url:
            print("rawws craft: give a ws:// URL (or --serve PORT)", file=sys.stderr)
            return 2
        url = urlsplit(args.url)
        if url.scheme != "ws" or not url.hostname:
            print(f"rawws craft: expected ws://HOST:PORT, not {args.url!r}", file=sys.stderr)
            return 2
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        outcome = asyncio.run(run_script(steps, url.hostname, url.port or 80, path=path,
                                         timeout=args.timeout, out=transcript))
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2))
    else:
        print(summarize(outcome))
    if outcome.error:
        print(f"rawws craft: {outcome.error}", file=sys.stderr)
        return 2
    return 0 if outcome.passed else 1


def summarize(outcome: Outcome) -> str:
    """One paragraph: what the peer did in the end, and the expectations."""
    parts = []
    if (status := outcome.status()) is not None:
        parts.append(f"HTTP {status}")
    code = outcome.close_code()
    if code is not None:
        meaning = CLOSE_CODE_MEANINGS.get(code, "")
        parts.append(f"closed by the peer with {code}{' (' + meaning + ')' if meaning else ''}")
    parts.append("TCP closed by the peer" if outcome.dropped_by_peer() else "TCP closed by craft")
    checks = outcome.checks
    held = sum(1 for _, ok, _ in checks if ok)
    verdict = f"{held}/{len(checks)} expectations held" if checks else "no expectations"
    return f"result: {'; '.join(parts)}; {verdict}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rawws")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["craft", *(sys.argv[1:] if argv is None else argv)])
    return int(args.run(args))
