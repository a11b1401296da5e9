"""The script language of ``rawws craft``: one step per line, parsed before anything is sent.

A script is a list of steps; ``#`` starts a comment; blank lines are ignored; ``;`` separates
steps on one line (handy for ``-e``). Every step is a verb, positional arguments and
``name=value`` options. Values with spaces are quoted; quoted strings take the escapes
``\\n \\r \\t \\0 \\\\ \\" \\xHH \\uHHHH``.

Handshake (client side)::

    handshake [path=/chat] [host=H] [origin=O] [version=13] [key=K] [method=GET] [http=1.1]
              [extensions="permessage-deflate"] [protocol=chat] [header="Name: value"]...
              [omit=upgrade,connection,sec-websocket-key,...] [headers=N] [header-size=N]
              [chop=N] [delay=SECONDS]

  Sends an upgrade request built from the options (``headers=N`` adds N filler headers,
  ``header-size=N`` one filler header of N bytes: header floods; ``chop``/``delay`` write it a
  few bytes at a time: slowloris) and waits for the response head. A client script that does
  not start with ``handshake`` or ``send http``/``send raw`` gets a plain ``handshake`` first.

Handshake (server side, ``--serve``)::

    respond [status=101] [accept=ok|bogus|none|VALUE] [extensions=...] [protocol=P]
            [header="Name: value"]... [omit=upgrade,...]

Frames::

    send text|binary|cont|ping|pong [PAYLOAD] [fin=0] [rsv1=1] [rsv2=1] [rsv3=1] [rsv=N]
         [mask=auto|none|HEX8] [length=N] [length-field=7|16|64] [chop=N] [delay=SECONDS]
    send frame opcode=N [PAYLOAD] [same options]       (any opcode, reserved ones included)
    send close [CODE] [REASON-PAYLOAD] [same options]  (any code, any reason bytes)
    send raw HEX|PAYLOAD                               (bytes as they are, no framing)
    send http PAYLOAD [chop=N] [delay=SECONDS]         (an HTTP message written by hand)

  ``length`` declares a payload length other than the real one; ``length-field`` forces the
  7-, 16- or 64-bit encoding (non-minimal lengths, a 7-bit 127, a 64-bit length with its top
  bit set); ``chop`` writes the bytes N at a time, ``delay`` apart.

Payloads: ``"text"``, ``hex:cebae1bd``, ``zeros:N``, ``random:N``, ``deflate:PAYLOAD`` (raw
DEFLATE as permessage-deflate sends it, tail removed: ``deflate:zeros:100000000`` is a 100 MB
bomb in about 100 KB), each optionally repeated with ``*N`` (``"*"*125``).

Waiting and checking::

    wait SECONDS
    read [SECONDS]                      print what arrives, without judging it
    expect status CODE[,CODE...]
    expect text|binary|pong [PAYLOAD]   the next message or pong (pings are skipped)
    expect ping|message
    expect close [CODE[,CODE...]|any]   a close frame (frames before it are skipped)
    expect drop                         the peer closes TCP
    expect nothing [SECONDS]            nothing at all arrives for SECONDS (default 0.5)
    drop                                close TCP now
    close [CODE [REASON]]               send a close and wait for the answer
    set reply-close=0|1 reply-ping=0|1 mask=auto|none timeout=SECONDS

``expect`` waits at most the timeout (``set timeout``, ``--timeout``, default 5 s;
``within=SECONDS`` for one step). By default craft answers the peer's close frame with one of
its own (so the peer closes TCP at once) and does not answer pings.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass, field

__all__ = ["ScriptError", "Step", "parse_number", "parse_payload", "parse_script"]

FRAME_KINDS = {"text": 1, "binary": 2, "cont": 0, "ping": 9, "pong": 10, "close": 8}
FRAME_OPTIONS = {"fin", "rsv1", "rsv2", "rsv3", "rsv", "mask", "length", "length-field",
                 "chop", "delay", "opcode"}
HANDSHAKE_OPTIONS = {"path", "host", "origin", "version", "key", "method", "http",
                     "extensions", "protocol", "header", "omit", "headers", "header-size",
                     "chop", "delay"}
RESPOND_OPTIONS = {"status", "accept", "extensions", "protocol", "header", "omit"}
EXPECTATIONS = {"status", "text", "binary", "pong", "ping", "message", "close", "drop",
                "nothing"}
SETTINGS = {"reply-close", "reply-ping", "mask", "timeout"}
#: Options that may be given more than once.
REPEATABLE = {"header"}


class ScriptError(ValueError):
    """A script that cannot run: says which line and what is wrong with it."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass
class Step:
    verb: str
    args: list[str] = field(default_factory=list)
    options: dict[str, list[str]] = field(default_factory=dict)
    line: int = 0
    source: str = ""

    def option(self, name: str, default: str | None = None) -> str | None:
        values = self.options.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        value = self.option(name)
        return value is not None and value not in ("0", "false", "no")


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


