"""permessage-deflate (RFC 7692): negotiation, and bounded compression per message.

Owns: the ``permessage-deflate`` parameters both ways (RFC 7692 §7.1), the transformation of
data frames (§7.2) and the decompression bound (the zip-bomb guard). Implements the interfaces
of :mod:`rawws.sansio.extensions`; :mod:`rawws.sansio.handshake` calls the factories and
:mod:`rawws.sansio.protocol` calls :meth:`PerMessageDeflate.decode` / ``encode`` per data frame.

Does not own: parsing the ``Sec-WebSocket-Extensions`` header (handshake.py hands us
``[(name, value or None)]`` with quoted values already unquoted), control frames (§6.1: never
compressed; they never reach an extension), the message size budget (protocol.py passes what is
left of it with every frame) and broadcasting (the aio layer; we only provide ``broadcast_key``).

Theory of operation (docs/deflate.md has the measurements and the reasons):

1. A message is compressed if the RSV1 bit of its *first* frame is set (§6). Continuation
   frames never carry RSV1 (§6.1). ``decode`` is called once per frame, so "the current message
   is compressed" is remembered from the first frame to the final one; the same holds on send.
2. Sending: ``compress(data) + flush(Z_SYNC_FLUSH)`` per frame. The final frame drops the
   ``00 00 ff ff`` that the sync flush ends with (§7.2.1); if nothing is left, it carries a
   single ``0x00`` (§7.2.3.6, an empty stored block whose length fields the peer appends).
3. Receiving: feed every frame to one inflater; after the final frame, feed ``00 00 ff ff``
   (§7.2.2), except when the message's compressed bytes already end at a block boundary (an
   empty message, or a peer that did not remove the tail): appending would then start a stored
   block that never ends and wreck the next message.
4. Bounded inflate: every ``decompress`` call gets ``max_length = budget + 1`` where ``budget``
   is what is left of ``max_size`` for this message. Output longer than the budget raises
   :class:`~rawws.errors.PayloadTooBig` (1009) at once: at most ``budget + 1`` bytes are ever
   produced, whatever the compression ratio. The rest of the input stays in ``unconsumed_tail``
   and is dropped with the connection.
5. Corrupt DEFLATE data fails with 1007 (invalid frame payload data); RSV1 on a continuation
   frame is a framing error, 1002. docs/deflate.md says why.
6. zlib objects are created on first use. Without context takeover on a side, that side's object
   lives for one message only: it is dropped at the end of the message and a fresh one is made
   for the next (cheaper than ``copy()`` of a pristine object, and an idle connection then holds
   no zlib memory at all).
7. A window of 8 bits (a 256-byte window, allowed by §7.1.2) cannot be made by zlib's raw
   deflate. When we must compress for an 8-bit window we use wbits 9 with the ``Z_RLE``
   strategy, whose matches all have distance 1 (zlib manual): every back-reference is then
   inside any window. We inflate 8-bit streams with a 9-bit window (a larger window decodes any
   stream made for a smaller one, and tolerates zlib-based peers that asked for 8 and got 9).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Hashable, Sequence

from ..errors import InvalidState, NegotiationError, PayloadTooBig, ProtocolError
from .codes import CloseCode, Opcode
from .extensions import Extension, ExtensionParams
from .frames import RSV1, Frame

__all__ = [
    "DEFAULT_COMPRESS_LEVEL",
    "DEFAULT_COMPRESS_THRESHOLD",
    "DEFAULT_MAX_WINDOW_BITS",
    "DEFAULT_MEM_LEVEL",
    "ClientPerMessageDeflateFactory",
    "PerMessageDeflate",
    "ServerPerMessageDeflateFactory",
]

NAME = "permessage-deflate"

#: The window we ask the peer to compress with and compress with ourselves on the server (a
#: 4 KiB window): 38 KiB per compressor and 11 KiB per decompressor instead of 150 KiB and
#: 39 KiB at 15 bits, for about 15% more bytes on the wire (docs/deflate.md, "Memory").
DEFAULT_MAX_WINDOW_BITS = 12
#: zlib memLevel of our compressors: 5 costs 16 KiB of hash tables instead of 128 KiB at 8,
#: with the same output size on chat-sized messages (docs/deflate.md).
DEFAULT_MEM_LEVEL = 5
#: zlib's default level.
DEFAULT_COMPRESS_LEVEL = 6
#: Whole messages shorter than this many bytes are sent uncompressed when ``compress=None``.
DEFAULT_COMPRESS_THRESHOLD = 128

# §7.2.1: the 4 octets removed from the tail end on send and appended on receive (§7.2.2).
_TAIL = b"\x00\x00\xff\xff"
# §7.2.3.6: the payload of a final frame that has nothing else to carry.
_EMPTY_STORED_BLOCK_HEAD = b"\x00"
# What may follow a block with BFINAL set (§7.2.3.4): the empty stored block of §7.2.1 step 2
# (with or without its own header byte), or nothing when the peer sent no tail.
_AFTER_FINAL_BLOCK = (b"", _TAIL, b"\x00" + _TAIL)
# Above this size the tail is fed in a second call instead of copying the payload to append it.
_CONCAT_LIMIT = 4096

_CONTINUATION = Opcode.CONTINUATION
_INVALID_DATA = int(CloseCode.INVALID_FRAME_PAYLOAD_DATA)

# §7.1.2.1 / §7.1.2.2: "a decimal integer value without leading zeroes between 8 to 15".
_WINDOW_BITS_RE = re.compile(r"(?:[89]|1[0-5])\Z")


class PerMessageDeflate:
    """permessage-deflate on one connection, after negotiation (RFC 7692 §7).

    ``local_*`` describes what we send, ``remote_*`` what the peer sends. On a server, local is
    ``server_*`` and remote is ``client_*``; on a client, the reverse. Factories build this object
    from the agreed parameters; tests build it directly.
    """

    name = NAME
    rsv_bits = RSV1

    __slots__ = (
        "_decoder",
        "_decoding",
        "_encoder",
        "_encoding",
        "_in_last4",
        "compress_level",
        "compress_threshold",
        "local_max_window_bits",
        "local_no_context_takeover",
        "mem_level",
        "params",
        "remote_max_window_bits",
        "remote_no_context_takeover",
    )

    def __init__(
        self,
        *,
        local_no_context_takeover: bool = False,
        remote_no_context_takeover: bool = False,
        local_max_window_bits: int = 15,
        remote_max_window_bits: int = 15,
        compress_level: int = DEFAULT_COMPRESS_LEVEL,
        mem_level: int = DEFAULT_MEM_LEVEL,
        compress_threshold: int = DEFAULT_COMPRESS_THRESHOLD,
        params: Sequence[tuple[str, str | None]] = (),
    ) -> None:
        _check_window_bits("local_max_window_bits", local_max_window_bits)
        _check_window_bits("remote_max_window_bits", remote_max_window_bits)
        _check_compress_settings(compress_level, mem_level, compress_threshold)
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_max_window_bits = local_max_window_bits
        self.remote_max_window_bits = remote_max_window_bits
        self.compress_level = compress_level
        self.mem_level = mem_level
        self.compress_threshold = compress_threshold
        #: The agreed parameters, as the server's response put them (for display).
        self.params: tuple[tuple[str, str | None], ...] = tuple(params)
        # Created on first use (GUIDE: "allocate per-connection state lazily").
        self._encoder: zlib._Compress | None = None
        self._decoder: zlib._Decompress | None = None
        # A compressed fragmented message is being sent / received.
        self._encoding = False
        self._decoding = False
        # The last (up to) 4 compressed bytes of the message being received: see _ends_at_boundary.
        self._in_last4 = _TAIL

    def __repr__(self) -> str:
        return f"<PerMessageDeflate {self}>"

    def __str__(self) -> str:
        """The agreed parameters in ``Sec-WebSocket-Extensions`` syntax, for ``ws.extensions``."""
        return "; ".join([NAME, *(p if v is None else f"{p}={v}" for p, v in self.params)])

    # --- broadcast -------------------------------------------------------------------------------

    @property
    def broadcast_key(self) -> Hashable | None:
        """Equal keys guarantee identical bytes for any message (see :class:`Extension`).

        Without context takeover on our sending side, every message is compressed by a fresh
        compressor built from exactly these settings, so the output depends on nothing else (in
        one process, that is with one zlib). With context takeover it depends on this
        connection's history: ``None``.
        """
        if not self.local_no_context_takeover:
            return None
        return (NAME, self.local_max_window_bits, self.mem_level, self.compress_level,
                self.compress_threshold)

    # --- sending (§7.2.1) ------------------------------------------------------------------------

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        """Compress one outgoing data frame (RFC 7692 §7.2.1).

        ``compress`` is read on the first frame of a message only: ``False`` sends the message
        as is, ``True`` compresses it, ``None`` compresses it unless it is a single frame shorter
        than ``compress_threshold`` bytes (a fragmented message is compressed: its size is not
        known yet). Continuation frames follow their first frame.
        """
        if frame.opcode == _CONTINUATION:
            if not self._encoding:
                return frame  # a continuation of a message sent uncompressed
            encoder = self._encoder
            assert encoder is not None
            data = encoder.compress(frame.payload) + encoder.flush(zlib.Z_SYNC_FLUSH)
            if frame.fin:
                data = _strip_tail(data)
                self._encoding = False
                if self.local_no_context_takeover:
                    self._encoder = None
            # §6.1: "An endpoint MUST NOT set the 'Per-Message Compressed' bit of control
            # frames and non-first fragments of a data message."
            return frame._replace(payload=data, rsv1=False)

        if compress is False or (
            compress is None and frame.fin and len(frame.payload) < self.compress_threshold
        ):
            return frame

        if frame.fin and self.local_no_context_takeover:
            # A whole message from a fresh compressor that nobody keeps: nothing to free, and
            # no state touched (prepare_message() may run while a fragmented message is sent).
            encoder = self._new_encoder()
        else:
            if self._encoding:
                raise InvalidState(
                    "cannot start a message while a compressed fragmented message is being sent"
                )
            encoder = self._encoder or self._new_encoder()
            self._encoder = encoder
        data = encoder.compress(frame.payload) + encoder.flush(zlib.Z_SYNC_FLUSH)
        if frame.fin:
            data = _strip_tail(data)
        else:
            self._encoding = True
        # §6: the "Per-Message Compressed" bit is set on the first frame of a compressed message.
        return frame._replace(payload=data, rsv1=True)

    def _new_encoder(self) -> zlib._Compress:
        wbits = self.local_max_window_bits
        strategy = zlib.Z_DEFAULT_STRATEGY
        if wbits == 8:
            # zlib refuses a 256-byte window for raw deflate. Z_RLE limits match distances to
            # one (zlib manual), so the stream is valid for a peer whose window is 256 bytes.
            wbits, strategy = 9, zlib.Z_RLE
        return zlib.compressobj(self.compress_level, zlib.DEFLATED, -wbits, self.mem_level,
                                strategy)

    # --- receiving (§7.2.2) ----------------------------------------------------------------------

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        """Decompress one received data frame (RFC 7692 §7.2.2), output bounded by ``max_size``.

        Raises :class:`~rawws.errors.PayloadTooBig` (1009) as soon as the decompressed payload
        would exceed ``max_size`` bytes, :class:`~rawws.errors.ProtocolError` with 1002 for RSV1
        on a continuation frame and with 1007 for data that is not valid DEFLATE.
        """
        if frame.opcode == _CONTINUATION:
            if frame.rsv1:
                # §6.1: an endpoint receiving a non-first fragment with the bit set "MUST _Fail
                # the WebSocket Connection_".
                raise ProtocolError("RSV1 is set on a continuation frame (RFC 7692 §6.1)")
            if not self._decoding:
                return frame  # a continuation of a message sent uncompressed
        else:
            if not frame.rsv1:
                self._decoding = False
                return frame
            self._decoding = True
            self._in_last4 = _TAIL  # the previous message ended at a block boundary

        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = zlib.decompressobj(-max(self.remote_max_window_bits, 9))

        payload = frame.payload
        fin = frame.fin
        last4 = payload[-4:] if len(payload) >= 4 else (self._in_last4 + payload)[-4:]
        # §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the payload of
        # the message" -- unless it already ends at a block boundary (see the module docstring).
        add_tail = fin and last4 != _TAIL
        try:
            if add_tail and len(payload) <= _CONCAT_LIMIT:
                data = _inflate(decoder, payload + _TAIL, max_size)
            else:
                data = _inflate(decoder, payload, max_size)
                if add_tail:
                    rest = None if max_size is None else max_size - len(data)
                    more = _inflate(decoder, _TAIL, rest)
                    if more:  # only if the peer left a stored block open: never in practice
                        data += more
        except zlib.error as exc:
            raise ProtocolError(f"invalid compressed data: {exc}", _INVALID_DATA) from None

        if decoder.eof:
            # A block with BFINAL set ended the DEFLATE stream (§7.2.3.4). Only the empty block
            # of §7.2.1 step 2 may follow it.
            unused = decoder.unused_data
            if len(unused) > 5 or (fin and unused not in _AFTER_FINAL_BLOCK):
                raise ProtocolError("data after the final DEFLATE block", _INVALID_DATA)

        if fin:
            self._decoding = False
            if self.remote_no_context_takeover:
                # §7.2.2: the peer does not take over its window, so "the server MAY decompress
                # each new message with an empty LZ77 sliding window": free it until then.
                self._decoder = None
            elif decoder.eof:
                # §7.2.2: we "MUST decompress each new message using the LZ77 sliding window
                # used to process the last compressed message", but an inflater cannot go past
                # the end of a stream. Start a new one primed with the end of this message: a
                # later reference to older data fails loudly (1007), never silently.
                wbits = max(self.remote_max_window_bits, 9)
                history = data[-(1 << wbits):]
                self._decoder = (zlib.decompressobj(-wbits, zdict=history) if history
                                 else zlib.decompressobj(-wbits))
        else:
            self._in_last4 = last4
        return frame._replace(payload=data, rsv1=False)


def _inflate(decoder: zlib._Decompress, data: bytes, max_size: int | None) -> bytes:
    """Inflate ``data``, producing at most ``max_size`` bytes (``None``: no limit).

    ``max_length = max_size + 1`` lets zlib stop one byte past the budget: getting that byte
    proves the budget is exceeded, so no more than ``max_size + 1`` bytes are ever allocated.
    """
    if max_size is None:
        return decoder.decompress(data)
    limit = max(max_size, 0)
    out = decoder.decompress(data, limit + 1)
    if len(out) > limit:
        raise PayloadTooBig(
            f"decompressed message exceeds max_size ({limit} bytes left for this message)"
        )
    return out


def _strip_tail(data: bytes) -> bytes:
    """§7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end"."""
    # A sync flush after compress() always ends with the empty stored block 00 00 ff ff.
    assert data.endswith(_TAIL), data
    data = data[:-4]
    # §7.2.3.6: if nothing is left, send the empty stored block's first octet.
    return data or _EMPTY_STORED_BLOCK_HEAD


