"""Frames as bytes, valid or not: forge any frame; decode any header with the core's reader.

Owns: building frame bytes that the validating serializer (:func:`rawws.sansio.frames.
serialize_frame`) refuses to build on purpose — reserved opcodes, RSV bits nobody negotiated,
masks on the wrong side, declared lengths that do not match the payload, non-minimal or
oversized length fields (RFC 6455 §5.2). Valid frames are still built by the core's serializer
and masked by the core's one masking function (:func:`rawws.sansio.mask.apply_mask`).

Decoding is the core's: the policy-free header decoder and the rules as functions returning a
:class:`Violation` (close code, RFC section, message) live in :mod:`rawws.sansio.reader` and
are re-exported here, so that ``rawws craft`` (a scriptable misbehaving peer) and the Python 3
conformance suite (:mod:`rawws.conformance`) build and read frames through one module.

Header layout, RFC 6455 §5.2: byte 0 is FIN, RSV1-3 and the 4-bit opcode; byte 1 is MASK and a
7-bit length, where 126 announces a 16-bit length and 127 a 64-bit length (most significant bit
0) in network byte order; then the 4-byte masking key when MASK is set; then the payload.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Literal

from ..sansio.frames import serialize_frame
from ..sansio.mask import apply_mask
from ..sansio.reader import (
    Header,
    Violation,
    check_close_payload,
    check_header,
    check_minimal_length,
    check_utf8,
    decode_header,
    opcode_name,
)

__all__ = [
    "Header",
    "LengthField",
    "Violation",
    "build_frame",
    "check_close_payload",
    "check_header",
    "check_minimal_length",
    "check_utf8",
    "decode_header",
    "minimal_length_field",
    "opcode_name",
    "rsv_number",
]

#: How a payload length is written: in the 7-bit field, or after 126 (16 bits) or 127 (64 bits).
LengthField = Literal[7, 16, 64]

_FIN, _MASK = 0x80, 0x80


def rsv_number(header: Header) -> int:
    """The three RSV bits of ``header`` as a number, RSV1 the most significant (4 = RSV1):
    the convention of :func:`build_frame` and of Autobahn's reports."""
    return header.rsv >> 4


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
