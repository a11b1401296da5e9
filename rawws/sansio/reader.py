"""Bytes to frames (RFC 6455 §5.2-§5.5): the frame header, the rules a frame must obey, and the
strict reader the connection uses.

Owns three things, each usable on its own:

1. **The header decoder**, :func:`decode_header`: any bytes in, the fields of one frame header
   out (:class:`Header`), with no opinion about them. Reserved opcodes, RSV bits, a wrong mask
   bit, an oversized control frame, a length encoded with more bytes than needed: all decoded
   as they are. This is what a tracing proxy or a conformance suite needs to *show* a frame.
2. **The rules**, one function per rule (``check_*``). Each returns a :class:`Violation`
   (close code, RFC section, message) or ``None``; none raises. Tools report violations;
   the strict reader raises :meth:`Violation.error`.
3. **The strict reader** used by the protocol, built on the two above (see the class).

Does not own: what a frame *means* for the connection. Data frames go on to the message
assembler (:mod:`rawws.sansio.assembler`: continuation, UTF-8, size, inflation); control frames
to the state machine (:mod:`rawws.sansio.protocol`: pong, close echo).

Theory of operation (the rules, in the order the strict reader applies them to a header):

1. §5.2: an opcode is known (0, 1, 2, 8, 9, 10); "If an unknown opcode is received, the
   receiving endpoint MUST _Fail the WebSocket Connection_" → 1002.
2. §5.2: RSV bits are zero unless a negotiated extension defines them, and extensions only own
   the RSV bits of data frames (RFC 7692 §6.1: control frames are never compressed) → 1002.
3. §5.1: a client masks every frame, a server none; "a server MUST close the connection upon
   receiving a frame that is not masked", "a client MUST close a connection if it detects a
   masked frame" → 1002.
4. §5.2: in a 64-bit length "the most significant bit MUST be 0" → 1002.
5. §5.5: control frames have at most 125 bytes of payload and are never fragmented → 1002.
6. §5.4: a continuation frame continues a message; a new data frame may not start before the
   previous message ended → 1002.
7. The declared length fits what is left of the message budget (``max_size``) and the frame
   limit (``max_frame_size``), checked before a byte of payload is buffered (§10.4) → 1009.

Not enforced: §5.2's "the minimal number of bytes MUST be used to encode the length" is a rule
for the sender that no receiver enforces (websockets, aiohttp and browsers accept a padded
length); :func:`check_minimal_length` reports it for tools that want to.

Payload rules live here too, for tools and for the two callers in the core: the body of a close
frame (§5.5.1, §7.4, :func:`check_close_payload`) and UTF-8 text (§8.1, :func:`check_utf8`).

Frame layout, RFC 6455 §5.2: see :mod:`rawws.sansio.frames`.
"""

from __future__ import annotations

import dataclasses

from ..errors import InvalidUTF8, PayloadTooBig, ProtocolError
from .codes import CloseCode, Opcode, is_valid_close_code
from .frames import FIN, MASK_BIT, RSV1, RSV2, RSV3

__all__ = [
    "KNOWN_OPCODES",
    "Header",
    "Violation",
    "check_close_payload",
    "check_continuation",
    "check_control",
    "check_header",
    "check_length",
    "check_mask",
    "check_minimal_length",
    "check_opcode",
    "check_rsv",
    "check_size",
    "check_utf8",
    "decode_header",
    "opcode_name",
    "parse_close_payload",
]

#: Opcodes defined by RFC 6455 §5.2 (§11.8); 3-7 and 11-15 are reserved.
KNOWN_OPCODES = frozenset({0, 1, 2, 8, 9, 10})

_RSV_BITS = RSV1 | RSV2 | RSV3


def opcode_name(opcode: int) -> str:
    """``TEXT``, ``CONTINUATION``... or ``0x3`` for a reserved opcode."""
    try:
        return Opcode(opcode).name
    except ValueError:
        return f"{opcode:#x}"


