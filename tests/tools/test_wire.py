"""rawws.tools.wire.build_frame: the exact bytes of frames valid and invalid, and that the core's
reader decodes every one of them as it was built."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawws.sansio.frames import serialize_frame
from rawws.tools.wire import build_frame, decode_header, rsv_number

KEY = bytes.fromhex("37fa213d")


@pytest.mark.parametrize(("kwargs", "expected"), [
    # RFC 6455 §5.7: a single-frame unmasked text message, and the masked one.
    ({"opcode": 1, "payload": b"Hello"}, "810548656c6c6f"),
    ({"opcode": 1, "payload": b"Hello", "mask": KEY}, "818537fa213d7f9f4d5158"),
    # Reserved opcode, all RSV bits, no FIN.
    ({"opcode": 3, "payload": b"", "fin": False, "rsv": 7}, "7300"),
    # A 16-bit length for 5 bytes, a 64-bit one for 5 bytes (non-minimal, §5.2).
    ({"opcode": 1, "payload": b"Hello", "length_field": 16}, "817e000548656c6c6f"),
    ({"opcode": 1, "payload": b"Hello", "length_field": 64},
     "817f000000000000000548656c6c6f"),
    # A frame that promises 1000 bytes and carries 2; a 64-bit length with its top bit set.
    ({"opcode": 2, "payload": b"ab", "length": 1000}, "827e03e86162"),
    ({"opcode": 2, "payload": b"", "length": 2**63, "length_field": 64},
     "827f8000000000000000"),
    # 127 squeezed into the 7-bit field (it means "a 64-bit length follows").
    ({"opcode": 2, "payload": b"", "length": 127, "length_field": 7}, "827f"),
    # A ping of 126 bytes: valid encoding, invalid frame (§5.5).
    ({"opcode": 9, "payload": b"\x00" * 126}, "897e007e" + "00" * 126),
])
def test_exact_bytes(kwargs: dict[str, object], expected: str) -> None:
    assert build_frame(**kwargs).hex() == expected  # type: ignore[arg-type]


def test_valid_frames_are_the_core_serializers() -> None:
    for opcode, payload in ((1, b"x" * 200), (2, b"y" * 70000), (8, b"\x03\xe8")):
        assert build_frame(opcode, payload) == serialize_frame(opcode, payload)
        assert build_frame(opcode, payload, mask=KEY) == serialize_frame(
            opcode, payload, masking_key=KEY)


def test_a_random_mask_comes_from_the_given_source() -> None:
    frame = build_frame(1, b"hi", mask=True, random=lambda n: b"\x01\x02\x03\x04")
    assert frame == build_frame(1, b"hi", mask=b"\x01\x02\x03\x04")


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"opcode": 16}, "opcode"), ({"opcode": 1, "rsv": 8}, "rsv"),
    ({"opcode": 1, "mask": b"abc"}, "4 bytes"),
])
def test_values_that_do_not_fit_a_header_are_refused(kwargs: dict[str, object],
                                                     problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        build_frame(**kwargs)  # type: ignore[arg-type]


@given(opcode=st.integers(0, 15), fin=st.booleans(), rsv=st.integers(0, 7),
       payload=st.binary(max_size=300), masked=st.booleans(),
       field=st.sampled_from([None, 16, 64]))
def test_the_core_reader_decodes_what_was_built(opcode: int, fin: bool, rsv: int,
                                                payload: bytes, masked: bool,
                                                field: int | None) -> None:
    frame = build_frame(opcode, payload, fin=fin, rsv=rsv, mask=KEY if masked else None,
                        length_field=field)  # type: ignore[arg-type]
    header = decode_header(frame)
    assert header is not None
    assert (header.opcode, header.fin, rsv_number(header), header.masked) == (
        opcode, fin, rsv, masked)
    assert header.length == len(payload)
    assert header.header_length + header.length == len(frame)
    assert header.mask_key == (KEY if masked else None)
    assert header.minimal_length == (field is None or (field == 16 and len(payload) >= 126))