def _unescape(text: str, line: int) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(text):
            raise ScriptError(line, "a backslash ends the string")
        e = text[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xu":
            width = 2 if e == "x" else 4
            digits = text[i + 2:i + 2 + width]
            if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise ScriptError(line, f"bad escape \\{e}{digits}")
            # \xHH is a byte, kept as a code point below 256 and encoded as latin-1 later.
            out.append(chr(int(digits, 16)) if e == "u" else f"\udc00{digits}")
            i += 2 + width
        else:
            raise ScriptError(line, f"unknown escape \\{e}")
    return "".join(out)


def _encode(text: str) -> bytes:
    """UTF-8, except ``\\xHH`` escapes (marked while unescaping), which stay single bytes."""
    parts = re.split(r"\udc00([0-9a-fA-F]{2})", text)
    out = bytearray()
    for n, part in enumerate(parts):
        out += bytes.fromhex(part) if n % 2 else part.encode("utf-8")
    return bytes(out)


def _tokens(line_text: str, line: int) -> list[str]:
    """Split on blanks outside double quotes; quotes stay in the token (decoded later)."""
    tokens, current, quoted, i = [], "", False, 0
    while i < len(line_text):
        c = line_text[i]
        if quoted:
            current += c
            if c == "\\" and i + 1 < len(line_text):
                current += line_text[i + 1]
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
            current += c
        elif c.isspace():
            if current:
                tokens.append(current)
            current = ""
        else:
            current += c
        i += 1
    if quoted:
        raise ScriptError(line, "unterminated string")
    if current:
        tokens.append(current)
    return tokens


def parse_number(text: str, line: int = 0) -> int:
    """``125``, ``0x7f``, ``2**63``, ``64k`` (1024s), ``16M`` (1024**2)."""
    if m := re.fullmatch(r"(\d+)\*\*(\d+)", text):
        return int(int(m[1]) ** int(m[2]))
    if m := re.fullmatch(r"(\d+)([kKmM])", text):
        return int(m[1]) * (1024 if m[2] in "kK" else 1024 ** 2)
    try:
        return int(text, 0)
    except ValueError:
        raise ScriptError(line, f"expected a number, not {text!r}") from None


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


def _zeros_deflated(n: int) -> bytes:
    """``deflate:zeros:N`` without holding N bytes: compress a zero block at a time."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(min(n, 1 << 20))
    parts, left = [], n
    while left > 0:
        parts.append(compressor.compress(block[:min(left, len(block))]))
        left -= len(block)
    return (b"".join(parts) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def parse_payload(token: str, line: int = 0, *, build: bool = True) -> bytes:
    """The bytes a payload expression stands for (see the module docstring); with
    ``build=False`` only check the expression (a 100 MB bomb is not made to be validated)."""
    if token.startswith("deflate:"):  # binds loosest: deflate:"ab"*2 is deflate("abab")
        inner = token[len("deflate:"):]
        if m := re.fullmatch(r"zeros:(\S+)", inner):
            size = parse_number(m[1], line)
            return _zeros_deflated(size) if build else b""
        data = parse_payload(inner, line, build=build)
        return _deflate(data) if build else b""
    repeat = 1
    if (m := re.fullmatch(r'(.*?)\*(\d+)', token, re.DOTALL)) and not token.endswith('"'):
        token, repeat = m[1], int(m[2])
    if token.startswith('"') and token.endswith('"') and len(token) >= 2:
        data = _encode(_unescape(token[1:-1], line))
    elif token.startswith("hex:"):
        try:
            data = bytes.fromhex(token[4:])
        except ValueError:
            raise ScriptError(line, f"bad hex in {token!r}") from None
    elif token.startswith("zeros:"):
        size = parse_number(token[6:], line)
        data = bytes(size) if build else b""
    elif token.startswith("random:"):
        size = parse_number(token[7:], line)
        data = os.urandom(size) if build else b""
    else:
        raise ScriptError(line, f"expected a payload (\"text\", hex:, zeros:, random:,"
                                f" deflate:), not {token!r}")
    return data * repeat if build else b""


def _value(raw: str, line: int) -> str:
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return _unescape(raw[1:-1], line)
    return raw


def _split(tokens: list[str], line: int) -> tuple[list[str], dict[str, list[str]]]:
    args: list[str] = []
    options: dict[str, list[str]] = {}
    for token in tokens:
        if re.match(r"^[a-z][a-z0-9-]*=", token):
            name, _, raw = token.partition("=")
            options.setdefault(name, []).append(_value(raw, line))
        else:
            args.append(token)
    return args, options


def _check_options(step: Step, allowed: set[str]) -> None:
    for name, values in step.options.items():
        if name not in allowed and name != "within":
            raise ScriptError(step.line, f"{step.verb} takes no option {name!r}"
                                         f" (options: {', '.join(sorted(allowed))})")
        if len(values) > 1 and name not in REPEATABLE:
            raise ScriptError(step.line, f"option {name!r} given twice")


def _validate(step: Step) -> None:
    line, verb, args = step.line, step.verb, step.args
    if verb == "handshake":
        _check_options(step, HANDSHAKE_OPTIONS)
        if args:
            raise ScriptError(line, "handshake takes options only")
    elif verb == "respond":
        _check_options(step, RESPOND_OPTIONS)
    elif verb == "send":
        if not args:
            raise ScriptError(line, "send what? text, binary, cont, ping, pong, close, frame,"
                                    " raw or http")
        kind = args[0]
        if kind in ("raw", "http"):
            _check_options(step, {"chop", "delay"})
            if kind == "raw" and len(args) > 1 and all(
                    re.fullmatch(r"[0-9a-fA-F]+", a) for a in args[1:]):
                args[1:] = ["hex:" + "".join(args[1:])]  # send raw 81 05 68 65 ...
            if len(args) != 2:
                raise ScriptError(line, f"send {kind} takes one payload")
            parse_payload(args[1], line, build=False)
        elif kind in FRAME_KINDS or kind == "frame":
            _check_options(step, FRAME_OPTIONS)
            rest = args[1:]
            if kind == "frame" and step.option("opcode") is None:
                raise ScriptError(line, "send frame needs opcode=N")
            if kind == "close" and rest and re.fullmatch(r"\d+", rest[0]):
                parse_number(rest[0], line)
                rest = rest[1:]
            if len(rest) > 1:
                raise ScriptError(line, f"send {kind} takes one payload, got {len(rest)}")
            if rest:
                parse_payload(rest[0], line, build=False)
            for name in ("length", "chop", "opcode"):
                if (value := step.option(name)) is not None:
                    parse_number(value, line)
            if step.option("length-field") not in (None, "7", "16", "64"):
                raise ScriptError(line, "length-field is 7, 16 or 64")
            mask = step.option("mask")
            if mask not in (None, "auto", "none") and not re.fullmatch(r"[0-9a-fA-F]{8}", mask):
                raise ScriptError(line, "mask is auto, none or 8 hex digits")
        else:
            raise ScriptError(line, f"cannot send {kind!r}")
    elif verb == "expect":
        if not args or args[0] not in EXPECTATIONS:
            raise ScriptError(line, f"expect what? {', '.join(sorted(EXPECTATIONS))}")
        _check_options(step, set())
        what, rest = args[0], args[1:]
        if what == "status" and (len(rest) != 1 or not re.fullmatch(r"\d+(,\d+)*", rest[0])):
            raise ScriptError(line, "expect status CODE[,CODE...]")
        if what == "close" and rest and not re.fullmatch(r"any|\d+(,\d+)*", rest[0]):
            raise ScriptError(line, "expect close [CODE[,CODE...]|any]")
        if what in ("text", "binary", "pong") and rest:
            parse_payload(rest[0], line, build=False)
        if what == "nothing" and rest:
            float(rest[0])
    elif verb in ("wait", "read"):
        _check_options(step, set())
        if verb == "wait" and len(args) != 1:
            raise ScriptError(line, "wait SECONDS")
        for arg in args:
            try:
                float(arg)
            except ValueError:
                raise ScriptError(line, f"expected seconds, not {arg!r}") from None
    elif verb == "close":
        _check_options(step, set())
        if args:
            parse_number(args[0], line)
    elif verb == "drop":
        if args or step.options:
            raise ScriptError(line, "drop takes nothing")
    elif verb == "set":
        _check_options(step, SETTINGS)
        if args or not step.options:
            raise ScriptError(line, "set NAME=VALUE...")
    else:
        raise ScriptError(line, f"unknown step {verb!r} (handshake, respond, send, wait, read,"
                                " expect, close, drop, set)")


def parse_script(text: str) -> list[Step]:
    """Parse a whole script; :class:`ScriptError` names the first bad line."""
    steps: list[Step] = []
    for number, raw_line in enumerate(text.splitlines(), 1):
        for piece in _split_steps(raw_line):
            tokens = _tokens(piece, number)
            if not tokens:
                continue
            args, options = _split(tokens[1:], number)
            step = Step(tokens[0].lower(), args, options, number, piece.strip())
            _validate(step)
            steps.append(step)
    return steps


def _split_steps(line: str) -> list[str]:
    """Cut a comment and split on ``;``, both outside double quotes."""
    pieces, current, quoted, escaped = [], "", False, False
    for c in line:
        if quoted:
            current += c
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                quoted = False
            continue
        if c == "#":
            break
        if c == ";":
            pieces.append(current)
            current = ""
            continue
        if c == '"':
            quoted = True
        current += c
    pieces.append(current)
    return pieces
