"""Frames on the wire (RFC 6455 §5.2): the :class:`Frame` value, serialization, close payloads.

Owns: the layout of a frame header (FIN, RSV1-3, opcode, MASK, 7/16/64-bit payload length, masking
key), building frame bytes, and the body of a close frame (§5.5.1).

Does not own: reading frames, close payloads included (:mod:`rawws.sansio.reader`).

Frame layout, RFC 6455 §5.2::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-------+-+-------------+-------------------------------+
    |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
    |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
    |N|V|V|V|       |S|             |   (if payload len==126/127)   |
    | |1|2|3|       |K|             |                               |
    +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
    |     Extended payload length continued, if payload len == 127  |
    + - - - - - - - - - - - - - - - +-------------------------------+
    |                               |Masking-key, if MASK set to 1  |
    +-------------------------------+-------------------------------+
    | Masking-key (continued)       |          Payload Data         |
    +-------------------------------- - - - - - - - - - - - - - - - +
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..redact import redact_payload
from .codes import CLOSE_CODE_MEANINGS, Opcode, is_valid_close_code
from .mask import apply_mask

__all__ = [
    "FIN",
    "MASK_BIT",
    "RSV1",
    "RSV2",
    "RSV3",
    "Close",
    "Frame",
    "serialize_close_payload",
    "serialize_frame",
]

FIN = 0x80
RSV1 = 0x40
RSV2 = 0x20
RSV3 = 0x10
MASK_BIT = 0x80

_pack_2 = struct.Struct("!BB").pack
_pack_4 = struct.Struct("!BBH").pack
_pack_10 = struct.Struct("!BBQ").pack


class Frame(NamedTuple):
    """One WebSocket frame, unmasked.

    A ``NamedTuple`` rather than a frozen dataclass: it is immutable and typed like one, and about
    three times cheaper to build, which matters on the extension path where every data frame is a
    ``Frame`` (benchmarks/micro.py, section "frame").
    """

    opcode: int
    payload: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False

    @property
    def data(self) -> bytes:
        """The payload, under websockets' name for it."""
        return self.payload

    def __str__(self) -> str:
        try:
            name = Opcode(self.opcode).name
        except ValueError:
            name = f"opcode {self.opcode}"
        flags = "".join(
            flag for flag, on in (("F", self.fin), ("1", self.rsv1), ("2", self.rsv2),
                                  ("3", self.rsv3)) if on
        )
        return f"{name} [{flags or '-'}] {_preview(self.opcode, self.payload)}"


def _preview(opcode: int, payload: bytes, limit: int = 75) -> str:
    """A short, printable rendering of a payload for the debug transcript, with credentials
    blanked (:func:`rawws.redact.redact_payload`: a first-message ``auth`` frame's token, any
    JSON token/password/secret field, JWT-shaped strings)."""
    n = len(payload)
    if opcode == Opcode.CLOSE and n >= 2:
        code = int.from_bytes(payload[:2], "big")
        reason = redact_payload(payload[2:].decode("utf-8", "replace"))
        return f"{code} {reason!r} ({n} bytes)"
    if opcode == Opcode.TEXT:
        text = redact_payload(payload[:limit].decode("utf-8", "replace"))
        return f"{text!r}{'...' if n > limit else ''} ({n} bytes)"
    # Binary (and continuation) payloads show as hex, unless they are text carrying a secret:
    # hex would show the secret's bytes, so the redacted text is shown instead.
    head = payload[: limit // 3]
    text = head.decode("utf-8", "replace")
    redacted = redact_payload(text)
    if redacted != text:
        return f"(text) {redacted!r}{'...' if n > limit // 3 else ''} ({n} bytes)"
    shown = head.hex(" ")
    return f"{shown}{'...' if n > limit // 3 else ''} ({n} bytes)"


def serialize_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masking_key: bytes | None = None,
) -> bytes:
    """Return the bytes of one frame.

    ``rsv`` holds the RSV bits already in position (``RSV1``, ``RSV2``, ``RSV3``). A client MUST
    mask every frame it sends (§5.3) and passes a fresh 4-byte ``masking_key``; a server MUST NOT
    mask (§5.1) and passes ``None``.
    """
    b0 = (FIN if fin else 0) | rsv | opcode
    n = len(payload)
    if masking_key is None:
        if n < 126:
            return _pack_2(b0, n) + payload
        if n < 65536:
            return _pack_4(b0, 126, n) + payload
        return _pack_10(b0, 127, n) + payload
    if n < 126:
        head = _pack_2(b0, MASK_BIT | n)
    elif n < 65536:
        head = _pack_4(b0, MASK_BIT | 126, n)
    else:
        head = _pack_10(b0, MASK_BIT | 127, n)
    return head + masking_key + apply_mask(payload, masking_key)


class Close(NamedTuple):
    """The code and reason of a close frame (§5.5.1), as ``ConnectionClosed.rcvd`` / ``.sent``
    report them (websockets' ``frames.Close``; a ``NamedTuple``, so it also unpacks as
    ``code, reason``)."""

    code: int
    reason: str = ""

    def __str__(self) -> str:
        if 3000 <= self.code < 4000:
            meaning = "registered"
        elif 4000 <= self.code < 5000:
            meaning = "private use"
        else:
            meaning = CLOSE_CODE_MEANINGS.get(self.code, "unknown")
        return f"{self.code} ({meaning})" + (f" {self.reason}" if self.reason else "")

    @classmethod
    def parse(cls, data: bytes) -> Close:
        """Read a close frame body (see :func:`rawws.sansio.reader.parse_close_payload`)."""
        from .reader import parse_close_payload  # the reader imports this module

        return cls(*parse_close_payload(data))

    def serialize(self) -> bytes:
        """The close frame body (see :func:`serialize_close_payload`)."""
        return serialize_close_payload(self.code, self.reason)


def serialize_close_payload(code: int | None, reason: str = "") -> bytes:
    """Return the body of a close frame (§5.5.1): a 2-byte code then a UTF-8 reason, or nothing.

    The reason must fit in a control frame: 125 bytes minus the 2 of the code.
    """
    if code is None:
        if reason:
            raise ValueError("a close reason requires a close code")
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"close code {code} may not be sent (RFC 6455 §7.4)")
    encoded = reason.encode()
    if len(encoded) > 123:
        raise ValueError(f"close reason is {len(encoded)} bytes long; at most 123 fit")
    return code.to_bytes(2, "big") + encoded
