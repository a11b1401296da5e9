"""Frames to messages (RFC 6455 §5.4, §8.1; RFC 7692 §6): fragmentation, UTF-8, size, inflation.

Owns: the message being received, and the moment it becomes an event (``str`` for a text
message, ``bytes`` for a binary one, appended to the connection's event list).

Does not own: reading frames and the rules of their headers (:mod:`rawws.sansio.reader` checks
continuation order and the declared length against :meth:`MessageAssembler.budget` before any
payload is buffered), control frames (:mod:`rawws.sansio.protocol`), the compression itself
(:mod:`rawws.sansio.deflate`, through the extension interface).

Theory of operation:

1. A message is one data frame with FIN, or a first frame (TEXT or BINARY) without FIN, any
   number of continuation frames, and a last continuation frame with FIN (§5.4). Control frames
   may come in between; they never reach the assembler.
2. Every unfragmented message ends in :meth:`MessageAssembler.message`: the reader's fast path
   (a small whole frame, no extension) and the general path (:meth:`MessageAssembler.frame`)
   both call it, so a whole message is checked in one place. A fragmented message, or a frame
   whose payload arrives over several reads, goes through :meth:`~MessageAssembler.start` and
   :meth:`~MessageAssembler.data` instead, piece by piece.
3. UTF-8 (§8.1): a whole text message is decoded at once (in C); a fragmented one with an
   incremental decoder, on every piece as it arrives, so that a bad byte fails the connection
   (1007) before the rest of the message comes (Autobahn 6.4.x).
4. Size (§10.4): the reader checked every declared length against :meth:`budget`. What an
   extension produces is bounded by the same budget (deflate stops inflating one byte past it)
   and checked here once more: a message never grows past ``max_size`` (1009), whatever the
   compression ratio.
5. Inflation (RFC 7692 §6): every data frame goes through the negotiated extensions, last
   negotiated first, before it is assembled; a compressed fragmented message is inflated frame
   by frame, each bounded by what is left of the budget.
6. Binary pieces are kept as they are (``bytes``) and joined once, at the end: no repeated
   concatenation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import PayloadTooBig
from .codes import Opcode
from .extensions import Extension
from .frames import RSV1, RSV2, RSV3, Frame
from .utf8 import Utf8Decoder, decode_text, invalid

__all__ = ["MessageAssembler"]

_TEXT = Opcode.TEXT.value


class MessageAssembler:
    """Assembles the messages of one connection into ``events``.

    ``opcode`` is the opcode of the fragmented message being received (0: none); ``size`` the
    bytes it holds so far (after inflation).
    """

    __slots__ = ("_decoder", "_parts", "_text", "events", "extensions", "max_size", "opcode",
                 "size")

    def __init__(self, events: list[Any], *, max_size: int | None,
                 extensions: Sequence[Extension] = ()) -> None:
        self.events = events
        self.max_size = max_size
        #: Negotiated extensions, in the order they apply on send (decoding runs in reverse).
        self.extensions = list(extensions)
        self.opcode = 0
        self.size = 0
        # The message being assembled, made by start() (an idle connection holds none of it).
        self._decoder: Utf8Decoder | None = None
        self._parts: list[bytes] | None = None  # a binary message's pieces
        self._text: list[str] | None = None  # a text message's pieces, decoded

    def budget(self, opcode: int) -> int | None:
        """What a data frame with ``opcode`` may still add to its message (``None``:
        unlimited): all of ``max_size`` for a first frame, what is left for a continuation."""
        if self.max_size is None:
            return None
        return self.max_size - self.size if opcode == 0 else self.max_size

    # --- whole messages -----------------------------------------------------------------------

    def message(self, opcode: int, payload: bytes) -> None:
        """An unfragmented message, payload final: the one completion of both paths.

        Written for speed (benchmarks/instructions.py, 64-byte echo): it is called once per
        message, and nothing else runs between the reader's fast path and the event.
        """
        if opcode == _TEXT:
            self.events.append(decode_text(payload))  # §8.1, 1007
        else:
            self.events.append(payload)

    def frame(self, fin: bool, rsv: int, opcode: int, payload: bytes) -> bytes:
        """One complete data frame, unmasked. Returns its payload after the extensions (what
        a trace shows as inflated)."""
        if self.extensions:
            payload = self._decode(fin, rsv, opcode, payload)
        if opcode:
            if fin:
                self.message(opcode, payload)
                return payload
            self.start(opcode)
        self.data(payload, fin)
        return payload

    def _decode(self, fin: bool, rsv: int, opcode: int, payload: bytes) -> bytes:
        budget = self.budget(opcode)
        frame = Frame(opcode, payload, fin, bool(rsv & RSV1), bool(rsv & RSV2), bool(rsv & RSV3))
        for ext in reversed(self.extensions):
            frame = ext.decode(frame, max_size=budget)
        payload = frame.payload
        if budget is not None and len(payload) > budget:
            # Extensions must honour the budget (deflate does); this holds them to it.
            raise PayloadTooBig(f"message over {self.max_size} bytes", section="10.4")
        return payload

    # --- fragmented messages, and payloads that arrive in pieces ------------------------------

    def start(self, opcode: int) -> None:
        """A message starts (its first frame is not final, or its payload arrives in pieces)."""
        self.opcode = opcode
        self.size = 0
        if opcode == _TEXT:
            self._decoder = Utf8Decoder()
            self._text = []
        else:
            self._parts = []

    def data(self, piece: bytes, final: bool) -> None:
        """A piece of the message being assembled; ``final``: the last one (FIN and the end of
        its frame's payload)."""
        self.size += len(piece)
        decoder = self._decoder
        if decoder is not None:
            try:
                text = decoder.decode(piece, final)  # fails fast (§8.1)
            except UnicodeDecodeError as exc:
                raise invalid(exc) from None
            texts = self._text
            assert texts is not None  # start() made it
            if text:
                texts.append(text)
            if final:
                self.events.append("".join(texts))
                self.reset()
        else:
            parts = self._parts
            assert parts is not None  # start() made it
            if piece:
                parts.append(piece)
            if final:
                self.events.append(b"".join(parts))
                self.reset()

    def reset(self) -> None:
        """Forget the message being assembled (it completed, or the connection failed)."""
        self.opcode = 0
        self.size = 0
        self._decoder = None
        self._parts = None
        self._text = None