# --- negotiation (§7.1) --------------------------------------------------------------------------

_SNCT = "server_no_context_takeover"
_CNCT = "client_no_context_takeover"
_SMWB = "server_max_window_bits"
_CMWB = "client_max_window_bits"


def _check_window_bits(name: str, bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 8 <= bits <= 15:
        raise ValueError(f"{name} must be an integer from 8 to 15, got {bits!r}")


def _check_compress_settings(level: int, mem_level: int, threshold: int) -> None:
    if not -1 <= level <= 9:
        raise ValueError(f"compress_level must be from -1 to 9, got {level!r}")
    if not 1 <= mem_level <= 9:
        raise ValueError(f"mem_level must be from 1 to 9, got {mem_level!r}")
    if threshold < 0:
        raise ValueError(f"compress_threshold must be >= 0, got {threshold!r}")


def _parse_params(
    params: Sequence[tuple[str, str | None]], *, response: bool
) -> dict[str, str | None]:
    """Check one offer (``response=False``) or response against RFC 7692 §7; return a dict.

    §7: an offer (a response) is declined (fails the connection) if it "contains an extension
    parameter not defined for use in an offer (a response)", "an extension parameter with an
    invalid value" or "multiple extension parameters with the same name". Raises
    :class:`NegotiationError` saying which.
    """
    what = "response" if response else "offer"
    seen: dict[str, str | None] = {}
    for name, value in params:
        if name in seen:
            raise NegotiationError(f"duplicate parameter {name} in permessage-deflate {what}")
        if name in (_SNCT, _CNCT):
            if value is not None:
                raise NegotiationError(f"{name} takes no value, got {value!r}")
        elif name == _SMWB or (name == _CMWB and (response or value is not None)):
            # server_max_window_bits always has a value; client_max_window_bits has one in a
            # response (§7.1.2.2) and may have none in an offer.
            if value is None or not _WINDOW_BITS_RE.match(value):
                raise NegotiationError(f"invalid {name} value {value!r}: expected 8 to 15")
        elif name != _CMWB:
            raise NegotiationError(f"unknown parameter {name} in permessage-deflate {what}")
        seen[name] = value
    return seen


def _check_rsv1_free(accepted: Sequence[Extension]) -> None:
    for ext in accepted:
        if ext.name == NAME:
            raise NegotiationError("permessage-deflate is already negotiated")
        if ext.rsv_bits & RSV1:
            # §5: "A server MUST NOT accept a PMCE extension negotiation offer together with
            # another extension if the PMCE will conflict with the extension on their use of
            # the RSV1 bit." (and a client fails such a response.)
            raise NegotiationError(f"extension {ext.name} already uses RSV1")


class _FactorySettings:
    """What both factories are configured with (the parameters to ask for, and the compressor
    settings); shared storage and representation."""

    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_max_window_bits: int | None
    client_max_window_bits: int | bool | None
    compress_level: int
    mem_level: int
    compress_threshold: int

    def _store(self, server_no_context_takeover: bool, client_no_context_takeover: bool,
               server_max_window_bits: int | None, client_max_window_bits: int | bool | None,
               compress_level: int, mem_level: int, compress_threshold: int) -> None:
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_level = compress_level
        self.mem_level = mem_level
        self.compress_threshold = compress_threshold

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(server_no_context_takeover="
                f"{self.server_no_context_takeover}, client_no_context_takeover="
                f"{self.client_no_context_takeover}, server_max_window_bits="
                f"{self.server_max_window_bits}, client_max_window_bits="
                f"{self.client_max_window_bits})")


class ServerPerMessageDeflateFactory(_FactorySettings):
    """Server side: accepts or declines each ``permessage-deflate`` offer (RFC 7692 §7.1).

    * ``server_no_context_takeover``: always answer ``server_no_context_takeover`` (we compress
      every message from scratch: less memory, and ``broadcast_key`` is not ``None``). Offered
      by the client, it is accepted in any case.
    * ``client_no_context_takeover``: always answer ``client_no_context_takeover`` (the client
      compresses from scratch; we free our inflater between messages). Offered by the client,
      it is echoed in any case.
    * ``server_max_window_bits``: the largest window we compress with, answered even when not
      offered (§7.1.2.1 allows it) so the client can size its inflater; an offer asking for less
      gets less. ``None``: 15, answered only when offered.
    * ``client_max_window_bits``: when the client offers ``client_max_window_bits``, answer the
      smaller of this and its value: the client's window, hence our inflater's. ``None``: no
      answer (the client then uses its offered value, or up to 15).
    * ``compress_level``, ``mem_level``: zlib settings of our compressor.
    * ``compress_threshold``: see :meth:`PerMessageDeflate.encode`.
    """

    name = NAME

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = DEFAULT_MAX_WINDOW_BITS,
        client_max_window_bits: int | None = DEFAULT_MAX_WINDOW_BITS,
        compress_level: int = DEFAULT_COMPRESS_LEVEL,
        mem_level: int = DEFAULT_MEM_LEVEL,
        compress_threshold: int = DEFAULT_COMPRESS_THRESHOLD,
    ) -> None:
        if server_max_window_bits is not None:
            _check_window_bits("server_max_window_bits", server_max_window_bits)
        if client_max_window_bits is not None:
            _check_window_bits("client_max_window_bits", client_max_window_bits)
        _check_compress_settings(compress_level, mem_level, compress_threshold)
        self._store(server_no_context_takeover, client_no_context_takeover,
                    server_max_window_bits, client_max_window_bits, compress_level, mem_level,
                    compress_threshold)

    def process_request_params(
        self, params: Sequence[tuple[str, str | None]], accepted: Sequence[Extension]
    ) -> tuple[ExtensionParams, PerMessageDeflate]:
        """Accept one offer, or raise :class:`NegotiationError` to decline it (§7)."""
        _check_rsv1_free(accepted)
        offer = _parse_params(params, response=False)
        response: ExtensionParams = []

        # §7.1.1.1: "A server accepts an extension negotiation offer that includes the
        # 'server_no_context_takeover' extension parameter by including the
        # 'server_no_context_takeover' extension parameter in the corresponding response";
        # it MAY include it unasked.
        server_nct = _SNCT in offer or self.server_no_context_takeover
        if server_nct:
            response.append((_SNCT, None))
        # §7.1.1.2: offered, it is a hint the client keeps anyway; the server "may either
        # ignore the parameter or use the parameter ... by including" it. We include it.
        client_nct = _CNCT in offer or self.client_no_context_takeover
        if client_nct:
            response.append((_CNCT, None))

        # §7.1.2.1: "A server accepts an extension negotiation offer with this parameter by
        # including the 'server_max_window_bits' extension parameter in the extension
        # negotiation response ... with the same or smaller value as the offer."
        server_bits = 15
        offered = offer.get(_SMWB)
        if offered is not None:
            server_bits = int(offered)
            if self.server_max_window_bits is not None:
                server_bits = min(server_bits, self.server_max_window_bits)
            response.append((_SMWB, str(server_bits)))
        elif self.server_max_window_bits is not None:
            server_bits = self.server_max_window_bits
            if server_bits < 15:  # 15 is what absence means: say nothing
                response.append((_SMWB, str(server_bits)))

        # §7.1.2.2: "If a received extension negotiation offer doesn't have the
        # 'client_max_window_bits' extension parameter, the corresponding extension
        # negotiation response to the offer MUST NOT include the 'client_max_window_bits'
        # extension parameter."
        client_bits = 15
        if _CMWB in offer:
            value = offer[_CMWB]
            # With a value, the client "is not going to use an LZ77 sliding window size
            # greater than the size specified by the value" even if we answer nothing.
            client_bits = 15 if value is None else int(value)
            if self.client_max_window_bits is not None:
                client_bits = min(client_bits, self.client_max_window_bits)
                response.append((_CMWB, str(client_bits)))

        extension = PerMessageDeflate(
            local_no_context_takeover=server_nct,
            remote_no_context_takeover=client_nct,
            local_max_window_bits=server_bits,
            remote_max_window_bits=client_bits,
            compress_level=self.compress_level,
            mem_level=self.mem_level,
            compress_threshold=self.compress_threshold,
            params=response,
        )
        return response, extension


