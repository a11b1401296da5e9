"""Frames as bytes, valid or not: forge any frame, decode any frame header.

Owns: building frame bytes that the validating serializer (:func:`rawws.sansio.frames.
serialize_frame`) refuses to build on purpose — reserved opcodes, RSV bits nobody negotiated,
masks on the wrong side, declared lengths that do not match the payload, non-minimal or
oversized length fields (RFC 6455 §5.2) — and decoding the header of any frame a peer sends,
without judging it. The rule checks (:func:`check_header`) are separate: they return a
:class:`Violation` naming the close code and the RFC section instead of raising.

``rawws craft`` (a scriptable misbehaving peer) and the Python 3 conformance suite
(:mod:`rawws.conformance`) both build and decode with this module.

Decoding is an adapter: the core's policy-free header decoder (``rawws.sansio.reader``, BOARD
"Frame reader API for tools") will replace :func:`decode_header` and :func:`check_header` here,
in this one place, once it is on main. Valid frames are still built by the core's serializer
and masked by the core's one masking function (:func:`rawws.sansio.mask.apply_mask`).

Header layout, RFC 6455 §5.2: byte 0 is FIN, RSV1-3 and the 4-bit opcode; byte 1 is MASK and a
7-bit length, where 126 announces a 16-bit length and 127 a 64-bit length (most significant bit
0) in network byte order; then the 4-byte masking key when MASK is set; then the payload.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..sansio.frames import serialize_frame
from ..sansio.mask import apply_mask

__all__ = [
    "FrameHeader",
    "LengthField",
    "Violation",
    "build_frame",
    "check_header",
    "decode_header",
    "minimal_length_field",
]

#: How a payload length is written: in the 7-bit field, or after 126 (16 bits) or 127 (64 bits).
LengthField = Literal[7, 16, 64]

_FIN, _RSV1, _RSV2, _RSV3, _MASK = 0x80, 0x40, 0x20, 0x10, 0x80


def minimal_length_field(length: int) -> LengthField:
    """The length field §5.2 requires: "the minimal number of bytes MUST be used"."""
    if length < 126:
        return 7
    if length < 65536:
        return 16
    return 64


def build_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool | bytes | None = None,
    length: int | None = None,
    length_field: LengthField | None = None,
    random: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Return the bytes of one frame, whatever the rules say.

    * ``opcode``: any value 0-15 (reserved ones included).
    * ``rsv``: the three RSV bits as a number, RSV1 the most significant (``4`` = RSV1, as in
      Autobahn's case code), any combination.
    * ``mask``: ``None``/``False`` for no mask, ``True`` for a fresh random key, or the 4-byte key.
    * ``length``: the *declared* payload length when it should differ from ``len(payload)``
      (a frame that promises more than it carries, or less).
    * ``length_field``: force the 7-, 16- or 64-bit encoding (non-minimal encodings, §5.2, or a
      7-bit field with a value over 125). Values that do not fit the chosen field are masked to
      it, which is how a test writes "127 in the 7-bit field" or a 64-bit length with its most
      significant bit set.
    """
    if not 0 <= opcode <= 15:
        raise ValueError(f"opcode {opcode} does not fit in 4 bits")
    if not 0 <= rsv <= 7:
        raise ValueError(f"rsv {rsv} does not fit in 3 bits")
    key: bytes | None
    if mask is True:
        key = random(4)
    elif mask is None or mask is False:
        key = None
    else:
        key = bytes(mask)
        if len(key) != 4:
            raise ValueError(f"a masking key is 4 bytes, not {len(key)}")
    declared = len(payload) if length is None else length
    field = minimal_length_field(declared) if length_field is None else length_field
    if length is None and length_field is None:
        # A valid header: let the core's serializer write it (and its mask).
        return serialize_frame(opcode, payload, fin=fin, rsv=rsv << 4, masking_key=key)
    b0 = (_FIN if fin else 0) | (rsv << 4) | opcode
    b1 = _MASK if key is not None else 0
    if field == 7:
        head = bytes((b0, b1 | (declared & 0x7F)))
    elif field == 16:
        head = bytes((b0, b1 | 126)) + struct.pack("!H", declared & 0xFFFF)
    else:
        head = bytes((b0, b1 | 127)) + struct.pack("!Q", declared & 0xFFFF_FFFF_FFFF_FFFF)
    if key is None:
        return head + payload
    return head + key + bytes(apply_mask(payload, key))


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """A decoded frame header, not judged: every field as it stood on the wire."""

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    masked: bool
    masking_key: bytes | None
    #: The declared payload length, as encoded (possibly non-minimal, possibly >= 2**63).
    length: int
    #: Bytes of header: 2, plus 2 or 8 of extended length, plus 4 of masking key.
    header_length: int
    length_field: LengthField

    @property
    def rsv(self) -> int:
        """The three RSV bits as a number, RSV1 the most significant."""
        return (self.rsv1 << 2) | (self.rsv2 << 1) | self.rsv3

    @property
    def is_control(self) -> bool:
        """§5.5: control frames have the most significant opcode bit set (8-15)."""
        return self.opcode >= 8


