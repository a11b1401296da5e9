"""Frames to bytes: the send side of a connection and its one outbox (RFC 6455 §5.1-§5.3).

Owns: the outbox (every byte a connection sends leaves through it, in the order it was
produced: the application's messages and the frames the RFC requires alike), masking keys for
client frames (§5.3), the extensions' encoding of outgoing data frames (RFC 7692 §7.2.1), and
serializing a frame once for many connections (the broadcast path).

Does not own: whether a frame may be sent now (the state machine in
:mod:`rawws.sansio.protocol` checks that first), the frame layout (:mod:`rawws.sansio.frames`).

Theory of operation:

1. A frame is queued as ``bytes`` in :attr:`FrameWriter.out`; :meth:`FrameWriter.take` hands
   the queue to the caller (``Protocol.data_to_send``) and starts a new one.
2. A large payload is queued as two items, its header and the payload itself, rather than one
   concatenation: no copy of the payload is made here (``_SPLIT``). The transport writes them
   in order.
3. A client masks every frame with a fresh key (§5.3: "derived from a strong source of
   entropy"), drawn from ``random`` 4 KiB at a time.
4. With a ``tracer``, every frame queued is also reported (see
   :class:`~rawws.sansio.reader.FrameRecord`), its header decoded from the bytes queued.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .extensions import Extension
from .frames import RSV1, RSV2, RSV3, Frame, _pack_4, _pack_10, serialize_frame
from .reader import FrameRecord, Tracer, decode_header

__all__ = ["FrameWriter"]

_MASK_POOL_SIZE = 4096  # random bytes drawn at once for client masking keys (1024 frames)
# Payloads from this size on are queued apart from their header (benchmarks/instructions.py,
# 64 KiB and 1 MiB echo: the concatenation copied the payload once more).
_SPLIT = 16384


class FrameWriter:
    """The send side of one connection. ``mask``: a client's (every frame masked)."""

    __slots__ = ("_mask_pool", "_mask_pos", "extensions", "mask", "out", "random", "tracer")

    def __init__(self, *, mask: bool, random: Callable[[int], bytes],
                 tracer: Tracer | None = None) -> None:
        self.mask = mask
        self.random = random
        self.tracer = tracer
        #: Negotiated extensions, in the order they apply on send.
        self.extensions: Sequence[Extension] = ()
        #: What to write, in order (see :meth:`take`).
        self.out: list[bytes] = []
        self._mask_pool = b""
        self._mask_pos = 0

    def take(self) -> list[bytes]:
        """Hand over everything queued since the last call."""
        out, self.out = self.out, []
        return out

    def masking_key(self) -> bytes:
        """A fresh key (§5.3), from ``random`` 4 KiB at a time: one system call per 1024 frames
        (benchmarks/micro.py, "serialize")."""
        pos = self._mask_pos
        if pos >= len(self._mask_pool):
            self._mask_pool = self.random(_MASK_POOL_SIZE)
            pos = 0
        self._mask_pos = pos + 4
        return self._mask_pool[pos : pos + 4]

    def encode(self, opcode: int, payload: bytes, fin: bool,
               compress: bool | None) -> tuple[bytes, int]:
        """A data frame through the extensions: its payload and RSV bits."""
        if not self.extensions:
            return payload, 0
        frame = Frame(opcode, payload, fin)
        for ext in self.extensions:
            frame = ext.encode(frame, compress=compress)
        rsv = (RSV1 if frame.rsv1 else 0) | (RSV2 if frame.rsv2 else 0) | (
            RSV3 if frame.rsv3 else 0)
        return frame.payload, rsv

    def data(self, opcode: int, payload: bytes, fin: bool, compress: bool | None) -> int:
        """Queue a data frame (extensions applied); return the bytes queued."""
        if not self.extensions:
            return self.frame(opcode, payload, fin)
        encoded, rsv = self.encode(opcode, payload, fin, compress)
        return self.frame(opcode, encoded, fin, rsv, original=payload)

    def frame(self, opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, *,
              original: bytes | None = None) -> int:
        """Queue one frame (``payload`` already encoded); return the bytes queued.
        ``original``: the payload before the extensions, for the tracer."""
        b0 = (0x80 if fin else 0) | rsv | opcode
        n = len(payload)
        key = self.masking_key() if self.mask else None
        if n < _SPLIT or key is not None:
            data = serialize_frame(opcode, payload, fin=fin, rsv=rsv, masking_key=key)
            self.out.append(data)
            head_length = len(data) - n
        else:
            head = _pack_4(b0, 126, n) if n < 65536 else _pack_10(b0, 127, n)
            self.out.append(head)
            self.out.append(payload)
            data = head
            head_length = len(head)
        if self.tracer is not None:
            header = decode_header(data)
            assert header is not None
            inflated = original if original is not None and original != payload else None
            self.tracer(FrameRecord("sent", header, payload, inflated))
        return head_length + n

    def prepare(self, opcode: int, payload: bytes, compress: bool | None) -> bytes:
        """One unmasked frame's bytes, not queued: the same bytes suit every connection whose
        extensions have the same ``broadcast_key``."""
        encoded, rsv = self.encode(opcode, payload, True, compress)
        return serialize_frame(opcode, encoded, rsv=rsv)

    def prepared(self, frame_bytes: bytes) -> int:
        """Queue the bytes made by :meth:`prepare` (here or on another connection)."""
        self.out.append(frame_bytes)
        if self.tracer is not None:
            header = decode_header(frame_bytes)
            assert header is not None
            self.tracer(FrameRecord("sent", header, frame_bytes[header.header_length :]))
        return len(frame_bytes)

