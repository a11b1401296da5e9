"""UTF-8 that fails at the first invalid byte (RFC 6455 §8.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawws.errors import InvalidUTF8
from rawws.sansio.utf8 import Utf8Decoder, decode_text, invalid


def test_whole_text() -> None:
    assert decode_text("κόσμε".encode()) == "κόσμε"
    assert decode_text(bytearray(b"ok")) == "ok"
    with pytest.raises(InvalidUTF8) as info:
        decode_text(b"\xce\xba\xff")
    assert (info.value.close_code, info.value.section, str(info.value)) == (
        1007, "8.1", "text message is not valid UTF-8: invalid start byte")


def test_pieces_keep_incomplete_characters() -> None:
    decoder = Utf8Decoder()
    euro = "€".encode()
    assert decoder.decode(euro[:1]) == ""
    assert decoder.decode(memoryview(euro[1:2])) == ""
    assert decoder.decode(euro[2:], final=True) == "€"


def test_fails_at_the_first_impossible_byte() -> None:
    decoder = Utf8Decoder()
    assert decoder.decode(b"ok ") == "ok "
    with pytest.raises(UnicodeDecodeError):
        decoder.decode(b"\xf4\x90")  # beyond U+10FFFF from its second byte


def test_a_surrogate_fails_at_its_second_byte() -> None:
    """CPython's decoder waits for the third byte of ED A0..BF; rawws does not."""
    with pytest.raises(UnicodeDecodeError) as info:
        Utf8Decoder().decode(b"ab\xed\xa0")
    assert "surrogate" in info.value.reason
    assert Utf8Decoder().decode(b"\xed\x9f") == ""  # ED 80..9F may still become valid


def test_an_incomplete_character_at_the_end_is_an_error() -> None:
    decoder = Utf8Decoder()
    decoder.decode(b"\xe2\x82")
    with pytest.raises(UnicodeDecodeError):
        decoder.decode(b"", final=True)


def test_invalid_maps_any_decoding_error_to_1007() -> None:
    try:
        b"\xff".decode()
    except UnicodeDecodeError as exc:
        error = invalid(exc)
    assert isinstance(error, InvalidUTF8) and error.close_code == 1007


@given(st.text(), st.lists(st.integers(0, 50), max_size=5))
def test_pieces_give_the_whole(text: str, cuts: list[int]) -> None:
    data = text.encode()
    points = sorted({c % (len(data) + 1) for c in cuts})
    decoder = Utf8Decoder()
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert "".join(decoder.decode(p) for p in pieces) + decoder.decode(b"", True) == text
