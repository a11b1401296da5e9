"""Tests of rawws.sansio.deflate: permessage-deflate (RFC 7692).

Sections: the RFC 7692 §7.2.3 examples both ways; sending (threshold, RSV1, tail, context
takeover); receiving (tail, empty frames, BFINAL, corrupt data, RSV1 rules); the bounded inflate
and a decompression bomb; lazy zlib objects and memory; 8-bit windows; broadcast keys;
negotiation tables for both sides; hypothesis round trips.
"""

from __future__ import annotations

import itertools
import os
import tracemalloc
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawws.errors import InvalidState, NegotiationError, PayloadTooBig, ProtocolError
from rawws.sansio.deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from rawws.sansio.frames import RSV1, Frame, serialize_frame

TEXT, BINARY, CONT = 0x1, 0x2, 0x0
TAIL = b"\x00\x00\xff\xff"


# --- helpers (local to this file) ----------------------------------------------------------------


def wire_frames(data: bytes) -> list[Frame]:
    """Split unmasked frames with 7-bit lengths (enough for the RFC examples) into Frames."""
    frames = []
    i = 0
    while i < len(data):
        b0, b1 = data[i], data[i + 1]
        assert not b1 & 0x80 and (b1 & 0x7F) < 126
        n = b1 & 0x7F
        frames.append(Frame(b0 & 0x0F, data[i + 2 : i + 2 + n], bool(b0 & 0x80), bool(b0 & 0x40),
                            bool(b0 & 0x20), bool(b0 & 0x10)))
        i += 2 + n
    return frames


def wire(frames: Sequence[Frame]) -> bytes:
    return b"".join(
        serialize_frame(f.opcode, f.payload, fin=f.fin, rsv=RSV1 if f.rsv1 else 0) for f in frames
    )


def send(ext: PerMessageDeflate, message: bytes, *, opcode: int = BINARY,
         sizes: Sequence[int] = (), compress: bool | None = None) -> list[Frame]:
    """Encode one message; ``sizes`` are the lengths of the fragments before the last one."""
    pieces, pos = [], 0
    for n in sizes:
        pieces.append(message[pos : pos + n])
        pos += n
    pieces.append(message[pos:])
    frames = []
    for i, piece in enumerate(pieces):
        frame = Frame(opcode if i == 0 else CONT, piece, i == len(pieces) - 1)
        frames.append(ext.encode(frame, compress=compress))
    return frames


def receive(ext: PerMessageDeflate, frames: Sequence[Frame], max_size: int | None = None) -> bytes:
    """Decode one message frame by frame, passing what is left of ``max_size`` like protocol.py."""
    out = b""
    for frame in frames:
        budget = None if max_size is None else max_size - len(out)
        decoded = ext.decode(frame, max_size=budget)
        assert not decoded.rsv1
        assert decoded.opcode == frame.opcode and decoded.fin == frame.fin
        out += decoded.payload
    return out


