"""The peer ``rawws craft`` drives: one TCP connection, either side, run step by step.

Owns: executing the steps of a parsed script (:mod:`rawws.tools.craftscript`) on a connection —
writing hand-made handshakes and frames (built by :mod:`rawws.tools.wire`), reading what the
other side sends (decoded and checked by the core's reader, inflated when permessage-deflate was
agreed), checking ``expect`` steps against it — and recording it all as :class:`Event` values
in an :class:`Outcome`, with a transcript line per event as it happens. The command line and
the connection set-up are :mod:`rawws.tools.craft`'s.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..sansio.codes import CLOSE_CODE_MEANINGS
from ..sansio.mask import apply_mask
from .craftscript import FRAME_KINDS, Step, parse_number, parse_payload
from .wire import build_frame, check_close_payload, check_header, decode_header, opcode_name

__all__ = ["DEFAULT_TIMEOUT", "Event", "Outcome", "Peer"]

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


