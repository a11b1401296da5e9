"""The craft script language: steps, options, payload expressions, and errors by line."""

from __future__ import annotations

import zlib

import pytest

from rawws.tools.attacks import ATTACKS
from rawws.tools.craftscript import ScriptError, parse_number, parse_payload, parse_script


@pytest.mark.parametrize(("expression", "expected"), [
    ('"hello"', b"hello"),
    ('"a b; c # d"', b"a b; c # d"),
    ('"\\n\\r\\t\\0\\\\\\""', b'\n\r\t\0\\"'),
    ('"caf\\u00e9"', "café".encode()),
    ('"\\xff\\xfe"', b"\xff\xfe"),          # \x is a byte, not a code point
    ('"é"', "é".encode()),
    ("hex:cebae1bd", bytes.fromhex("cebae1bd")),
    ("zeros:4", b"\0\0\0\0"),
    ('"*"*125', b"*" * 125),
    ("hex:ab*3", b"\xab\xab\xab"),
    ('"a*2"', b"a*2"),                       # a star inside the quotes is text
])
def test_payload_expressions(expression: str, expected: bytes) -> None:
    assert parse_payload(expression) == expected


def test_random_payloads_have_the_asked_length() -> None:
    assert len(parse_payload("random:37")) == 37


def test_deflate_payloads_inflate_back() -> None:
    inflate = zlib.decompressobj(-15)
    assert inflate.decompress(parse_payload('deflate:"hi"*2') + b"\0\0\xff\xff") == b"hihi"
    bomb = parse_payload("deflate:zeros:10M")
    assert len(bomb) < 20_000  # 10 MiB of zeros in a few KiB
    out = zlib.decompressobj(-15).decompress(bomb + b"\0\0\xff\xff")
    assert out == bytes(10 * 2**20)


@pytest.mark.parametrize(("text", "value"), [
    ("125", 125), ("0x7f", 127), ("2**63", 2**63), ("64k", 65536), ("16M", 16 * 2**20)])
def test_numbers(text: str, value: int) -> None:
    assert parse_number(text) == value


def test_a_script_is_steps_with_arguments_and_options() -> None:
    steps = parse_script('''
        # a comment
        handshake path=/chat header="X-One: 1" header="X-Two: 2"
        send text "hi there" fin=0 rsv1=1 mask=00000000   # trailing comment
        send cont "!"; expect close 1002,1007 within=2
        wait 0.5
    ''')
    assert [s.verb for s in steps] == ["handshake", "send", "send", "expect", "wait"]
    handshake, text, cont, expect, _ = steps
    assert handshake.options == {"path": ["/chat"], "header": ["X-One: 1", "X-Two: 2"]}
    assert text.args == ["text", '"hi there"'] and text.option("fin") == "0"
    assert text.flag("rsv1") and not text.flag("rsv2")
    assert cont.line == expect.line == 5
    assert expect.args == ["close", "1002,1007"] and expect.option("within") == "2"


def test_send_raw_takes_bare_hex() -> None:
    (step,) = parse_script("send raw 81 05 68 65 6c 6c 6f")
    assert parse_payload(step.args[1]) == b"\x81\x05hello"


@pytest.mark.parametrize(("script", "message"), [
    ("launch rockets", "line 1: unknown step 'launch'"),
    ("send\n", "line 1: send what?"),
    ('\n\nsend text "a" "b"', "line 3: send text takes one payload"),
    ("send text nonsense", "expected a payload"),
    ('send text "unterminated', "unterminated string"),
    ('send text "x" colour=red', "takes no option 'colour'"),
    ('send text "x" fin=0 fin=1', "option 'fin' given twice"),
    ("send frame", "send frame needs opcode=N"),
    ('send text "x" length-field=32', "length-field is 7, 16 or 64"),
    ('send text "x" mask=xyz', "mask is auto, none or 8 hex digits"),
    ("expect applause", "expect what?"),
    ("expect status", "expect status CODE"),
    ("expect close maybe", "expect close [CODE"),
    ("wait soon", "expected seconds"),
    ('send text "\\q"', "unknown escape"),
    ("set", "set NAME=VALUE"),
])
def test_bad_scripts_name_the_line_and_the_fault(script: str, message: str) -> None:
    with pytest.raises(ScriptError) as info:
        parse_script(script)
    assert message in str(info.value)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_named_attack_parses_and_cites_the_rfc(name: str) -> None:
    attack = ATTACKS[name]
    steps = parse_script(attack.script)
    assert steps and "RFC" in attack.section and "§" in attack.section
    assert attack.side in ("client", "server")
    if attack.side == "server":
        assert steps[0].verb == "respond"