def refragment(frames: Sequence[Frame], cuts: Sequence[int]) -> list[Frame]:
    """Re-split the compressed bytes of one message at ``cuts`` (RSV1 on the first frame only)."""
    data = b"".join(f.payload for f in frames)
    bounds = [0, *sorted(cuts), len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    return [Frame(frames[0].opcode if i == 0 else CONT, p, i == len(pieces) - 1,
                  frames[0].rsv1 and i == 0) for i, p in enumerate(pieces)]


def negotiate(client: Mapping[str, object] | None = None,
              server: Mapping[str, object] | None = None
              ) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    """Run both factories like handshake.py does; return (server extension, client extension)."""
    client_factory = ClientPerMessageDeflateFactory(**(client or {}))  # type: ignore[arg-type]
    server_factory = ServerPerMessageDeflateFactory(**(server or {}))  # type: ignore[arg-type]
    response, server_ext = server_factory.process_request_params(
        client_factory.get_request_params(), [])
    client_ext = client_factory.process_response_params(response, [])
    return server_ext, client_ext


def strict_inflate(streams: Sequence[bytes], wbits: int) -> list[bytes]:
    """Decode consecutive compressed messages (tails removed) with plain zlib and a window of
    ``wbits``, shared across messages (context takeover on the sender).

    zlib checks distances against its window only for data output by earlier calls: within one
    call, a match may copy from that call's own output. So this inflates one byte per call,
    which makes every back-reference go through the window, and a too-far one fail.
    """
    d = zlib.decompressobj(-wbits)
    result = []
    for stream in streams:
        data, out = stream + TAIL, bytearray()
        while True:
            chunk = d.decompress(data, 1)
            data = d.unconsumed_tail
            if not chunk and not data:
                break
            out += chunk
        result.append(bytes(out))
    return result


# RFC 1951 §3.2.5 length and distance codes: (base, extra bits).
_LENGTHS = [(3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (8, 0), (9, 0), (10, 0), (11, 1), (13, 1),
            (15, 1), (17, 1), (19, 2), (23, 2), (27, 2), (31, 2), (35, 3), (43, 3), (51, 3),
            (59, 3), (67, 4), (83, 4), (99, 4), (115, 4), (131, 5), (163, 5), (195, 5), (227, 5),
            (258, 0)]
_DISTANCES = [(1 + sum(1 << max(0, (j >> 1) - 1) for j in range(i)), max(0, (i >> 1) - 1))
              for i in range(30)]


def max_distance(stream: bytes) -> int:
    """The largest back-reference distance in a raw DEFLATE stream that ends at a block
    boundary (a sync flush). A minimal RFC 1951 decoder that decodes codes, not data."""
    bits = int.from_bytes(stream, "little")
    total, pos = len(stream) * 8, 0

    def read(n: int) -> int:
        nonlocal pos
        value = (bits >> pos) & ((1 << n) - 1)
        pos += n
        return value

    def table(lengths: Sequence[int]) -> dict[tuple[int, int], int]:
        codes, code = {}, 0
        for n in range(1, 16):  # canonical Huffman codes, RFC 1951 §3.2.2
            for symbol, length in enumerate(lengths):
                if length == n:
                    codes[(n, code)] = symbol
                    code += 1
            code <<= 1
        return codes

    def symbol(codes: dict[tuple[int, int], int]) -> int:
        code = 0
        for n in range(1, 16):
            code = (code << 1) | read(1)  # Huffman codes are packed from their MSB
            if (n, code) in codes:
                return codes[(n, code)]
        raise ValueError("bad code")

    fixed = (table([8] * 144 + [9] * 112 + [7] * 24 + [8] * 8), table([5] * 30))
    farthest = 0
    while total - pos >= 10:
        final, kind = read(1), read(2)
        if kind == 0:
            pos = (pos + 7) // 8 * 8
            n = read(16)
            read(16)
            pos += 8 * n
        else:
            if kind == 1:
                lit, dist = fixed
            else:
                hlit, hdist, hclen = read(5) + 257, read(5) + 1, read(4) + 4
                order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
                cl = [0] * 19
                for i in range(hclen):
                    cl[order[i]] = read(3)
                clcodes, lengths = table(cl), list[int]()
                while len(lengths) < hlit + hdist:
                    sym = symbol(clcodes)
                    if sym < 16:
                        lengths.append(sym)
                    elif sym == 16:
                        lengths += [lengths[-1]] * (3 + read(2))
                    else:
                        lengths += [0] * ((3 + read(3)) if sym == 17 else (11 + read(7)))
                lit, dist = table(lengths[:hlit]), table(lengths[hlit:])
            while (sym := symbol(lit)) != 256:
                if sym > 256:
                    read(_LENGTHS[sym - 257][1])
                    base, extra = _DISTANCES[symbol(dist)]
                    farthest = max(farthest, base + read(extra))
        if final:
            break
    return farthest


# --- RFC 7692 §7.2.3 examples ---------------------------------------------------------------------

HELLO = b"Hello"
HELLO_1 = bytes.fromhex("c1 07 f2 48 cd c9 c9 07 00")  # §7.2.3.1, one compressed block
HELLO_FRAGMENTED = bytes.fromhex("41 03 f2 48 cd 80 04 c9 c9 07 00")  # §7.2.3.1, two frames
HELLO_2_SHARED = bytes.fromhex("c1 05 f2 00 11 00 00")  # §7.2.3.2, second message, back-ref
HELLO_STORED = bytes.fromhex("c1 0b 00 05 00 fa ff 48 65 6c 6c 6f 00")  # §7.2.3.3
HELLO_BFINAL = bytes.fromhex("c1 08 f3 48 cd c9 c9 07 00 00")  # §7.2.3.4
HELLO_TWO_BLOCKS = bytes.fromhex("c1 0d f2 48 05 00 00 00 ff ff ca c9 c9 07 00")  # §7.2.3.5
EMPTY_FRAGMENT = bytes.fromhex("c1 01 00")  # §7.2.3.6


def ext_for_examples(**kwargs: object) -> PerMessageDeflate:
    # "Hello" is shorter than the default threshold: the examples compress it.
    return PerMessageDeflate(compress_threshold=0, **kwargs)  # type: ignore[arg-type]


class TestRFCExamples:
    @pytest.mark.parametrize("example", [HELLO_1, HELLO_STORED, HELLO_BFINAL, HELLO_TWO_BLOCKS])
    def test_decode_single_frame_examples(self, example: bytes) -> None:
        assert receive(PerMessageDeflate(), wire_frames(example)) == HELLO

    def test_decode_empty_fragment(self) -> None:
        assert receive(PerMessageDeflate(), wire_frames(EMPTY_FRAGMENT)) == b""

    def test_encode_one_block(self) -> None:  # §7.2.3.1
        assert wire(send(ext_for_examples(), HELLO, opcode=TEXT)) == HELLO_1

    def test_decode_fragmented(self) -> None:  # §7.2.3.1, "Hel" / "lo"
        frames = wire_frames(HELLO_FRAGMENTED)
        assert [f.rsv1 for f in frames] == [True, False]
        assert receive(PerMessageDeflate(), frames) == HELLO

    def test_decode_split_at_every_offset(self) -> None:
        payload = wire_frames(HELLO_1)[0].payload
        for cut in range(len(payload) + 1):
            frames = refragment(wire_frames(HELLO_1), [cut])
            assert receive(PerMessageDeflate(), frames) == HELLO, cut
        # Byte by byte: one frame per compressed byte.
        frames = refragment(wire_frames(HELLO_1), range(1, len(payload)))
        assert len(frames) == len(payload)
        assert receive(PerMessageDeflate(), frames) == HELLO

    def test_decode_fragmented_example_split_at_every_offset_pair(self) -> None:
        payload = b"".join(f.payload for f in wire_frames(HELLO_FRAGMENTED))
        for a, b in itertools.combinations_with_replacement(range(len(payload) + 1), 2):
            frames = refragment(wire_frames(HELLO_FRAGMENTED), [a, b])
            assert receive(PerMessageDeflate(), frames) == HELLO, (a, b)

    def test_encode_fragmented(self) -> None:
        # Our fragments are sync-flushed (each frame decodable on arrival), so they differ
        # from the example's arbitrary split of one stream; these are their exact bytes.
        frames = send(ext_for_examples(), HELLO, opcode=TEXT, sizes=[3])
        assert wire(frames) == bytes.fromhex("41 09 f2 48 cd 01 00 00 00 ff ff 80 04 ca c9 07 00")
        assert receive(PerMessageDeflate(), frames) == HELLO

    def test_sharing_window_both_ways(self) -> None:  # §7.2.3.2
        ext = ext_for_examples()
        assert wire(send(ext, HELLO, opcode=TEXT)) == HELLO_1
        assert wire(send(ext, HELLO, opcode=TEXT)) == HELLO_2_SHARED
        receiver = PerMessageDeflate()
        assert receive(receiver, wire_frames(HELLO_1)) == HELLO
        assert receive(receiver, wire_frames(HELLO_2_SHARED)) == HELLO

    def test_no_context_takeover_both_ways(self) -> None:  # §7.2.3.2, first paragraph
        ext = ext_for_examples(local_no_context_takeover=True)
        assert wire(send(ext, HELLO, opcode=TEXT)) == HELLO_1
        assert wire(send(ext, HELLO, opcode=TEXT)) == HELLO_1
        receiver = PerMessageDeflate(remote_no_context_takeover=True)
        assert receive(receiver, wire_frames(HELLO_1)) == HELLO
        assert receive(receiver, wire_frames(HELLO_1)) == HELLO
        # The receiver dropped its window: a back-reference to the last message cannot resolve.
        with pytest.raises(ProtocolError) as exc:
            receive(receiver, wire_frames(HELLO_2_SHARED))
        assert exc.value.close_code == 1007

    def test_encode_stored_block(self) -> None:  # §7.2.3.3: level 0 gives the example
        assert wire(send(ext_for_examples(compress_level=0), HELLO, opcode=TEXT)) == HELLO_STORED

    def test_bfinal_then_context_takeover(self) -> None:  # §7.2.3.4
        receiver = PerMessageDeflate()
        assert receive(receiver, wire_frames(HELLO_BFINAL)) == HELLO
        # The next message refers back to "Hello" across the end of the DEFLATE stream.
        assert receive(receiver, wire_frames(HELLO_2_SHARED)) == HELLO
        assert receive(receiver, wire_frames(HELLO_1)) == HELLO

    def test_encode_two_blocks(self) -> None:  # §7.2.3.5: "He" flushed, then "llo"
        frames = send(ext_for_examples(), HELLO, opcode=TEXT, sizes=[2])
        assert b"".join(f.payload for f in frames) == wire_frames(HELLO_TWO_BLOCKS)[0].payload
        assert wire(frames) == bytes.fromhex("41 08 f2 48 05 00 00 00 ff ff 80 05 ca c9 c9 07 00")

    def test_encode_empty_message(self) -> None:  # §7.2.3.6
        assert wire(send(ext_for_examples(), b"", opcode=TEXT)) == EMPTY_FRAGMENT


# --- sending ------------------------------------------------------------------------------------


class TestEncode:
    def test_threshold(self) -> None:
        ext = PerMessageDeflate(compress_threshold=10)
        small = Frame(TEXT, b"123456789")
        assert ext.encode(small) is small
        big = ext.encode(Frame(TEXT, b"1234567890"))
        assert big.rsv1 and strict_inflate([big.payload], 15) == [b"1234567890"]

    def test_default_threshold_is_128(self) -> None:
        ext = PerMessageDeflate()
        assert not ext.encode(Frame(BINARY, bytes(127))).rsv1
        assert ext.encode(Frame(BINARY, bytes(128))).rsv1

    def test_compress_true_and_false_override_threshold(self) -> None:
        ext = PerMessageDeflate(compress_threshold=100)
        assert ext.encode(Frame(TEXT, b"x"), compress=True).rsv1
        big = Frame(TEXT, b"x" * 1000)
        assert ext.encode(big, compress=False) is big

    def test_fragmented_message_compressed_whatever_its_first_frame(self) -> None:
        frames = send(PerMessageDeflate(), b"ab" * 10, sizes=[1, 5])
        assert [f.rsv1 for f in frames] == [True, False, False]
        assert [f.opcode for f in frames] == [BINARY, CONT, CONT]
        assert receive(PerMessageDeflate(), frames) == b"ab" * 10

    def test_plain_fragmented_message_untouched(self) -> None:
        ext = PerMessageDeflate()
        frames = [Frame(TEXT, b"a" * 500, False), Frame(CONT, b"b" * 500, False),
                  Frame(CONT, b"c", True)]
        out = [ext.encode(frames[0], compress=False), *(ext.encode(f) for f in frames[1:])]
        assert out == frames

    def test_empty_final_fragment(self) -> None:
        ext = PerMessageDeflate(compress_threshold=0)
        frames = send(ext, HELLO, sizes=[5])
        assert frames[1].payload == b"\x00"  # §7.2.3.6
        assert receive(PerMessageDeflate(), frames) == HELLO

    def test_empty_middle_fragments(self) -> None:
        ext = PerMessageDeflate(compress_threshold=0)
        frames = send(ext, b"abc", sizes=[0, 0, 3, 0])
        assert receive(PerMessageDeflate(), frames) == b"abc"

    def test_context_takeover_shrinks_repeats(self) -> None:
        ext = PerMessageDeflate()
        message = os.urandom(1000)
        first = send(ext, message)[0].payload
        second = send(ext, message)[0].payload
        assert len(first) > 1000 and len(second) < 20

    def test_starting_a_message_mid_fragmented_message_is_misuse(self) -> None:
        ext = PerMessageDeflate()
        ext.encode(Frame(TEXT, b"a" * 200, False))
        with pytest.raises(InvalidState):
            ext.encode(Frame(TEXT, b"b" * 200))

    def test_whole_message_mid_fragmented_message_without_context_takeover(self) -> None:
        # prepare_message() for a broadcast may encode on a connection that is streaming.
        ext = PerMessageDeflate(local_no_context_takeover=True)
        receiver = PerMessageDeflate()
        first = ext.encode(Frame(TEXT, b"a" * 200, False))
        other = ext.encode(Frame(BINARY, b"z" * 300))
        last = ext.encode(Frame(CONT, b"b" * 200))
        assert receive(PerMessageDeflate(), [other]) == b"z" * 300
        assert receive(receiver, [first, last]) == b"a" * 200 + b"b" * 200


# --- receiving ----------------------------------------------------------------------------------


class TestDecode:
    def test_uncompressed_messages_pass_through(self) -> None:
        ext = PerMessageDeflate()
        frames = [Frame(TEXT, b"ab", False), Frame(CONT, b"cd", False), Frame(CONT, b"", True)]
        assert [ext.decode(f, max_size=1) for f in frames] == frames  # no budget check either
        single = Frame(BINARY, b"\xff\xff")
        assert ext.decode(single, max_size=None) is single

    def test_rsv1_on_continuation_is_1002(self) -> None:
        for first_rsv1 in (True, False):
            ext = PerMessageDeflate()
            first = Frame(TEXT, bytes.fromhex("f2 48 cd") if first_rsv1 else b"Hel", False,
                          first_rsv1)
            ext.decode(first, max_size=None)
            with pytest.raises(ProtocolError) as exc:
                ext.decode(Frame(CONT, bytes.fromhex("c9 c9 07 00"), True, True), max_size=None)
            assert exc.value.close_code == 1002
            assert type(exc.value) is ProtocolError

    @pytest.mark.parametrize("payload", [
        b"\xff\xff\xff",  # BTYPE 11: reserved block type
        bytes.fromhex("00 05 00 00 00 48 65 6c 6c 6f"),  # stored block, NLEN != ~LEN
        bytes.fromhex("f2 00 11 00 00"),  # back-reference before the start of the stream
    ])
    def test_corrupt_data_is_1007(self, payload: bytes) -> None:
        with pytest.raises(ProtocolError) as exc:
            receive(PerMessageDeflate(), [Frame(BINARY, payload, True, True)])
        assert exc.value.close_code == 1007

    def test_data_after_final_block_is_1007(self) -> None:
        bfinal = wire_frames(HELLO_BFINAL)[0].payload
        with pytest.raises(ProtocolError) as exc:
            receive(PerMessageDeflate(), [Frame(TEXT, bfinal + b"garbage", True, True)])
        assert exc.value.close_code == 1007
        # Fragmented: the stray bytes fail as soon as they exceed an empty stored block.
        ext = PerMessageDeflate()
        ext.decode(Frame(TEXT, bfinal, False, True), max_size=None)
        with pytest.raises(ProtocolError):
            ext.decode(Frame(CONT, b"123456", False), max_size=None)

    def test_empty_compressed_message_keeps_the_stream_in_step(self) -> None:
        ext = PerMessageDeflate()
        assert receive(ext, wire_frames(HELLO_1)) == HELLO
        assert receive(ext, [Frame(TEXT, b"", True, True)]) == b""
        assert receive(ext, wire_frames(HELLO_2_SHARED)) == HELLO

    def test_empty_final_frame_after_a_flushed_frame(self) -> None:
        # A peer that sync-flushed its last data frame and then sent an empty final frame:
        # the message already ends with 00 00 ff ff, so no tail is appended.
        flushed = wire_frames(HELLO_1)[0].payload + TAIL
        for cut in range(len(flushed) + 1):
            ext = PerMessageDeflate()
            frames = refragment([Frame(TEXT, flushed, True, True)], [cut])
            frames.append(Frame(CONT, b"", True))
            frames[-2] = frames[-2]._replace(fin=False)
            assert receive(ext, frames) == HELLO, cut
            assert receive(ext, wire_frames(HELLO_2_SHARED)) == HELLO, cut

    def test_unstripped_tail(self) -> None:
        ext = PerMessageDeflate()
        assert receive(ext, [Frame(TEXT, wire_frames(HELLO_1)[0].payload + TAIL, True, True)]) \
            == HELLO
        assert receive(ext, wire_frames(HELLO_2_SHARED)) == HELLO

    def test_large_final_frame_feeds_tail_separately(self) -> None:
        sender, receiver = PerMessageDeflate(), PerMessageDeflate()
        for _ in range(2):
            message = os.urandom(20000)
            frames = send(sender, message)
            assert len(frames[0].payload) > 4096
            assert receive(receiver, frames, max_size=len(message)) == message


# --- bounded inflate ----------------------------------------------------------------------------


def bomb(mebibytes: int) -> bytes:
    """A compressed message of zeros: ~1 KiB per MiB. After the first MiB, each further MiB
    compresses to the same bytes (distance-1 matches into a window of zeros)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    mib = bytes(1 << 20)
    first = c.compress(mib) + c.flush(zlib.Z_SYNC_FLUSH)
    more = c.compress(mib) + c.flush(zlib.Z_SYNC_FLUSH)
    assert more == c.compress(mib) + c.flush(zlib.Z_SYNC_FLUSH)
    return (first + more * (mebibytes - 1))[:-4]


class TestBoundedInflate:
    @pytest.mark.parametrize("size", [0, 1, 127, 5000, 70000])
    def test_exact_budget(self, size: int) -> None:
        message = (os.urandom(size // 2 + 1) * 2)[:size]
        frames = send(PerMessageDeflate(compress_threshold=0), message)
        assert receive(PerMessageDeflate(), frames, max_size=size) == message
        if size:
            with pytest.raises(PayloadTooBig) as exc:
                receive(PerMessageDeflate(), frames, max_size=size - 1)
            assert exc.value.close_code == 1009

    def test_budget_across_fragments(self) -> None:
        message = b"0123456789" * 100
        frames = send(PerMessageDeflate(), message, sizes=[300, 300, 300])
        assert receive(PerMessageDeflate(), frames, max_size=1000) == message
        ext = PerMessageDeflate()
        with pytest.raises(PayloadTooBig):
            receive(ext, frames, max_size=999)

    def test_negative_budget_is_zero(self) -> None:
        frames = send(PerMessageDeflate(compress_threshold=0), b"")
        assert receive(PerMessageDeflate(), [frames[0]], max_size=None) == b""
        assert PerMessageDeflate().decode(frames[0], max_size=-5).payload == b""

    def test_bomb_construction(self) -> None:
        # bomb(n) inflates to n MiB: checked for small n; the repeated part is identical bytes
        # decoded in an identical state (window of zeros, byte-aligned), so it holds for 1024.
        for n in (1, 2, 4):
            assert strict_inflate([bomb(n)], 15) == [bytes(n << 20)]

    def test_bomb_fails_with_1009_in_bounded_memory(self) -> None:
        payload = bomb(1024)  # 1 GiB of zeros
        assert len(payload) < 1_100_000  # about 1 MiB on the wire
        max_size = 1 << 20
        ext = PerMessageDeflate()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            with pytest.raises(PayloadTooBig) as exc:
                ext.decode(Frame(BINARY, payload, True, True), max_size=max_size)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert exc.value.close_code == 1009
        # The output (max_size + 1) and the unconsumed input: ~3 MiB measured.
        assert peak < 4 * max_size

    def test_bomb_fragmented(self) -> None:
        payload = bomb(64)
        frames = refragment([Frame(BINARY, payload, True, True)], range(4096, len(payload), 4096))
        with pytest.raises(PayloadTooBig):
            receive(PerMessageDeflate(), frames, max_size=1 << 20)


# --- lazy zlib objects and memory ---------------------------------------------------------------


def traced_size(make: object) -> int:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        keep = make()  # type: ignore[operator]
        size = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    del keep
    return size


class TestLazyAndMemory:
    def test_idle_extension_is_tiny(self) -> None:
        size = traced_size(lambda: [negotiate()[0] for _ in range(100)]) / 100
        assert size < 2048  # measured ~400 bytes including the params tuple

    def test_zlib_objects_created_on_first_use(self) -> None:
        ext = PerMessageDeflate()
        assert ext._encoder is None and ext._decoder is None
        ext.encode(Frame(BINARY, b"x"))  # below the threshold: still nothing
        assert ext._encoder is None
        ext.encode(Frame(BINARY, bytes(200)))
        assert ext._encoder is not None and ext._decoder is None
        ext.decode(wire_frames(HELLO_1)[0], max_size=None)
        assert ext._decoder is not None

    def test_no_context_takeover_frees_after_each_message(self) -> None:
        ext = PerMessageDeflate(local_no_context_takeover=True, remote_no_context_takeover=True)
        ext.encode(Frame(BINARY, bytes(200), False))
        assert ext._encoder is not None  # kept while the fragmented message lasts
        ext.encode(Frame(CONT, bytes(200)))
        assert ext._encoder is None
        ext.encode(Frame(BINARY, bytes(200)))
        assert ext._encoder is None
        ext.decode(Frame(TEXT, bytes.fromhex("f2 48 cd"), False, True), max_size=None)
        assert ext._decoder is not None
        ext.decode(Frame(CONT, bytes.fromhex("c9 c9 07 00")), max_size=None)
        assert ext._decoder is None

    def test_memory_after_use(self) -> None:
        def used(**kwargs: object) -> int:
            def make() -> PerMessageDeflate:
                ext = PerMessageDeflate(**kwargs)  # type: ignore[arg-type]
                data = os.urandom(3000) * 10
                ext.encode(Frame(BINARY, data))
                return ext
            return traced_size(make)

        # Documented in docs/deflate.md: ~38 KiB at 12 bits / memLevel 5, ~262 KiB at 15 / 8.
        small, large = used(local_max_window_bits=12), used(local_max_window_bits=15, mem_level=8)
        assert 20_000 < small < 64_000
        assert large > 200_000
        assert used(local_max_window_bits=12, local_no_context_takeover=True) < 2048


# --- 8-bit windows ------------------------------------------------------------------------------


def repetitive(n: int, period: int) -> bytes:
    return (os.urandom(period) * (n // period + 1))[:n]


class TestEightBitWindows:
    def test_strict_8_bit_inflater_has_teeth(self) -> None:
        # A repeat 1000 bytes back cannot be decoded with a 256-byte window.
        data = repetitive(4000, 1000)
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        stream = (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        with pytest.raises(zlib.error):
            strict_inflate([stream], 8)

    def test_server_accepts_server_max_window_bits_8(self) -> None:
        factory = ServerPerMessageDeflateFactory()
        response, ext = factory.process_request_params([("server_max_window_bits", "8")], [])
        assert response == [("server_max_window_bits", "8")]
        assert ext.local_max_window_bits == 8
        messages = [repetitive(3000, p) for p in (7, 100, 255, 256, 300, 1000, 2000)] * 3
        streams = [send(ext, m)[0].payload for m in messages]
        assert strict_inflate(streams, 8) == messages
        # And our client that asked for 8 decodes it.
        client = ClientPerMessageDeflateFactory(server_max_window_bits=8)
        client_ext = client.process_response_params(response, [])
        assert [receive(client_ext, [send(ext, m)[0]]) for m in messages] == messages

    def test_client_compresses_for_8_bit_window(self) -> None:
        server_ext, client_ext = negotiate({"client_max_window_bits": 8}, {})
        assert client_ext.local_max_window_bits == 8 and server_ext.remote_max_window_bits == 8
        messages = [repetitive(5000, p) for p in (3, 256, 257, 600)] * 2
        streams = []
        for m in messages:
            frames = send(client_ext, m, sizes=[1000])
            assert receive(server_ext, frames) == m
            streams.append(b"".join(f.payload for f in frames))
        assert strict_inflate(streams, 8) == messages

    def test_server_sets_client_window_to_8(self) -> None:
        _, client_ext = negotiate({}, {"client_max_window_bits": 8})
        assert client_ext.local_max_window_bits == 8
        message = repetitive(3000, 500)
        stream = send(client_ext, message)[0].payload
        assert strict_inflate([stream], 8) == [message]

    def test_9_bit_inflater_decodes_8_bit_streams(self) -> None:
        # A back-reference at distance exactly 256, the farthest an 8-bit window allows.
        chunk = os.urandom(256)
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        stream = (c.compress(chunk * 2) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        assert len(stream) < 300  # the second copy is a match
        assert strict_inflate([stream], 8) == [chunk * 2]
        server_ext, _ = negotiate({"client_max_window_bits": 8}, {})
        assert receive(server_ext, [Frame(BINARY, stream, True, True)]) == chunk * 2

    def test_zlib_peer_that_asked_for_8_and_got_9(self) -> None:
        # Old zlib silently turned 8 into 9; we inflate with 9 bits and accept its streams.
        data = repetitive(20000, 400)
        c = zlib.compressobj(6, zlib.DEFLATED, -9)
        stream = (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        client_ext = ClientPerMessageDeflateFactory(server_max_window_bits=8) \
            .process_response_params([("server_max_window_bits", "8")], [])
        assert receive(client_ext, [Frame(BINARY, stream, True, True)]) == data

    def test_max_distance_scanner(self) -> None:
        # The scanner sees what zlib does: a 9-bit zlib window stays within 250 bytes (its
        # MAX_DIST, an implementation detail), 15 bits reach the 1000-byte repeat, RLE sees 1.
        data = repetitive(4000, 1000) + repetitive(2000, 200) + b"z" * 100
        found = {}
        for wbits, strategy in ((15, zlib.Z_DEFAULT_STRATEGY), (9, zlib.Z_DEFAULT_STRATEGY),
                                (9, zlib.Z_RLE)):
            c = zlib.compressobj(6, zlib.DEFLATED, -wbits, 8, strategy)
            found[wbits, strategy] = max_distance(c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))
        assert found[15, zlib.Z_DEFAULT_STRATEGY] == 1000
        assert 200 <= found[9, zlib.Z_DEFAULT_STRATEGY] <= 250
        assert found[9, zlib.Z_RLE] == 1
        assert max_distance(wire_frames(HELLO_2_SHARED)[0].payload + TAIL) == 5

    def test_8_bit_compressor_only_uses_distance_1(self) -> None:
        ext = PerMessageDeflate(local_max_window_bits=8, compress_threshold=0)
        for data in (b"a" * 5000, repetitive(5000, 3), repetitive(5000, 100), os.urandom(3000)):
            frames = send(ext, data, sizes=[1000])
            assert max_distance(b"".join(f.payload for f in frames) + TAIL) <= 1

    @settings(max_examples=50, deadline=None)
    @given(st.lists(st.binary(max_size=2000), min_size=1, max_size=8),
           st.sampled_from([zlib.Z_DEFAULT_COMPRESSION, 1, 9]))
    def test_8_bit_streams_hypothesis(self, messages: list[bytes], level: int) -> None:
        messages = [m * 3 for m in messages]  # repeats at every distance up to 4000
        ext = PerMessageDeflate(local_max_window_bits=8, compress_level=level,
                                compress_threshold=0)
        streams = [b"".join(f.payload for f in send(ext, m, sizes=[len(m) // 3])) for m in messages]
        assert strict_inflate(streams, 8) == messages


# --- broadcast key ------------------------------------------------------------------------------


class TestBroadcastKey:
    def test_none_with_context_takeover(self) -> None:
        assert PerMessageDeflate().broadcast_key is None
        assert PerMessageDeflate(remote_no_context_takeover=True).broadcast_key is None

    def test_server_side_key(self) -> None:
        server_ext, client_ext = negotiate({"server_no_context_takeover": True}, {})
        assert server_ext.broadcast_key == ("permessage-deflate", 12, 5, 6, 128)
        assert client_ext.broadcast_key is None

    def test_keys_differ_with_settings(self) -> None:
        base = {"local_no_context_takeover": True}
        keys = {PerMessageDeflate(**base, **extra).broadcast_key  # type: ignore[arg-type]
                for extra in ({}, {"local_max_window_bits": 8}, {"local_max_window_bits": 9},
                              {"mem_level": 8}, {"compress_level": 1},
                              {"compress_threshold": 0})}
        assert len(keys) == 6

    @settings(max_examples=50, deadline=None)
    @given(st.lists(st.binary(max_size=3000), max_size=5), st.lists(st.binary(max_size=3000),
           min_size=1, max_size=5), st.sampled_from([8, 9, 12, 15]))
    def test_equal_keys_give_identical_bytes(self, history: list[bytes], messages: list[bytes],
                                             bits: int) -> None:
        kwargs = {"local_no_context_takeover": True, "local_max_window_bits": bits,
                  "compress_threshold": 64}
        a = PerMessageDeflate(**kwargs)  # type: ignore[arg-type]
        b = PerMessageDeflate(**kwargs, params=[("x", None)])  # type: ignore[arg-type]
        for m in history:  # a has a past, b has none
            send(a, m)
        assert a.broadcast_key == b.broadcast_key
        for m in messages:
            assert send(a, m) == send(b, m)


# --- negotiation: server ------------------------------------------------------------------------

Params = list[tuple[str, str | None]]


def server_accepts(offer: Params, **config: object) -> tuple[Params, PerMessageDeflate]:
    return ServerPerMessageDeflateFactory(**config).process_request_params(  # type: ignore[arg-type]
        offer, [])


SNCT, CNCT = ("server_no_context_takeover", None), ("client_no_context_takeover", None)


def smwb(v: str) -> tuple[str, str | None]:
    return ("server_max_window_bits", v)


def cmwb(v: str | None) -> tuple[str, str | None]:
    return ("client_max_window_bits", v)


# (offer, server config, response, (local_nct, remote_nct, local_bits, remote_bits))
SERVER_TABLE: list[tuple[Params, dict[str, object], Params, tuple[bool, bool, int, int]]] = [
    # Defaults: we answer our 12-bit window unasked; the client's only when it offers.
    ([], {}, [smwb("12")], (False, False, 12, 15)),
    ([cmwb(None)], {}, [smwb("12"), cmwb("12")], (False, False, 12, 12)),  # browsers
    ([cmwb("10")], {}, [smwb("12"), cmwb("10")], (False, False, 12, 10)),
    ([cmwb("15")], {}, [smwb("12"), cmwb("12")], (False, False, 12, 12)),
    ([smwb("10")], {}, [smwb("10")], (False, False, 10, 15)),
    ([smwb("15")], {}, [smwb("12")], (False, False, 12, 15)),
    ([smwb("8")], {}, [smwb("8")], (False, False, 8, 15)),
    ([cmwb("8")], {}, [smwb("12"), cmwb("8")], (False, False, 12, 8)),
    ([SNCT], {}, [SNCT, smwb("12")], (True, False, 12, 15)),
    ([CNCT], {}, [CNCT, smwb("12")], (False, True, 12, 15)),
    ([SNCT, CNCT, smwb("9"), cmwb("11")], {}, [SNCT, CNCT, smwb("9"), cmwb("11")],
     (True, True, 9, 11)),
    # Parameter order in the offer does not matter.
    ([cmwb("11"), smwb("9"), CNCT, SNCT], {}, [SNCT, CNCT, smwb("9"), cmwb("11")],
     (True, True, 9, 11)),
    # Configured no_context_takeover is answered unasked.
    ([], {"server_no_context_takeover": True}, [SNCT, smwb("12")], (True, False, 12, 15)),
    ([], {"client_no_context_takeover": True}, [CNCT, smwb("12")], (False, True, 12, 15)),
    # Configured windows of None: answer only what the offer requires.
    ([], {"server_max_window_bits": None, "client_max_window_bits": None}, [],
     (False, False, 15, 15)),
    ([cmwb(None)], {"server_max_window_bits": None, "client_max_window_bits": None}, [],
     (False, False, 15, 15)),
    ([cmwb("10")], {"server_max_window_bits": None, "client_max_window_bits": None}, [],
     (False, False, 15, 10)),
    ([smwb("10")], {"server_max_window_bits": None}, [smwb("10"), ], (False, False, 10, 15)),
    # A configured 15 is what absence means: not answered unless offered.
    ([], {"server_max_window_bits": 15}, [], (False, False, 15, 15)),
    ([smwb("15")], {"server_max_window_bits": 15}, [smwb("15")], (False, False, 15, 15)),
    ([cmwb(None)], {"client_max_window_bits": 15}, [smwb("12"), cmwb("15")],
     (False, False, 12, 15)),
    ([cmwb(None)], {"client_max_window_bits": 9}, [smwb("12"), cmwb("9")], (False, False, 12, 9)),
]


class TestServerNegotiation:
    @pytest.mark.parametrize(("offer", "config", "response", "agreed"), SERVER_TABLE)
    def test_table(self, offer: Params, config: dict[str, object], response: Params,
                   agreed: tuple[bool, bool, int, int]) -> None:
        got, ext = server_accepts(offer, **config)
        assert got == response
        assert (ext.local_no_context_takeover, ext.remote_no_context_takeover,
                ext.local_max_window_bits, ext.remote_max_window_bits) == agreed
        assert ext.params == tuple(response)

    @pytest.mark.parametrize("offer", [
        [("unknown", None)],
        [("unknown", "1")],
        [("Server_No_Context_Takeover", None)],
        [SNCT, SNCT], [CNCT, CNCT], [smwb("10"), smwb("10")], [cmwb(None), cmwb(None)],
        [cmwb("10"), cmwb(None)], [smwb("10"), smwb("11")],
        [("server_no_context_takeover", "1")], [("client_no_context_takeover", "")],
        [("server_max_window_bits", None)],
        *([smwb(v)] for v in ("7", "16", "08", "0", "", "9.0", "+9", " 9", "1e1", "0x9", "٩")),
        *([cmwb(v)] for v in ("7", "16", "015", "", "x")),
    ])
    def test_declined(self, offer: Params) -> None:
        with pytest.raises(NegotiationError):
            server_accepts(offer)

    def test_declined_when_already_accepted_or_rsv1_taken(self) -> None:
        factory = ServerPerMessageDeflateFactory()
        _, ext = factory.process_request_params([], [])
        with pytest.raises(NegotiationError, match="already negotiated"):
            factory.process_request_params([], [ext])

        class Rsv1User:
            name = "x-other"
            rsv_bits = RSV1

        with pytest.raises(NegotiationError, match="RSV1"):
            factory.process_request_params([], [Rsv1User()])  # type: ignore[list-item]

        class Rsv2User:
            name = "x-other"
            rsv_bits = 0x20

        factory.process_request_params([], [Rsv2User()])  # type: ignore[list-item]

    def test_str_for_ws_extensions(self) -> None:
        _, ext = server_accepts([SNCT, cmwb(None)])
        assert str(ext) == ("permessage-deflate; server_no_context_takeover; "
                            "server_max_window_bits=12; client_max_window_bits=12")
        assert repr(ext).startswith("<PerMessageDeflate permessage-deflate; ")

    @pytest.mark.parametrize("kwargs", [
        {"server_max_window_bits": 7}, {"server_max_window_bits": 16},
        {"client_max_window_bits": 16}, {"client_max_window_bits": True},
        {"mem_level": 0}, {"mem_level": 10}, {"compress_level": 10}, {"compress_threshold": -1},
    ])
    def test_invalid_config(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ValueError):
            ServerPerMessageDeflateFactory(**kwargs)  # type: ignore[arg-type]


# --- negotiation: client ------------------------------------------------------------------------


# (client config, response, (local_nct, remote_nct, local_bits, remote_bits))
CLIENT_ACCEPTS: list[tuple[dict[str, object], Params, tuple[bool, bool, int, int]]] = [
    ({}, [], (False, False, 15, 15)),
    ({}, [smwb("12"), cmwb("12")], (False, False, 12, 12)),
    ({}, [cmwb("8")], (False, False, 8, 15)),
    ({}, [smwb("8")], (False, False, 15, 8)),
    ({}, [SNCT], (False, True, 15, 15)),  # MAY be answered unasked
    ({}, [CNCT], (True, False, 15, 15)),
    ({"client_no_context_takeover": True}, [], (True, False, 15, 15)),  # our promise
    ({"server_no_context_takeover": True}, [SNCT], (False, True, 15, 15)),
    ({"server_max_window_bits": 10}, [smwb("10")], (False, False, 15, 10)),
    ({"server_max_window_bits": 10}, [smwb("9")], (False, False, 15, 9)),
    ({"client_max_window_bits": 10}, [], (False, False, 10, 15)),
    ({"client_max_window_bits": 10}, [cmwb("10")], (False, False, 10, 15)),
    ({"client_max_window_bits": 10}, [cmwb("9")], (False, False, 9, 15)),
    ({"client_max_window_bits": None}, [smwb("11")], (False, False, 15, 11)),
    ({"server_no_context_takeover": True, "client_no_context_takeover": True,
      "server_max_window_bits": 10, "client_max_window_bits": 11},
     [cmwb("9"), smwb("8"), CNCT, SNCT], (True, True, 9, 8)),
]


class TestClientNegotiation:
    @pytest.mark.parametrize(("config", "offer"), [
        ({}, [cmwb(None)]),
        ({"client_max_window_bits": None}, []),
        ({"client_max_window_bits": False}, []),
        ({"client_max_window_bits": 10}, [cmwb("10")]),
        ({"server_max_window_bits": 8}, [smwb("8"), cmwb(None)]),
        ({"server_no_context_takeover": True, "client_no_context_takeover": True,
          "server_max_window_bits": 10, "client_max_window_bits": 11},
         [SNCT, CNCT, smwb("10"), cmwb("11")]),
    ])
    def test_offer(self, config: dict[str, object], offer: Params) -> None:
        factory = ClientPerMessageDeflateFactory(**config)  # type: ignore[arg-type]
        assert factory.get_request_params() == offer

    @pytest.mark.parametrize(("config", "response", "agreed"), CLIENT_ACCEPTS)
    def test_accepted(self, config: dict[str, object], response: Params,
                      agreed: tuple[bool, bool, int, int]) -> None:
        factory = ClientPerMessageDeflateFactory(**config)  # type: ignore[arg-type]
        ext = factory.process_response_params(response, [])
        assert (ext.local_no_context_takeover, ext.remote_no_context_takeover,
                ext.local_max_window_bits, ext.remote_max_window_bits) == agreed
        assert ext.params == tuple(response)

    @pytest.mark.parametrize(("config", "response", "reason"), [
        ({}, [("unknown", None)], "unknown parameter"),
        ({}, [SNCT, SNCT], "duplicate"),
        ({}, [cmwb("10"), cmwb("10")], "duplicate"),
        ({}, [("server_no_context_takeover", "x")], "takes no value"),
        ({}, [cmwb(None)], "invalid client_max_window_bits"),  # needs a value in a response
        ({}, [smwb("16")], "invalid server_max_window_bits"),
        ({}, [cmwb("7")], "invalid client_max_window_bits"),
        ({}, [smwb("010")], "invalid server_max_window_bits"),
        ({"client_max_window_bits": None}, [cmwb("10")], "not offered"),
        ({"client_max_window_bits": 10}, [cmwb("11")], "exceeds"),
        ({"server_max_window_bits": 10}, [], "does not include"),
        ({"server_max_window_bits": 10}, [smwb("11")], "exceeds"),
        ({"server_no_context_takeover": True}, [], "does not include"),
    ])
    def test_rejected(self, config: dict[str, object], response: Params, reason: str) -> None:
        factory = ClientPerMessageDeflateFactory(**config)  # type: ignore[arg-type]
        with pytest.raises(NegotiationError, match=reason):
            factory.process_response_params(response, [])

    def test_rejected_when_twice_or_rsv1_taken(self) -> None:
        factory = ClientPerMessageDeflateFactory()
        ext = factory.process_response_params([], [])
        with pytest.raises(NegotiationError, match="already negotiated"):
            factory.process_response_params([], [ext])

        class Rsv1User:
            name = "x-other"
            rsv_bits = RSV1

        with pytest.raises(NegotiationError, match="RSV1"):
            factory.process_response_params([], [Rsv1User()])  # type: ignore[list-item]

    @pytest.mark.parametrize("kwargs", [
        {"server_max_window_bits": 7}, {"client_max_window_bits": 16},
        {"client_max_window_bits": 7}, {"mem_level": 0}, {"compress_level": -2},
    ])
    def test_invalid_config(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ValueError):
            ClientPerMessageDeflateFactory(**kwargs)  # type: ignore[arg-type]


# --- negotiation: every combination, both sides -------------------------------------------------

CLIENT_CONFIGS: list[dict[str, object]] = [
    {"server_no_context_takeover": snct, "client_no_context_takeover": cnct,
     "server_max_window_bits": smwb_, "client_max_window_bits": cmwb_}
    for snct, cnct, smwb_, cmwb_ in itertools.product(
        (False, True), (False, True), (None, 8, 10, 15), (None, True, 8, 10, 15))
]
SERVER_CONFIGS: list[dict[str, object]] = [
    {"server_no_context_takeover": snct, "client_no_context_takeover": cnct,
     "server_max_window_bits": smwb_, "client_max_window_bits": cmwb_}
    for snct, cnct, smwb_, cmwb_ in itertools.product(
        (False, True), (False, True), (None, 9, 12, 15), (None, 9, 12, 15))
]


def expected_agreement(c: Mapping[str, object], s: Mapping[str, object]
                       ) -> tuple[bool, bool, int, int]:
    """The RFC's rules, written out independently: (server's local_nct, remote_nct,
    local_bits, remote_bits)."""
    server_nct = bool(c["server_no_context_takeover"] or s["server_no_context_takeover"])
    client_nct = bool(c["client_no_context_takeover"] or s["client_no_context_takeover"])
    server_bits = min(b for b in (c["server_max_window_bits"], s["server_max_window_bits"], 15)
                      if isinstance(b, int))
    if c["client_max_window_bits"] is None:
        client_bits = 15
    else:
        offered = c["client_max_window_bits"]
        client_bits = min(b for b in (offered, s["client_max_window_bits"], 15)
                          if isinstance(b, int) and b is not True)
    return server_nct, client_nct, server_bits, client_bits


class TestEveryCombination:
    def test_both_sides_agree(self) -> None:
        count = 0
        for c, s in itertools.product(CLIENT_CONFIGS, SERVER_CONFIGS):
            server_ext, client_ext = negotiate(c, s)
            server_view = (server_ext.local_no_context_takeover,
                           server_ext.remote_no_context_takeover,
                           server_ext.local_max_window_bits, server_ext.remote_max_window_bits)
            client_view = (client_ext.remote_no_context_takeover,
                           client_ext.local_no_context_takeover,
                           client_ext.remote_max_window_bits, client_ext.local_max_window_bits)
            assert server_view == client_view == expected_agreement(c, s), (c, s)
            response = list(server_ext.params)
            names = [n for n, _ in response]
            assert len(names) == len(set(names))
            if c["client_max_window_bits"] is None:
                assert "client_max_window_bits" not in names  # §7.1.2.2 MUST NOT
            if c["server_no_context_takeover"]:
                assert "server_no_context_takeover" in names  # §7.1.1.1
            count += 1
        assert count == 80 * 64

    @settings(max_examples=40, deadline=None)
    @given(st.sampled_from(CLIENT_CONFIGS), st.sampled_from(SERVER_CONFIGS))
    def test_messages_flow_both_ways(self, c: dict[str, object], s: dict[str, object]) -> None:
        server_ext, client_ext = negotiate(c, s)
        for _ in range(3):
            for sender, receiver in ((server_ext, client_ext), (client_ext, server_ext)):
                message = repetitive(3000, 700)
                assert receive(receiver, send(sender, message, sizes=[100])) == message


# --- hypothesis: round trips --------------------------------------------------------------------

messages_st = st.one_of(
    st.binary(max_size=3000),
    st.text(max_size=500).map(str.encode),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=50), st.integers(1, 100)),
)


@st.composite
def message_plans(draw: st.DrawFn) -> tuple[bytes, list[int], bool | None, bool]:
    message = draw(messages_st)
    sizes = draw(st.lists(st.integers(0, max(len(message), 1)), max_size=4))
    # Keep the fragment boundaries inside the message.
    total, kept = 0, []
    for n in sizes:
        n = min(n, len(message) - total)
        kept.append(n)
        total += n
    return message, kept, draw(st.sampled_from([None, True, False])), draw(st.booleans())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    client=st.fixed_dictionaries({
        "server_no_context_takeover": st.booleans(),
        "client_no_context_takeover": st.booleans(),
        "server_max_window_bits": st.sampled_from([None, 8, 9, 11, 15]),
        "client_max_window_bits": st.sampled_from([None, True, 8, 10, 15]),
        "mem_level": st.integers(1, 9),
        "compress_level": st.sampled_from([-1, 0, 1, 9]),
        "compress_threshold": st.sampled_from([0, 16, 128]),
    }),
    server=st.fixed_dictionaries({
        "server_no_context_takeover": st.booleans(),
        "client_no_context_takeover": st.booleans(),
        "server_max_window_bits": st.sampled_from([None, 9, 12, 15]),
        "client_max_window_bits": st.sampled_from([None, 8, 12, 15]),
        "mem_level": st.integers(1, 9),
        "compress_level": st.sampled_from([-1, 0, 1, 9]),
        "compress_threshold": st.sampled_from([0, 16, 128]),
    }),
    plans=st.lists(message_plans(), min_size=1, max_size=12),
)
def test_round_trip(client: dict[str, object], server: dict[str, object],
                    plans: list[tuple[bytes, list[int], bool | None, bool]]) -> None:
    """Whatever was negotiated and however messages are fragmented, what one side encodes the
    other decodes to the same bytes, message after message (context takeover exercised)."""
    server_ext, client_ext = negotiate(client, server)
    for message, sizes, compress, from_server in plans:
        sender, receiver = (server_ext, client_ext) if from_server else (client_ext, server_ext)
        frames = send(sender, message, sizes=sizes, compress=compress)
        assert [f.rsv1 for f in frames[1:]] == [False] * (len(frames) - 1)
        if compress is False:
            assert not frames[0].rsv1
        if compress is True:
            assert frames[0].rsv1
        assert receive(receiver, frames, max_size=len(message)) == message


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(messages_st, st.lists(st.integers(0, 5000), max_size=6)),
                min_size=1, max_size=8), st.booleans())
def test_any_split_of_the_compressed_stream(plan: list[tuple[bytes, list[int]]],
                                            takeover: bool) -> None:
    """A peer may cut its compressed bytes into frames anywhere (§7.2.3.1's "Hel" / "lo")."""
    sender = PerMessageDeflate(compress_threshold=0, local_no_context_takeover=not takeover)
    receiver = PerMessageDeflate(remote_no_context_takeover=not takeover)
    for message, cuts in plan:
        frames = send(sender, message)
        size = len(frames[0].payload)
        frames = refragment(frames, [c % (size + 1) for c in cuts])
        assert receive(receiver, frames) == message


# --- interop with the websockets library's sans-I/O extension -----------------------------------

try:
    from websockets.extensions import permessage_deflate as ws_pmd
    from websockets.frames import Frame as WsFrame
    from websockets.frames import Opcode as WsOpcode

    HAVE_WEBSOCKETS = True
except ImportError:  # pragma: no cover - websockets is a dev dependency
    HAVE_WEBSOCKETS = False


@pytest.mark.skipif(not HAVE_WEBSOCKETS, reason="websockets is not installed")
@settings(max_examples=60, deadline=None)
@given(
    client=st.fixed_dictionaries({
        "server_no_context_takeover": st.booleans(),
        "client_no_context_takeover": st.booleans(),
        "server_max_window_bits": st.sampled_from([None, 9, 11, 15]),
        "client_max_window_bits": st.sampled_from([None, True, 9, 10, 15]),
    }),
    server=st.fixed_dictionaries({
        "server_no_context_takeover": st.booleans(),
        "client_no_context_takeover": st.booleans(),
        "server_max_window_bits": st.sampled_from([None, 9, 12, 15]),
        "client_max_window_bits": st.sampled_from([None, 9, 12, 15]),
    }),
    plans=st.lists(message_plans(), min_size=1, max_size=8),
    we_serve=st.booleans(),
)
def test_interop_with_websockets(client: dict[str, Any], server: dict[str, Any],
                                 plans: list[tuple[bytes, list[int], bool | None, bool]],
                                 we_serve: bool) -> None:
    """Negotiate and exchange messages with websockets' implementation, either side ours."""
    if we_serve:
        ws_client = ws_pmd.ClientPerMessageDeflateFactory(**client)
        response, ours = ServerPerMessageDeflateFactory(**server).process_request_params(
            ws_client.get_request_params(), [])
        theirs = ws_client.process_response_params(response, [])
    else:
        our_client = ClientPerMessageDeflateFactory(**client)
        ws_server = ws_pmd.ServerPerMessageDeflateFactory(**server)
        response, theirs = ws_server.process_request_params(our_client.get_request_params(), [])
        ours = our_client.process_response_params(response, [])
    for message, sizes, compress, to_them in plans:
        cuts = list(itertools.accumulate(sizes))
        if to_them:
            frames = send(ours, message, sizes=sizes, compress=compress)
            got = b"".join(
                bytes(theirs.decode(WsFrame(WsOpcode(f.opcode), f.payload, f.fin, f.rsv1)).data)
                for f in frames)
        else:
            plain = refragment([Frame(BINARY, message)], cuts)
            encoded = [theirs.encode(WsFrame(WsOpcode(f.opcode), f.payload, f.fin))
                       for f in plain]
            frames = [Frame(int(f.opcode), bytes(f.data), f.fin, f.rsv1) for f in encoded]
            got = receive(ours, frames, max_size=len(message))
        assert got == message
