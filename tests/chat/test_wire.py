"""rawws.chat.wire: guarded JSON decoding, encoding, names, timestamps."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawws.chat.wire import (
    ErrorCode,
    WireError,
    decode_message,
    encode,
    is_valid_room,
    is_valid_user,
    iso_timestamp,
    json_depth_exceeds,
)


def code_of(text: str, max_depth: int = 32) -> ErrorCode:
    with pytest.raises(WireError) as info:
        decode_message(text, max_depth=max_depth)
    return info.value.code


def test_decode_object() -> None:
    assert decode_message('{"type":"join","room":"lobby"}', max_depth=32) == {
        "type": "join", "room": "lobby"}


@pytest.mark.parametrize("text", ["", "{", "nope", '{"a":}', "[1,", '{"a":NaN}',
                                  '{"a":Infinity}', '{"a":-Infinity}', "1" * 5000,
                                  '{"a":1e400}', '{"a":-1e400}', '{"a":[1,2,1E999]}',
                                  '{"a":{"b":-1.5e309}}'])
def test_bad_json(text: str) -> None:
    assert code_of(text) is ErrorCode.BAD_JSON


@pytest.mark.parametrize("text", ['{"a":1e308}', '{"a":-1.7976931348623157e308}',
                                  '{"a":1e-400}', '{"a":123456789012345678901234567890}'])
def test_numbers_in_range_are_kept_and_encode_back(text: str) -> None:
    value = decode_message(text, max_depth=32)
    assert json.loads(encode(value)) == json.loads(text)


@pytest.mark.parametrize("text", ["[]", "1", '"x"', "null", "true"])
def test_not_an_object(text: str) -> None:
    assert code_of(text) is ErrorCode.BAD_REQUEST


def test_lone_surrogate_refused() -> None:
    assert code_of('{"content":"\\ud800"}') is ErrorCode.BAD_JSON
    # A proper surrogate pair is fine and round-trips as UTF-8.
    msg = decode_message('{"content":"\\ud83d\\ude00"}', max_depth=32)
    assert msg["content"] == "\U0001f600"
    assert encode(msg).encode("utf-8") == '{"content":"😀"}'.encode()


def test_depth_limit() -> None:
    ok = "[" * 31 + "]" * 31
    assert decode_message('{"a":' + ok + "}", max_depth=32) == {"a": json.loads(ok)}
    assert code_of('{"a":' + "[" * 32 + "]" * 32 + "}") is ErrorCode.TOO_LARGE


def test_deep_nesting_never_reaches_the_parser() -> None:
    # 100k levels would exhaust the recursive parser; the guard refuses it first.
    assert code_of("[" * 100_000) is ErrorCode.TOO_LARGE


def test_brackets_in_strings_do_not_count() -> None:
    text = '{"content":"' + "[[[[{{{{" * 20 + '\\"[[["}'
    assert not json_depth_exceeds(text, 2)
    assert decode_message(text, max_depth=2)["content"].startswith("[[[[")


def test_many_shallow_brackets_are_fine() -> None:
    text = '{"a":[' + ",".join(["[]"] * 100) + "]}"
    assert not json_depth_exceeds(text, 3)
    assert json_depth_exceeds(text, 2)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c,
                                                                        max_size=3),
                    max_leaves=20))
def test_depth_guard_agrees_with_the_real_depth(value: object) -> None:
    def depth(v: object) -> int:
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        return 0

    text = json.dumps(value)
    d = depth(value)
    assert not json_depth_exceeds(text, d)
    if d:
        assert json_depth_exceeds(text, d - 1)


def test_encode_is_compact_and_utf8() -> None:
    assert encode({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    with pytest.raises(ValueError):
        encode({"a": float("nan")})


@pytest.mark.parametrize("name", ["alice", "a", "Bob_2", "x-y.z~@q", "a" * 64])
def test_valid_users(name: str) -> None:
    assert is_valid_user(name)


@pytest.mark.parametrize("name", ["", "a" * 65, "al ice", "a/b", "a\nb", "é", None, 3, ["a"]])
def test_invalid_users(name: object) -> None:
    assert not is_valid_user(name)


@pytest.mark.parametrize("name", ["lobby", "team.red", "a-b_c~d", "a.b.c.d.e.f.g.h"])
def test_valid_rooms(name: str) -> None:
    assert is_valid_room(name)


@pytest.mark.parametrize("name", ["", ".", "a.", ".a", "a..b", "a b", "a/b", "a.b.c.d.e.f.g.h.i",
                                  "x" * 65, "é", None, 1])
def test_invalid_rooms(name: object) -> None:
    assert not is_valid_room(name)


def test_iso_timestamp() -> None:
    assert iso_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert iso_timestamp(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"


def test_utf8_length_counts_bytes() -> None:
    from rawws.chat.wire import utf8_length

    assert utf8_length("") == 0
    assert utf8_length("abc") == 3
    assert utf8_length("é") == 2
    assert utf8_length("中") == 3
    assert utf8_length("\U0001F600" * 5) == 20
    assert utf8_length("a\U0001F600") == 5
