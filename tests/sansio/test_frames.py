"""Frames: RFC 6455 §5.7 examples byte-exact both ways, lengths, masking, close payloads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawws.errors import InvalidUTF8, ProtocolError
from rawws.sansio.codes import Opcode
from rawws.sansio.frames import RSV1, Frame, serialize_close_payload, serialize_frame
from rawws.sansio.protocol import Ping, Pong
from rawws.sansio.reader import parse_close_payload

from .helpers import RFC_KEY, feed, open_client, open_server, splits

# RFC 6455 §5.7, "Examples".
HELLO_UNMASKED = bytes.fromhex("810548656c6c6f")
HELLO_MASKED = bytes.fromhex("818537fa213d7f9f4d5158")
HEL_LO_FRAGMENTS = bytes.fromhex("010348656c") + bytes.fromhex("80026c6f")
PING_UNMASKED = bytes.fromhex("890548656c6c6f")
PONG_MASKED = bytes.fromhex("8a8537fa213d7f9f4d5158")
BINARY_256 = bytes.fromhex("827e0100") + bytes(range(256))
BINARY_64K = bytes.fromhex("827f0000000000010000") + bytes(65536)


class TestRFCExamplesSerialize:
    def test_unmasked_text(self) -> None:
        assert serialize_frame(Opcode.TEXT, b"Hello") == HELLO_UNMASKED

    def test_masked_text(self) -> None:
        assert serialize_frame(Opcode.TEXT, b"Hello", masking_key=RFC_KEY) == HELLO_MASKED

    def test_fragmented_text(self) -> None:
        first = serialize_frame(Opcode.TEXT, b"Hel", fin=False)
        last = serialize_frame(Opcode.CONTINUATION, b"lo")
        assert first + last == HEL_LO_FRAGMENTS

    def test_ping_and_masked_pong(self) -> None:
        assert serialize_frame(Opcode.PING, b"Hello") == PING_UNMASKED
        assert serialize_frame(Opcode.PONG, b"Hello", masking_key=RFC_KEY) == PONG_MASKED

    def test_16_and_64_bit_lengths(self) -> None:
        assert serialize_frame(Opcode.BINARY, bytes(range(256))) == BINARY_256
        assert serialize_frame(Opcode.BINARY, bytes(65536)) == BINARY_64K

    def test_length_boundaries(self) -> None:
        assert serialize_frame(Opcode.BINARY, bytes(125))[:2] == b"\x82\x7d"
        assert serialize_frame(Opcode.BINARY, bytes(126))[:4] == b"\x82\x7e\x00\x7e"
        assert serialize_frame(Opcode.BINARY, bytes(65535))[:4] == b"\x82\x7e\xff\xff"
        assert serialize_frame(Opcode.BINARY, bytes(65536))[:10] == (
            b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"
        )

    def test_rsv_bits(self) -> None:
        assert serialize_frame(Opcode.TEXT, b"", rsv=RSV1) == b"\xc1\x00"


class TestRFCExamplesParse:
    """Each example read by the protocol that receives it, fed whole, byte by byte, and split at
    every offset."""

    @pytest.mark.parametrize("chunks", list(splits(HELLO_UNMASKED)))
    def test_unmasked_text_client_side(self, chunks: list[bytes]) -> None:
        assert feed(open_client(), chunks) == ["Hello"]

    @pytest.mark.parametrize("chunks", list(splits(HELLO_MASKED)))
    def test_masked_text_server_side(self, chunks: list[bytes]) -> None:
        assert feed(open_server(), chunks) == ["Hello"]

    @pytest.mark.parametrize("chunks", list(splits(HEL_LO_FRAGMENTS)))
    def test_fragmented_text(self, chunks: list[bytes]) -> None:
        assert feed(open_client(), chunks) == ["Hello"]

    @pytest.mark.parametrize("chunks", list(splits(PING_UNMASKED)))
    def test_ping_answered_with_pong(self, chunks: list[bytes]) -> None:
        client = open_client()
        assert feed(client, chunks) == [Ping(b"Hello")]
        # §5.5.2-3: the pong carries the ping's payload; the client masks it (§5.7 example).
        assert client.data_to_send() == [PONG_MASKED]

    @pytest.mark.parametrize("chunks", list(splits(PONG_MASKED)))
    def test_masked_pong(self, chunks: list[bytes]) -> None:
        assert feed(open_server(), chunks) == [Pong(b"Hello")]

    def test_binary_256(self) -> None:
        for chunks in [[BINARY_256], [BINARY_256[:3], BINARY_256[3:]],
                       [BINARY_256[i : i + 7] for i in range(0, len(BINARY_256), 7)]]:
            assert feed(open_client(), chunks) == [bytes(range(256))]

    def test_binary_64k(self) -> None:
        for step in (len(BINARY_64K), 9, 1000, 4096):
            chunks = [BINARY_64K[i : i + step] for i in range(0, len(BINARY_64K), step)]
            assert feed(open_client(), chunks) == [bytes(65536)]

    def test_several_frames_in_one_read(self) -> None:
        data = HELLO_UNMASKED + PING_UNMASKED + HEL_LO_FRAGMENTS + BINARY_256
        assert feed(open_client(), [data]) == ["Hello", Ping(b"Hello"), "Hello",
                                               bytes(range(256))]


class TestClosePayload:
    def test_roundtrip(self) -> None:
        assert serialize_close_payload(1000, "bye") == b"\x03\xe8bye"
        assert parse_close_payload(b"\x03\xe8bye") == (1000, "bye")

    def test_empty(self) -> None:
        assert serialize_close_payload(None) == b""
        # §7.1.5: no status code → 1005 is reported.
        assert parse_close_payload(b"") == (1005, "")

    def test_one_byte_is_a_protocol_error(self) -> None:
        with pytest.raises(ProtocolError) as info:
            parse_close_payload(b"\x03")
        assert info.value.close_code == 1002

    @pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
    def test_invalid_codes(self, code: int) -> None:
        with pytest.raises(ProtocolError) as info:
            parse_close_payload(code.to_bytes(2, "big"))
        assert info.value.close_code == 1002
        with pytest.raises(ValueError):
            serialize_close_payload(code)

    @pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                      1012, 1013, 1014, 3000, 3999, 4000, 4999])
    def test_valid_codes(self, code: int) -> None:
        assert parse_close_payload(code.to_bytes(2, "big") + b"ok") == (code, "ok")

    def test_invalid_utf8_reason(self) -> None:
        with pytest.raises(InvalidUTF8) as info:
            parse_close_payload(b"\x03\xe8\xff")
        assert info.value.close_code == 1007

    def test_reason_length_limit(self) -> None:
        assert len(serialize_close_payload(1000, "x" * 123)) == 125
        with pytest.raises(ValueError):
            serialize_close_payload(1000, "x" * 124)


class TestFrameValue:
    def test_str_for_transcript(self) -> None:
        assert str(Frame(Opcode.TEXT, b"Hello")) == "TEXT [F] 'Hello' (5 bytes)"
        assert str(Frame(Opcode.CLOSE, b"\x03\xe8bye")) == "CLOSE [F] 1000 'bye' (5 bytes)"
        assert str(Frame(Opcode.BINARY, b"\x01\x02", fin=False, rsv1=True)) == (
            "BINARY [1] 01 02 (2 bytes)"
        )


@given(
    opcode=st.sampled_from([Opcode.TEXT, Opcode.BINARY]),
    payload=st.binary(max_size=70000),
    masked=st.booleans(),
    cut=st.integers(min_value=0, max_value=100),
)
def test_roundtrip_any_length(opcode: Opcode, payload: bytes, masked: bool, cut: int) -> None:
    """A frame serialized by one side is read back by the other, however the bytes are cut."""
    if opcode == Opcode.TEXT:
        payload = payload.decode("latin-1").encode("utf-8")
    data = serialize_frame(opcode, payload, masking_key=RFC_KEY if masked else None)
    receiver = open_server(max_size=None) if masked else open_client(max_size=None)
    cut = min(cut, len(data))
    events = feed(receiver, [data[:cut], data[cut:]])
    assert events == [payload.decode() if opcode == Opcode.TEXT else payload]


@given(payload=st.binary(max_size=125), opcode=st.sampled_from([Opcode.PING, Opcode.PONG]))
def test_roundtrip_control(payload: bytes, opcode: Opcode) -> None:
    data = serialize_frame(opcode, payload, masking_key=RFC_KEY)
    events = feed(open_server(), [data])
    assert events == [Ping(payload) if opcode == Opcode.PING else Pong(payload)]
