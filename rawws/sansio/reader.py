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
import typing
from collections.abc import Callable
from typing import NoReturn

from ..errors import InvalidUTF8, PayloadTooBig, ProtocolError
from .assembler import MessageAssembler
from .codes import CloseCode, Opcode, is_valid_close_code
from .frames import FIN, MASK_BIT, RSV1, RSV2, RSV3
from .mask import apply_mask

__all__ = [
    "KNOWN_OPCODES",
    "ControlHandler",
    "FrameReader",
    "FrameRecord",
    "Header",
    "Tracer",
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


# --- 3. the strict reader ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class FrameRecord:
    """One frame as a tracer sees it (see :class:`FrameReader` and the protocol's ``tracer``).

    ``direction`` is ``"received"`` or ``"sent"``; ``payload`` is unmasked, as the frame carried
    it (compressed, for a compressed frame); ``inflated`` is the payload after the extensions
    (received) or before them (sent), when an extension changed it. A received frame that
    breaks a rule is recorded with its ``violation`` (and, when the rule is about the header,
    an empty payload: the reader reads no further).
    """

    direction: str
    header: Header
    payload: bytes
    inflated: bytes | None = None
    violation: Violation | None = None


#: What a tracer is: called once per frame, in order, never for a frame that is not there.
Tracer = Callable[[FrameRecord], None]


class ControlHandler(typing.Protocol):
    """Who receives the control frames (the connection's state machine)."""

    def control_frame(self, opcode: int, payload: bytes) -> None: ...

_FAST_PATH_MAX = 65535  # the fast path takes 7- and 16-bit lengths
# A payload is lent to the adapter for reading into once this much of it arrived (and a quarter
# of it: see FrameReader.payload_buffer): benchmarks/instructions.py, 1 MiB echo.
_LEND_AFTER = 16384


class FrameReader:
    """The strict reader: bytes in (:meth:`feed`), frames out, the first broken rule raised.

    Complete data frames go to ``assembler`` (a
    :class:`~rawws.sansio.assembler.MessageAssembler`), control frames to
    ``handler.control_frame(opcode, payload)``. :meth:`stop` ends reading for good (a close
    frame arrived, or the connection failed: §5.5.1, §7.1.7).

    How bytes become frames:

    1. **Fast path** (``fast_path``; written for speed, benchmarks/instructions.py, echo): a
       whole TEXT or BINARY frame with FIN, no RSV bit, the mask bit this side expects, a 7- or
       16-bit length under every limit and outside a fragmented message is cut out, unmasked and
       handed to :meth:`MessageAssembler.message` with no object built for it. Every header
       rule holds for such a frame by construction, and the completion is the general path's.
       Off when an extension or a tracer needs the general path.
    2. **General path**: :func:`decode_header`, :func:`check_header`, :func:`check_size` on the
       declared length (before a byte of payload is kept), then the payload.
    3. **A payload that arrives over several reads** is consumed as it arrives. A text frame
       (no extension) is unmasked piece by piece and streamed into the assembler, whose
       UTF-8 check then fails on the first bad byte, not at the end of the frame. Any other
       frame is collected in one ``bytearray`` and unmasked once, when complete.
    4. Bytes of an incomplete header are kept for the next :meth:`feed`.
    5. An adapter may read the rest of a collected payload straight into its buffer:
       :meth:`payload_buffer` lends the free part of it, :meth:`payload_written` says how
       much was read there. The kernel then writes the payload where it stays until it is
       unmasked: no copy in Python (benchmarks/instructions.py, 1 MiB echo).
    """

    __slots__ = ("_buf", "_fast_limit", "_filled", "_header", "_left", "_offset", "_payload",
                 "_traced", "assembler", "expect_mask", "fast_path", "handler",
                 "max_frame_size", "reading", "rsv_allowed", "tracer")

    def __init__(self, assembler: MessageAssembler, handler: ControlHandler, *,
                 expect_mask: bool, max_frame_size: int | None = None,
                 tracer: Tracer | None = None) -> None:
        self.assembler = assembler
        self.handler = handler
        #: §5.1: a server reads masked frames, a client unmasked ones.
        self.expect_mask = expect_mask
        self.max_frame_size = max_frame_size
        #: RSV bits owned by the negotiated extensions (§5.2).
        self.rsv_allowed = 0
        self.tracer = tracer
        #: Whether the fast path may be taken (tests turn it off to compare both paths).
        self.fast_path = True
        self.reading = True
        self._buf = b""  # bytes of an incomplete header
        self._header: Header | None = None  # the frame whose payload is arriving
        self._left = 0  # bytes of that payload still to come
        self._offset = 0  # bytes of it already streamed (the masking key rotates with it)
        self._payload: bytearray | None = None  # the payload being collected, if not streamed
        self._filled = 0
        self._traced: list[bytes] | None = None  # a streamed payload, kept for the tracer
        self._fast_limit = -1
        self.configure()

    def configure(self) -> None:
        """Recompute what the fast path may take, after a limit, the extensions or the tracer
        changed: frames up to this length cross no limit; -1 turns it off."""
        limit = _FAST_PATH_MAX
        for bound in (self.assembler.max_size, self.max_frame_size):
            if bound is not None:
                limit = min(limit, bound)
        off = not self.fast_path or self.assembler.extensions or self.tracer is not None
        self._fast_limit = -1 if off else limit

    def stop(self) -> None:
        """Read nothing more: drop the partial frame and the partial message."""
        self.reading = False
        self._buf = b""
        self._header = None
        self._left = 0
        self._payload = None
        self._traced = None
        self.assembler.reset()

    def feed(self, data: bytes) -> None:
        """Read every frame in ``data`` (after what an earlier call left). Raises
        :class:`~rawws.errors.ProtocolError` for the first rule broken; what was read before
        it has been delivered."""
        if self._buf:
            data = self._buf + data
            self._buf = b""
        pos = 0
        end = len(data)
        assembler = self.assembler
        message = assembler.message
        small = self._fast_limit
        expect_mask = self.expect_mask
        while pos < end and self.reading:
            if self._left:
                pos = self._more(data, pos, end)
                continue
            if end - pos < 2:
                break
            b0 = data[pos]
            b1 = data[pos + 1]
            # 1. The fast path (see the class docstring): b0 is 0x81 or 0x82 (FIN, no RSV,
            # TEXT or BINARY) and the mask bit is as expected.
            if (b0 == 0x82 or b0 == 0x81) and (b1 >= 0x80) is expect_mask and not assembler.opcode:
                n = b1 & 0x7F
                if n < 126:
                    start = pos + 2
                else:  # 16-bit length when the header is here; 64-bit: never fast
                    n = (data[pos + 2] << 8) | data[pos + 3] if (
                        n == 126 and end - pos >= 4) else _FAST_PATH_MAX + 1
                    start = pos + 4
                if n <= small:
                    if expect_mask:
                        start += 4  # after the masking key
                    stop = start + n
                    if stop <= end:
                        pos = stop
                        message(b0 & 0x0F, apply_mask(data[start:stop], data[start - 4 : start])
                                if expect_mask else data[start:stop])
                        continue
            # 2. The general path.
            after = self._header_and_payload(data, pos, end)
            if after < 0:
                break  # incomplete header
            pos = after
        if pos < end and self.reading:
            self._buf = data[pos:]

    def _header_and_payload(self, data: bytes, pos: int, end: int) -> int:
        """Read the frame at ``pos``: return where the next one starts, -1 if its header is
        incomplete."""
        header = decode_header(data, pos)
        if header is None:
            return -1
        assembler = self.assembler
        opcode = header.opcode
        violation = check_header(header, expect_mask=self.expect_mask,
                                 rsv_allowed=self.rsv_allowed, in_message=assembler.opcode != 0)
        if violation is None and opcode < 8:
            violation = check_size(header.length, max_size=assembler.max_size,
                                   received=assembler.size if opcode == 0 else 0,
                                   max_frame_size=self.max_frame_size)
        if violation is not None:
            self._violation(header, b"", violation)
        pos += header.header_length
        length = header.length
        if end - pos >= length:  # the common case: the whole frame is here
            if header.mask_key is None:
                payload = data[pos : pos + length]
            else:  # unmasked straight out of the read: one copy, not two
                payload = apply_mask(memoryview(data)[pos : pos + length], header.mask_key)
            self._complete(header, payload)
            return pos + length
        # 3. The payload is still arriving.
        self._header = header
        self._left = length
        self._offset = 0
        self._filled = 0
        if opcode < 8 and not assembler.extensions and (
                opcode == 1 or (opcode == 0 and assembler.opcode == 1)):
            self._payload = None  # a text frame: streamed (fail-fast UTF-8)
            if opcode:
                assembler.start(opcode)
            if self.tracer is not None:
                self._traced = []
        else:
            self._payload = bytearray()
        return pos

    def _more(self, data: bytes, pos: int, end: int) -> int:
        """Consume what is here of the payload being received; return where it ends."""
        header = self._header
        assert header is not None
        take = min(self._left, end - pos)
        self._left -= take
        done = not self._left
        if self._payload is None:
            chunk = data[pos : pos + take]
            key = header.mask_key
            if key is not None:
                shift = self._offset & 3
                chunk = apply_mask(chunk, key[shift:] + key[:shift] if shift else key)
            self._offset += take
            if self._traced is not None:
                self._traced.append(chunk)
            self.assembler.data(chunk, done and header.fin)
            if done:
                self._header = None
                if self._traced is not None:
                    payload, self._traced = b"".join(self._traced), None
                    self._trace(header, payload, None)
        else:
            filled = self._filled
            self._payload[filled : filled + take] = memoryview(data)[pos : pos + take]
            self._filled = filled + take
            if done:
                self._collected()
        return pos + take

    def _collected(self) -> None:
        """The payload being collected is complete: unmask it once (into new bytes: the one
        copy after the buffer), and hand the frame on."""
        header, buffer = self._header, self._payload
        assert header is not None and buffer is not None
        self._header = self._payload = None
        payload = (apply_mask(buffer, header.mask_key) if header.mask_key is not None
                   else bytes(buffer))
        self._complete(header, payload)

    # --- reading straight into the payload's buffer (rule 5 of the class docstring) ----------

    def payload_buffer(self) -> memoryview | None:
        """Where the next bytes of the payload being collected may be read to directly, or
        ``None`` (no payload is being collected, or too little of it has arrived yet).

        The buffer is sized to the declared length once a quarter of it (and at least
        ``_LEND_AFTER`` bytes) has arrived, so that it holds at most four times what the peer
        sent, whatever length it claims. It is sized once: a view of it may still be alive in
        the adapter when the next one is asked for, and a bytearray with views cannot grow.
        """
        buffer = self._payload
        filled = self._filled
        if buffer is None or filled < _LEND_AFTER:
            return None
        end = filled + self._left
        if len(buffer) < end:
            if 4 * filled < end:
                return None  # read it the ordinary way until a quarter has arrived
            buffer.extend(bytes(end - len(buffer)))
        return memoryview(buffer)[filled:end]

    def payload_written(self, nbytes: int) -> None:
        """``nbytes`` were written at the start of the view :meth:`payload_buffer` gave."""
        assert self._payload is not None and 0 < nbytes <= self._left
        self._filled += nbytes
        self._left -= nbytes
        if not self._left:
            self._collected()

    def _complete(self, header: Header, payload: bytes) -> None:
        """A frame and its whole (unmasked) payload."""
        opcode = header.opcode
        if opcode >= 8:
            if self.tracer is not None:  # recorded before what it causes (a pong, a close)
                violation = check_close_payload(payload) if opcode == 8 else None
                if violation is not None:
                    self._violation(header, payload, violation)
                self._trace(header, payload, None)
            self.handler.control_frame(opcode, payload)
            return
        if self.tracer is None:
            self.assembler.frame(header.fin, header.rsv, opcode, payload)
            return
        try:
            decoded = self.assembler.frame(header.fin, header.rsv, opcode, payload)
        except ProtocolError as exc:
            self._violation(header, payload, Violation(exc.close_code, exc.section or "", str(exc)),
                            exc)
        self._trace(header, payload, decoded if decoded is not payload else None)

    def _trace(self, header: Header, payload: bytes, inflated: bytes | None) -> None:
        if self.tracer is not None:
            self.tracer(FrameRecord("received", header, payload, inflated))

    def _violation(self, header: Header, payload: bytes, violation: Violation,
                   exc: ProtocolError | None = None) -> NoReturn:
        """Record the frame with what it broke, then raise."""
        if self.tracer is not None:
            self.tracer(FrameRecord("received", header, payload, None, violation))
        if exc is not None:
            raise exc
        raise violation.error()