def decode_header(data: bytes | bytearray | memoryview, offset: int = 0) -> FrameHeader | None:
    """Decode the frame header at ``data[offset:]``; ``None`` if it is not complete yet."""
    available = len(data) - offset
    if available < 2:
        return None
    b0, b1 = data[offset], data[offset + 1]
    masked = bool(b1 & _MASK)
    short = b1 & 0x7F
    field: LengthField
    if short == 126:
        field, size = 16, 4
    elif short == 127:
        field, size = 64, 10
    else:
        field, size = 7, 2
    header_length = size + (4 if masked else 0)
    if available < header_length:
        return None
    if field == 16:
        length = struct.unpack_from("!H", data, offset + 2)[0]
    elif field == 64:
        length = struct.unpack_from("!Q", data, offset + 2)[0]
    else:
        length = short
    key = bytes(data[offset + size: offset + size + 4]) if masked else None
    return FrameHeader(
        fin=bool(b0 & _FIN), rsv1=bool(b0 & _RSV1), rsv2=bool(b0 & _RSV2),
        rsv3=bool(b0 & _RSV3), opcode=b0 & 0x0F, masked=masked, masking_key=key,
        length=length, header_length=header_length, length_field=field,
    )


@dataclass(frozen=True, slots=True)
class Violation:
    """A rule a frame breaks: the close code it calls for, where the RFC says so, and what."""

    close_code: int
    section: str
    message: str

    def __str__(self) -> str:
        return f"{self.message} (RFC 6455 §{self.section}, close {self.close_code})"


def check_header(
    header: FrameHeader,
    *,
    expect_masked: bool | None,
    rsv_allowed: int = 0,
    in_message: bool = False,
) -> Violation | None:
    """The first rule of RFC 6455 (and RFC 7692 for RSV1) that ``header`` breaks, or ``None``.

    ``expect_masked``: True when the sender is a client (§5.1: "a client MUST mask all frames
    that it sends to the server"), False when it is a server ("A server MUST NOT mask"), None
    to skip the check. ``rsv_allowed``: RSV bits (as :attr:`FrameHeader.rsv` numbers) owned by a
    negotiated extension (4 = RSV1 for permessage-deflate). ``in_message``: a fragmented data
    message is in progress. The order of the checks is the order of the header's fields.
    """
    if header.rsv & ~rsv_allowed:
        return Violation(1002, "5.2", f"RSV bits {header.rsv:03b} set and no extension owns them")
    if expect_masked is True and not header.masked:
        return Violation(1002, "5.1", "unmasked frame from a client")
    if expect_masked is False and header.masked:
        return Violation(1002, "5.1", "masked frame from a server")
    if header.is_control:
        if not header.fin:
            return Violation(1002, "5.5", "fragmented control frame")
        if header.length > 125:
            return Violation(1002, "5.5", f"control frame of {header.length} bytes (max 125)")
        if header.opcode not in (8, 9, 10):
            return Violation(1002, "5.2", f"reserved control opcode {header.opcode}")
        if header.opcode == 8 and header.length == 1:
            return Violation(1002, "5.5.1", "close frame with a 1-byte body")
        if header.rsv1 and rsv_allowed & 4:
            return Violation(1002, "RFC 7692 §6.1", "compressed control frame")
    else:
        if header.opcode not in (0, 1, 2):
            return Violation(1002, "5.2", f"reserved data opcode {header.opcode}")
        if header.opcode == 0 and not in_message:
            return Violation(1002, "5.4", "continuation frame with no message to continue")
        if header.opcode != 0 and in_message:
            return Violation(1002, "5.4", "new data frame inside a fragmented message")
        if header.opcode == 0 and header.rsv1 and rsv_allowed & 4:
            return Violation(1002, "RFC 7692 §6.1", "RSV1 on a continuation frame")
    if header.length_field != minimal_length_field(header.length):
        return Violation(1002, "5.2", f"length {header.length} not minimally encoded")
    if header.length_field == 64 and header.length >> 63:
        return Violation(1002, "5.2", "64-bit length with its most significant bit set")
    return None