# --- 1. the header decoder ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Header:
    """The fields of one frame header, exactly as they are on the wire (RFC 6455 §5.2).

    ``length`` is the declared payload length; ``header_length`` the size of the header itself
    (2 to 14 bytes: the two first bytes, 0, 2 or 8 bytes of extended length, 0 or 4 of masking
    key); ``minimal_length`` whether the length used the shortest of the three encodings.
    """

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    masked: bool
    mask_key: bytes | None
    length: int
    header_length: int
    minimal_length: bool

    @property
    def rsv(self) -> int:
        """The RSV bits in header position (``frames.RSV1`` is ``0x40``)."""
        return (RSV1 if self.rsv1 else 0) | (RSV2 if self.rsv2 else 0) | (RSV3 if self.rsv3 else 0)

    @property
    def is_control(self) -> bool:
        """§5.5: "Control frames are identified by opcodes where the most significant bit of
        the opcode is 1" (reserved ones included)."""
        return self.opcode >= 8

    @property
    def frame_length(self) -> int:
        """Header plus payload: the bytes this frame takes on the wire."""
        return self.header_length + self.length


def decode_header(data: bytes | bytearray | memoryview, offset: int = 0) -> Header | None:
    """Decode the frame header that starts at ``data[offset]``; ``None`` while it is incomplete.

    Policy-free: every combination of bits decodes (see the module docstring for the rules,
    which are separate functions). Only the header is read; the payload may not be there yet.
    """
    available = len(data) - offset
    if available < 2:
        return None
    b0 = data[offset]
    b1 = data[offset + 1]
    length = b1 & 0x7F
    head = 2
    minimal = True
    if length == 126:
        if available < 4:
            return None
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        head = 4
        minimal = length >= 126
    elif length == 127:
        if available < 10:
            return None
        length = int.from_bytes(data[offset + 2 : offset + 10], "big")
        head = 10
        minimal = length >= 65536
    masked = bool(b1 & MASK_BIT)
    key: bytes | None = None
    if masked:
        if available < head + 4:
            return None
        key = bytes(data[offset + head : offset + head + 4])
        head += 4
    return Header(
        fin=bool(b0 & FIN), rsv1=bool(b0 & RSV1), rsv2=bool(b0 & RSV2), rsv3=bool(b0 & RSV3),
        opcode=b0 & 0x0F, masked=masked, mask_key=key, length=length, header_length=head,
        minimal_length=minimal,
    )


# --- 2. the rules -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Violation:
    """A broken rule: the close code it fails the connection with, the RFC section it breaks
    (``"5.2"``; RFC 7692 sections are written ``"RFC 7692 6.1"``) and what happened."""

    close_code: int
    section: str
    message: str

    def __str__(self) -> str:
        section = self.section if self.section.startswith("RFC") else f"RFC 6455 §{self.section}"
        return f"{self.message} ({section})"

    def error(self) -> ProtocolError:
        """The exception the strict reader raises for it (the close code decides the class)."""
        cls: type[ProtocolError] = ProtocolError
        if self.close_code == CloseCode.INVALID_FRAME_PAYLOAD_DATA:
            cls = InvalidUTF8
        elif self.close_code == CloseCode.MESSAGE_TOO_BIG:
            cls = PayloadTooBig
        return cls(self.message, self.close_code, section=self.section)


_PROTOCOL_ERROR = int(CloseCode.PROTOCOL_ERROR)


def check_opcode(header: Header) -> Violation | None:
    """§5.2: reserved opcodes fail the connection."""
    if header.opcode not in KNOWN_OPCODES:
        return Violation(_PROTOCOL_ERROR, "5.2", f"reserved opcode {header.opcode:#x}")
    return None


def check_rsv(header: Header, *, allowed: int = 0) -> Violation | None:
    """§5.2: RSV bits must be 0 "unless an extension is negotiated that defines meanings for
    non-zero values"; ``allowed`` holds the bits the negotiated extensions own (for data frames
    only: extensions never own the bits of a control frame)."""
    rsv = header.rsv
    if rsv & ~allowed or (rsv and header.opcode >= 8):
        return Violation(_PROTOCOL_ERROR, "5.2", f"reserved bits set: {rsv >> 4:03b}")
    return None


def check_mask(header: Header, *, expect_mask: bool) -> Violation | None:
    """§5.1: frames from a client are masked (``expect_mask=True`` on a server), frames from a
    server are not."""
    if header.masked is not expect_mask:
        return Violation(_PROTOCOL_ERROR, "5.1", "client frame is not masked" if expect_mask
                         else "server frame is masked")
    return None


def check_length(header: Header) -> Violation | None:
    """§5.2: "the most significant bit MUST be 0" in a 64-bit payload length."""
    if header.length >> 63:
        return Violation(_PROTOCOL_ERROR, "5.2",
                         "64-bit payload length has its most significant bit set")
    return None


