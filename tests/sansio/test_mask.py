"""Masking (RFC 6455 §5.3): the pure-Python reference against the definition, and the optional
C accelerator against the reference, for every length and offset."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawws.sansio import mask
from rawws.sansio.mask import apply_mask, apply_mask_python

from .helpers import RFC_KEY

try:
    from rawws.sansio import _speedups
except ImportError:  # not built here: the accelerator is optional
    _speedups = None  # type: ignore[assignment]

needs_accelerator = pytest.mark.skipif(_speedups is None, reason="_speedups is not built")


def definition(data: bytes, key: bytes) -> bytes:
    # §5.3: j = i MOD 4; transformed-octet-i = original-octet-i XOR masking-key-octet-j
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def test_rfc_example() -> None:
    assert apply_mask_python(b"Hello", RFC_KEY) == bytes.fromhex("7f9f4d5158")
    assert apply_mask(b"Hello", RFC_KEY) == bytes.fromhex("7f9f4d5158")


@given(st.binary(max_size=10000), st.binary(min_size=4, max_size=4))
def test_the_reference_matches_the_definition(data: bytes, key: bytes) -> None:
    assert apply_mask_python(data, key) == definition(data, key)


def test_the_reference_takes_every_buffer_type() -> None:
    for n in (5, 5000):
        data = bytes(range(256)) * (n // 256 + 1)
        expected = definition(data, RFC_KEY)
        for buffer in (data, bytearray(data), memoryview(data)):
            result = apply_mask_python(buffer, RFC_KEY)
            assert type(result) is bytes and result == expected


@needs_accelerator
@pytest.mark.parametrize("offset", range(8))
def test_the_accelerator_for_every_length_and_offset(offset: int) -> None:
    """Every length from 0 to 300 (and around the 8-byte steps of the C loop), every offset of
    the data in its buffer (the C code reads unaligned words)."""
    key = b"\x01\x80\xff\x55"
    source = bytearray(os.urandom(400))
    for n in range(301):
        view = memoryview(source)[offset : offset + n]
        assert _speedups.apply_mask(view, key) == apply_mask_python(view, key), n


@needs_accelerator
@settings(max_examples=300)
@given(data=st.binary(max_size=70000), key=st.binary(min_size=4, max_size=4),
       offset=st.integers(0, 7))
def test_the_accelerator_is_the_reference(data: bytes, key: bytes, offset: int) -> None:
    view = memoryview(b"x" * offset + data)[offset:]
    result = _speedups.apply_mask(view, key)
    assert type(result) is bytes
    assert result == apply_mask_python(data, key)


@needs_accelerator
def test_the_accelerator_refuses_a_bad_key() -> None:
    with pytest.raises(ValueError):
        _speedups.apply_mask(b"data", b"abc")
    with pytest.raises(TypeError):
        _speedups.apply_mask(b"data")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _speedups.apply_mask("text", b"abcd")  # type: ignore[arg-type]


def _accelerated_in_a_fresh_process(pure: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "RAWWS_PURE_PYTHON"}
    if pure is not None:
        env["RAWWS_PURE_PYTHON"] = pure
    return subprocess.run([sys.executable, "-c", "import rawws.sansio.mask as m; "
                           "print(m.ACCELERATED, m.apply_mask.__module__)"],
                          capture_output=True, text=True, env=env, check=True,
                          timeout=60).stdout.split()[0]


def test_rawws_pure_python_turns_the_accelerator_off() -> None:
    assert _accelerated_in_a_fresh_process("1") == "False"
    expected = "True" if _speedups is not None else "False"
    assert _accelerated_in_a_fresh_process(None) == expected
    assert _accelerated_in_a_fresh_process("0") == expected


def test_this_process_uses_what_the_environment_says() -> None:
    pure = os.environ.get("RAWWS_PURE_PYTHON", "") not in ("", "0")
    assert mask.ACCELERATED is (not pure and _speedups is not None)
    assert (mask.apply_mask is apply_mask_python) is not mask.ACCELERATED
