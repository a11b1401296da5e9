"""The frame reader's public parts: the policy-free header decoder and the rules as functions
that return a violation (close code, RFC section, message)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawws.errors import InvalidUTF8, PayloadTooBig, ProtocolError
from rawws.sansio.frames import RSV1, RSV2, RSV3, serialize_frame
from rawws.sansio.reader import (
    Header,
    Violation,
    check_close_payload,
    check_continuation,
    check_control,
    check_header,
    check_length,
    check_mask,
    check_minimal_length,
    check_opcode,
    check_rsv,
    check_size,
    check_utf8,
    decode_header,
    opcode_name,
    parse_close_payload,
)

from .helpers import RFC_KEY


def header(**fields: object) -> Header:
    base: dict[str, object] = dict(fin=True, rsv1=False, rsv2=False, rsv3=False, opcode=1,
                                   masked=True, mask_key=RFC_KEY, length=0, header_length=6,
                                   minimal_length=True)
    base.update(fields)
    return Header(**base)  # type: ignore[arg-type]


class TestDecodeHeader:
    def test_rfc_masked_hello(self) -> None:
        # RFC 6455 §5.7: a single-frame masked text message "Hello".
        assert decode_header(bytes.fromhex("818537fa213d7f9f4d5158")) == Header(
            fin=True, rsv1=False, rsv2=False, rsv3=False, opcode=1, masked=True,
            mask_key=RFC_KEY, length=5, header_length=6, minimal_length=True)

    def test_rfc_unmasked_fragment(self) -> None:
        # RFC 6455 §5.7: the first fragment of "Hel" "lo".
        assert decode_header(bytes.fromhex("010348656c")) == Header(
            fin=False, rsv1=False, rsv2=False, rsv3=False, opcode=1, masked=False,
            mask_key=None, length=3, header_length=2, minimal_length=True)

    def test_16_and_64_bit_lengths(self) -> None:
        h16 = decode_header(bytes.fromhex("827e0100"))
        assert h16 is not None and (h16.length, h16.header_length) == (256, 4)
        h64 = decode_header(bytes.fromhex("827f0000000000010000"))
        assert h64 is not None and (h64.length, h64.header_length) == (65536, 10)
        assert h16.minimal_length and h64.minimal_length

    def test_non_minimal_lengths_decode_and_are_reported(self) -> None:
        padded16 = decode_header(b"\x82\x7e\x00\x05")
        padded64 = decode_header(b"\x82\x7f" + (300).to_bytes(8, "big"))
        assert padded16 is not None and padded16.length == 5 and not padded16.minimal_length
        assert padded64 is not None and padded64.length == 300 and not padded64.minimal_length
        assert check_minimal_length(padded16) == Violation(
            1002, "5.2", "payload length 5 not encoded in the minimal number of bytes")
        assert check_minimal_length(decode_header(b"\x82\x05")) is None  # type: ignore[arg-type]

    @pytest.mark.parametrize("opcode", range(16))
    def test_every_opcode_and_bit_decodes(self, opcode: int) -> None:
        decoded = decode_header(bytes([0x70 | opcode, 0xFF]) + (2**63 + 1).to_bytes(8, "big")
                                + b"abcd")
        assert decoded == Header(fin=False, rsv1=True, rsv2=True, rsv3=True, opcode=opcode,
                                 masked=True, mask_key=b"abcd", length=2**63 + 1,
                                 header_length=14, minimal_length=True)
        assert decoded.rsv == RSV1 | RSV2 | RSV3
        assert decoded.is_control is (opcode >= 8)
        assert decoded.frame_length == 14 + 2**63 + 1

    @pytest.mark.parametrize("data", [b"\x81\x85\x37\xfa\x21\x3d", b"\x82\x7e\x01\x00",
                                      b"\x82\xff" + bytes(8) + b"\x01\x02\x03\x04"])
    def test_incomplete_headers_give_none(self, data: bytes) -> None:
        for cut in range(len(data)):
            assert decode_header(data[:cut]) is None
        assert decode_header(data) is not None

    def test_offset_and_buffer_types(self) -> None:
        data = b"junk" + bytes.fromhex("818537fa213d7f9f4d5158")
        expected = decode_header(data[4:])
        assert decode_header(data, 4) == expected
        assert decode_header(bytearray(data), 4) == expected
        assert decode_header(memoryview(data), 4) == expected
        assert type(decode_header(memoryview(data), 4).mask_key) is bytes  # type: ignore[union-attr]

    @given(opcode=st.integers(0, 15), fin=st.booleans(), rsv=st.sampled_from([0, RSV1, RSV2, RSV3]),
           length=st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, 70000]),
           key=st.none() | st.binary(min_size=4, max_size=4))
    def test_decodes_what_serialize_frame_writes(self, opcode: int, fin: bool, rsv: int,
                                                  length: int, key: bytes | None) -> None:
        data = serialize_frame(opcode, bytes(length), fin=fin, rsv=rsv, masking_key=key)
        decoded = decode_header(data)
        assert decoded is not None
        assert (decoded.opcode, decoded.fin, decoded.rsv, decoded.length, decoded.mask_key,
                decoded.masked) == (opcode, fin, rsv, length, key, key is not None)
        assert decoded.frame_length == len(data)
        assert decoded.minimal_length


class TestRules:
    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
    def test_reserved_opcodes(self, opcode: int) -> None:
        assert check_opcode(header(opcode=opcode)) == Violation(
            1002, "5.2", f"reserved opcode {opcode:#x}")

    @pytest.mark.parametrize("opcode", [0, 1, 2, 8, 9, 10])
    def test_known_opcodes(self, opcode: int) -> None:
        assert check_opcode(header(opcode=opcode)) is None

    def test_rsv_without_and_with_an_extension(self) -> None:
        assert check_rsv(header(rsv2=True)) == Violation(1002, "5.2", "reserved bits set: 010")
        assert check_rsv(header(rsv1=True), allowed=RSV1) is None
        assert check_rsv(header(rsv1=True, rsv3=True), allowed=RSV1) == Violation(
            1002, "5.2", "reserved bits set: 101")
        # Extensions never own the RSV bits of control frames (RFC 7692 §6.1).
        assert check_rsv(header(opcode=9, rsv1=True), allowed=RSV1) == Violation(
            1002, "5.2", "reserved bits set: 100")

    def test_mask_direction(self) -> None:
        assert check_mask(header(masked=False, mask_key=None), expect_mask=True) == Violation(
            1002, "5.1", "client frame is not masked")
        assert check_mask(header(), expect_mask=False) == Violation(
            1002, "5.1", "server frame is masked")
        assert check_mask(header(), expect_mask=True) is None

    def test_64_bit_length_msb(self) -> None:
        assert check_length(header(length=2**63)) == Violation(
            1002, "5.2", "64-bit payload length has its most significant bit set")
        assert check_length(header(length=2**63 - 1)) is None

    def test_control_frames(self) -> None:
        assert check_control(header(opcode=9, length=126)) == Violation(
            1002, "5.5", "control frame payload is 126 bytes (max 125)")
        assert check_control(header(opcode=8, fin=False)) == Violation(
            1002, "5.5", "fragmented control frame")
        assert check_control(header(opcode=10, length=125)) is None
        assert check_control(header(opcode=1, length=126, fin=False)) is None

    def test_continuation_order(self) -> None:
        assert check_continuation(header(opcode=0), in_message=False) == Violation(
            1002, "5.4", "continuation frame without a message to continue")
        assert check_continuation(header(opcode=2), in_message=True) == Violation(
            1002, "5.4", "new data frame before the fragmented message ended")
        assert check_continuation(header(opcode=0), in_message=True) is None
        assert check_continuation(header(opcode=9), in_message=True) is None

    def test_check_header_reports_the_first_rule_broken(self) -> None:
        bad = header(opcode=3, rsv2=True, masked=False, mask_key=None)
        assert check_header(bad, expect_mask=True) == check_opcode(bad)
        bad = header(rsv2=True, masked=False, mask_key=None)
        assert check_header(bad, expect_mask=True) == check_rsv(bad)
        assert check_header(header(opcode=0), expect_mask=True, in_message=True) is None
        assert check_header(header(opcode=0), expect_mask=True) is not None

    def test_size(self) -> None:
        assert check_size(1001, max_size=1000) == Violation(
            1009, "10.4", "message over 1000 bytes (frame of 1001 bytes)")
        assert check_size(400, max_size=1000, received=600) is None
        assert check_size(401, max_size=1000, received=600) == Violation(
            1009, "10.4", "message over 1000 bytes (frame of 401 bytes)")
        assert check_size(101, max_size=None, max_frame_size=100) == Violation(
            1009, "10.4", "frame of 101 bytes over 100")
        assert check_size(2**62, max_size=None) is None

    def test_utf8(self) -> None:
        assert check_utf8("κόσμε".encode()) is None
        assert check_utf8(b"\xce\xba\xff") == Violation(
            1007, "8.1", "text message is not valid UTF-8: invalid start byte")
        assert check_utf8(bytearray(b"\xed\xa0\x80")) is not None  # a surrogate

    def test_close_payloads(self) -> None:
        assert check_close_payload(b"") is None
        assert check_close_payload(b"\x03\xe8bye") is None
        assert check_close_payload(b"\x03") == Violation(
            1002, "5.5.1", "close frame payload is 1 byte long; a close code takes 2")
        assert check_close_payload(b"\x03\xed") == Violation(1002, "7.4",
                                                             "invalid close code 1005")
        assert check_close_payload(b"\x03\xe8\xff") == Violation(
            1007, "8.1", "close reason is not valid UTF-8")
        assert parse_close_payload(memoryview(b"\x0f\xa0ok")) == (4000, "ok")

    def test_violation_to_exception(self) -> None:
        for violation, cls in [(Violation(1002, "5.2", "x"), ProtocolError),
                               (Violation(1007, "8.1", "y"), InvalidUTF8),
                               (Violation(1009, "10.4", "z"), PayloadTooBig)]:
            error = violation.error()
            assert type(error) is cls
            assert (error.close_code, error.section, str(error)) == (
                violation.close_code, violation.section, violation.message)
        assert str(Violation(1002, "5.2", "reserved opcode 0x3")) == (
            "reserved opcode 0x3 (RFC 6455 §5.2)")
        assert str(Violation(1002, "RFC 7692 6.1", "x")) == "x (RFC 7692 6.1)"

    def test_opcode_names(self) -> None:
        assert [opcode_name(n) for n in (0, 1, 2, 3, 8, 9, 10, 15)] == [
            "CONTINUATION", "TEXT", "BINARY", "0x3", "CLOSE", "PING", "PONG", "0xf"]


class TestReadingIntoThePayload:
    """receive_buffer() / receive_into(): a large payload read straight into its buffer."""

    def frame(self, n: int) -> bytes:
        return serialize_frame(2, bytes(range(256)) * (n // 256), masking_key=RFC_KEY)

    def test_a_large_payload_read_into_its_buffer(self) -> None:
        from .helpers import open_server

        data = self.frame(1 << 20)
        server = open_server(max_size=None)
        assert server.receive_buffer() is None  # nothing is arriving
        server.receive_data(data[: 14 + 200000])
        assert server.receive_buffer() is None  # under a quarter of the payload: not yet
        server.receive_data(data[14 + 200000 : 14 + 300000])
        pos = 14 + 300000
        views = []
        while pos < len(data):
            view = server.receive_buffer()
            assert view is not None and len(view) == len(data) - pos  # the rest, at once
            views.append(view)  # still alive, as in the event loop: the buffer never resizes
            n = min(len(view), 100000)
            view[:n] = data[pos : pos + n]
            server.receive_into(n)
            pos += n
        assert server.events_received() == [bytes(range(256)) * 4096]
        assert server.receive_buffer() is None

    def test_small_payloads_and_text_are_never_lent(self) -> None:
        from .helpers import open_server

        server = open_server()
        server.receive_data(self.frame(8192)[:14 + 4000])
        assert server.receive_buffer() is None  # under the lending threshold
        text = serialize_frame(1, b"a" * 100000, masking_key=RFC_KEY)
        server = open_server()
        server.receive_data(text[:50000])
        assert server.receive_buffer() is None  # streamed for fail-fast UTF-8

    def test_the_two_ways_in_mix(self) -> None:
        from .helpers import open_server

        data = self.frame(200000) + serialize_frame(1, b"next", masking_key=RFC_KEY)
        server = open_server()
        server.receive_data(data[:60000])
        view = server.receive_buffer()
        assert view is not None
        n = len(view)
        assert n == 256 * 781 - (60000 - 14)  # the rest of the payload
        view[:50000] = data[60000:110000]
        del view
        server.receive_into(50000)
        server.receive_data(data[110000:])  # the rest as plain data, the next frame too
        assert server.events_received() == [bytes(range(256)) * 781, "next"]