def check_minimal_length(header: Header) -> Violation | None:
    """§5.2: "the minimal number of bytes MUST be used to encode the length". A rule for the
    sender: the strict reader does not apply it (see the module docstring)."""
    if not header.minimal_length:
        return Violation(_PROTOCOL_ERROR, "5.2",
                         f"payload length {header.length} not encoded in the minimal number "
                         f"of bytes")
    return None


def check_control(header: Header) -> Violation | None:
    """§5.5: "All control frames MUST have a payload length of 125 bytes or less and MUST NOT
    be fragmented.\""""
    if header.opcode >= 8:
        if header.length > 125:
            return Violation(_PROTOCOL_ERROR, "5.5",
                             f"control frame payload is {header.length} bytes (max 125)")
        if not header.fin:
            return Violation(_PROTOCOL_ERROR, "5.5", "fragmented control frame")
    return None


def check_continuation(header: Header, *, in_message: bool) -> Violation | None:
    """§5.4: a continuation frame needs a fragmented message to continue (``in_message``), and
    a new data message may not start before that one ended."""
    if header.opcode == 0:
        if not in_message:
            return Violation(_PROTOCOL_ERROR, "5.4",
                             "continuation frame without a message to continue")
    elif header.opcode < 8 and in_message:
        return Violation(_PROTOCOL_ERROR, "5.4",
                         "new data frame before the fragmented message ended")
    return None


def check_header(header: Header, *, expect_mask: bool, rsv_allowed: int = 0,
                 in_message: bool = False) -> Violation | None:
    """Every header rule, in the order of the module docstring; the first one broken."""
    return (check_opcode(header) or check_rsv(header, allowed=rsv_allowed)
            or check_mask(header, expect_mask=expect_mask) or check_length(header)
            or check_control(header) or check_continuation(header, in_message=in_message))


def check_size(length: int, *, max_size: int | None, received: int = 0,
               max_frame_size: int | None = None) -> Violation | None:
    """§10.4: a declared frame length of ``length`` bytes, in a message that already holds
    ``received`` bytes, against the message limit ``max_size`` and the frame limit
    ``max_frame_size`` (``None``: unlimited) → 1009 "Message Too Big" (§7.4.1)."""
    if max_size is not None and received + length > max_size:
        return Violation(CloseCode.MESSAGE_TOO_BIG, "10.4",
                         f"message over {max_size} bytes (frame of {length} bytes)")
    if max_frame_size is not None and length > max_frame_size:
        return Violation(CloseCode.MESSAGE_TOO_BIG, "10.4",
                         f"frame of {length} bytes over {max_frame_size}")
    return None


def check_utf8(payload: bytes | bytearray | memoryview) -> Violation | None:
    """§8.1: a text message (or a close reason) must be valid UTF-8 → 1007."""
    try:
        bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        return Violation(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "8.1",
                         f"text message is not valid UTF-8: {exc.reason}")
    return None


def check_close_payload(payload: bytes | bytearray | memoryview) -> Violation | None:
    """The body of a close frame: empty, or a 2-byte code (§5.5.1) that may be sent (§7.4)
    followed by a UTF-8 reason (§8.1, 1007)."""
    try:
        parse_close_payload(payload)
    except ProtocolError as exc:
        return Violation(exc.close_code, exc.section or "5.5.1", str(exc))
    return None


def parse_close_payload(payload: bytes | bytearray | memoryview) -> tuple[int, str]:
    """Return ``(code, reason)`` from a received close frame body; raise for a bad one.

    §5.5.1: if there is a body, its first two bytes MUST be a code, so a 1-byte body is a
    protocol error (1002). An empty body means no code was given: report 1005 (§7.1.5). Codes
    that may not be sent are a protocol error (§7.4.1, 1002). The reason MUST be UTF-8, else
    1007 (§8.1).
    """
    n = len(payload)
    if n == 0:
        return int(CloseCode.NO_STATUS_RCVD), ""
    if n == 1:
        raise ProtocolError("close frame payload is 1 byte long; a close code takes 2",
                            section="5.5.1")
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise ProtocolError(f"invalid close code {code}", section="7.4")
    try:
        reason = bytes(payload[2:]).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidUTF8("close reason is not valid UTF-8", section="8.1") from None
    return code, reason