class ClientPerMessageDeflateFactory(_FactorySettings):
    """Client side: makes the ``permessage-deflate`` offer and checks the server's answer.

    * ``server_no_context_takeover``: ask the server to compress every message from scratch.
    * ``client_no_context_takeover``: announce (and do) compression of every message from
      scratch on our side.
    * ``server_max_window_bits``: ask the server to use at most this window (our inflater's).
    * ``client_max_window_bits``: ``True`` offers ``client_max_window_bits`` without a value
      (the server may then choose our window), an integer also caps our window at that value,
      ``None`` leaves it out (the server may not limit our window; we compress with 15).
    * ``compress_level``, ``mem_level``: zlib settings of our compressor.
    * ``compress_threshold``: see :meth:`PerMessageDeflate.encode`.
    """

    name = NAME

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | bool | None = True,
        compress_level: int = DEFAULT_COMPRESS_LEVEL,
        mem_level: int = DEFAULT_MEM_LEVEL,
        compress_threshold: int = DEFAULT_COMPRESS_THRESHOLD,
    ) -> None:
        if server_max_window_bits is not None:
            _check_window_bits("server_max_window_bits", server_max_window_bits)
        if client_max_window_bits is False:
            client_max_window_bits = None
        if client_max_window_bits is not None and client_max_window_bits is not True:
            _check_window_bits("client_max_window_bits", client_max_window_bits)
        _check_compress_settings(compress_level, mem_level, compress_threshold)
        self._store(server_no_context_takeover, client_no_context_takeover,
                    server_max_window_bits, client_max_window_bits, compress_level, mem_level,
                    compress_threshold)

    def get_request_params(self) -> ExtensionParams:
        """The offer, e.g. ``[("client_max_window_bits", None)]`` with the defaults."""
        params: ExtensionParams = []
        if self.server_no_context_takeover:
            params.append((_SNCT, None))
        if self.client_no_context_takeover:
            params.append((_CNCT, None))
        if self.server_max_window_bits is not None:
            params.append((_SMWB, str(self.server_max_window_bits)))
        if self.client_max_window_bits is True:
            params.append((_CMWB, None))
        elif self.client_max_window_bits is not None:
            params.append((_CMWB, str(self.client_max_window_bits)))
        return params

    def process_response_params(
        self, params: Sequence[tuple[str, str | None]], accepted: Sequence[Extension]
    ) -> PerMessageDeflate:
        """Check the server's answer to our offer; raise :class:`NegotiationError` if the
        connection must fail (§7: "the client does not support the configuration that the
        response represents")."""
        _check_rsv1_free(accepted)
        response = _parse_params(params, response=True)

        # §7.1.1.1: the server accepts our server_no_context_takeover by including it, and MAY
        # include it unasked.
        if self.server_no_context_takeover and _SNCT not in response:
            raise NegotiationError(
                "server_no_context_takeover was offered but the response does not include it"
            )
        server_nct = _SNCT in response
        # §7.1.1.2: a server MAY include client_no_context_takeover; our own offer of it is a
        # promise we keep either way.
        client_nct = _CNCT in response or self.client_no_context_takeover

        # §7.1.2.1: the server answers our server_max_window_bits "with the same or smaller
        # value"; it MAY include the parameter when we did not offer it.
        value = response.get(_SMWB)
        if self.server_max_window_bits is not None:
            if value is None:
                raise NegotiationError(
                    "server_max_window_bits was offered but the response does not include it"
                )
            if int(value) > self.server_max_window_bits:
                raise NegotiationError(
                    f"server_max_window_bits={value} exceeds the offered "
                    f"{self.server_max_window_bits}"
                )
        server_bits = 15 if value is None else int(value)

        # §7.1.2.2: the response MUST NOT include client_max_window_bits if the offer did not,
        # and answers an offered value "with a value equal to or smaller than" it.
        value = response.get(_CMWB)
        offered_bits = self.client_max_window_bits
        if value is not None:
            if offered_bits is None:
                raise NegotiationError(
                    "client_max_window_bits is in the response but was not offered"
                )
            if offered_bits is not True and int(value) > offered_bits:
                raise NegotiationError(
                    f"client_max_window_bits={value} exceeds the offered {offered_bits}"
                )
            client_bits = int(value)
        elif offered_bits is None or offered_bits is True:
            client_bits = 15
        else:
            client_bits = offered_bits

        return PerMessageDeflate(
            local_no_context_takeover=client_nct,
            remote_no_context_takeover=server_nct,
            local_max_window_bits=client_bits,
            remote_max_window_bits=server_bits,
            compress_level=self.compress_level,
            mem_level=self.mem_level,
            compress_threshold=self.compress_threshold,
            params=list(params),
        )
