"""Wire values: opcodes and close codes (RFC 6455 §5.2, §7.4, §11.7-§11.8)."""

from __future__ import annotations

import pytest

from rawws.sansio.codes import CLOSE_CODE_MEANINGS, CloseCode, Opcode, is_valid_close_code


def test_opcode_kinds() -> None:
    # RFC 6455 §5.5: control frames are identified by opcodes where the MSB is 1.
    assert [op for op in Opcode if op.is_control] == [Opcode.CLOSE, Opcode.PING, Opcode.PONG]
    assert [op for op in Opcode if op.is_data] == [Opcode.CONTINUATION, Opcode.TEXT,
                                                   Opcode.BINARY]


def test_opcode_values() -> None:
    assert [int(op) for op in Opcode] == [0, 1, 2, 8, 9, 10]


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                  1013, 1014, 3000, 3999, 4000, 4999])
def test_codes_that_may_be_sent(code: int) -> None:
    assert is_valid_close_code(code)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_codes_that_may_not(code: int) -> None:
    # §7.4.1: 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close control frame".
    assert not is_valid_close_code(code)


def test_every_named_code_has_a_meaning() -> None:
    assert {int(code) for code in CloseCode} <= set(CLOSE_CODE_MEANINGS)
    assert CloseCode.MESSAGE_TOO_BIG == 1009 and CLOSE_CODE_MEANINGS[1009] == "message too big"
