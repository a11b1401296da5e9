"""The message assembler, alone: completion, fragments, fail-fast UTF-8, the budget, and the
extensions' output held to it."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar

import pytest

from rawws.errors import InvalidUTF8, PayloadTooBig
from rawws.sansio.assembler import MessageAssembler
from rawws.sansio.frames import RSV1, Frame


def assembler(max_size: int | None = 100, extensions: list[Any] | None = None
              ) -> MessageAssembler:
    return MessageAssembler([], max_size=max_size, extensions=extensions or [])


def test_whole_messages() -> None:
    a = assembler()
    a.message(1, "é".encode())
    a.message(2, b"\x00")
    assert a.events == ["é", b"\x00"]
    with pytest.raises(InvalidUTF8):
        a.message(1, b"\xff")


def test_a_fragmented_text_message() -> None:
    a = assembler()
    assert a.frame(False, 0, 1, b"fr\xc3") == b"fr\xc3"
    assert a.opcode == 1 and a.size == 3
    a.frame(False, 0, 0, b"\xa9")
    a.frame(True, 0, 0, b"!")
    assert a.events == ["fré!"] and a.opcode == 0 and a.size == 0


def test_a_fragmented_binary_message_is_joined_once() -> None:
    a = assembler()
    for fin, opcode, piece in [(False, 2, b"a"), (False, 0, b""), (True, 0, b"bc")]:
        a.frame(fin, 0, opcode, piece)
    assert a.events == [b"abc"]


def test_utf8_fails_on_the_piece_that_breaks_it() -> None:
    a = assembler()
    a.start(1)
    a.data(b"ok", False)
    with pytest.raises(InvalidUTF8):
        a.data(b"\xff", False)


def test_the_budget() -> None:
    a = assembler(max_size=100)
    assert a.budget(1) == 100
    a.frame(False, 0, 2, bytes(60))
    assert a.budget(0) == 40  # what a continuation may still add
    assert a.budget(2) == 100  # a new message (the reader refuses one here anyway)
    assert assembler(max_size=None).budget(0) is None


class Inflating:
    """A fake extension that turns every payload into ten times as many bytes, ignoring the
    budget it is given: the assembler must still hold the message to max_size."""

    name = "x-inflate"
    rsv_bits = RSV1
    broadcast_key: Hashable | None = None
    budgets: ClassVar[list[int | None]] = []

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        self.budgets.append(max_size)
        return frame._replace(payload=frame.payload * 10, rsv1=False)

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        return frame


def test_an_extension_gets_the_budget_and_is_held_to_it() -> None:
    ext = Inflating()
    a = assembler(max_size=100, extensions=[ext])
    assert a.frame(False, RSV1, 2, bytes(5)) == bytes(50)
    with pytest.raises(PayloadTooBig) as info:
        a.frame(True, 0, 0, bytes(6))  # 60 more bytes, 50 left
    assert info.value.section == "10.4"
    assert ext.budgets == [100, 50]


def test_reset_forgets_the_message() -> None:
    a = assembler()
    a.frame(False, 0, 1, b"half")
    a.reset()
    assert a.opcode == 0 and a.size == 0
    a.message(2, b"next")
    assert a.events == [b"next"]
