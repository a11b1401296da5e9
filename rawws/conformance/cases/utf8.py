"""Cases 6.x: UTF-8 in text messages (RFC 6455 §5.6, §8.1).

§8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream is
not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_", with
1007 (§7.4.1). Valid text must come back byte for byte however it was fragmented, even when a
frame ends inside a code point (§5.6: only the whole message must be valid).

6.4.x test *failing fast*: the invalid byte arrives in the middle of a message, then the fuzzer
waits a second. Failing before the message ends is ``OK``; failing only at its end is
``NON-STRICT``.

6.5.x-6.23.x send one text message each from the classic UTF-8 decoder stress list (Markus
Kuhn's "UTF-8 decoder capability and stress test"): sequences at the limits of each length,
overlong forms, surrogates, lonely start bytes, missing continuation bytes, impossible bytes,
non-characters (valid). Valid ones must be echoed, invalid ones must fail the connection.
"""

from __future__ import annotations

from ..case import NON_STRICT, OK, Case, failure, message, timeout
from ..endpoint import State
from . import CATEGORIES, define

TEXT, CONT = 1, 0
UTF8_FAILURE = failure(1007, fatal=True)
HELLO = "Hello-µ@ßöäüàá-UTF-8!!".encode()
#: "κόσμε" (Greek "kosme"), the stress test's sample of multi-byte text.
KOSME = bytes.fromhex("cebae1bdb9cf83cebcceb5")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- 6.1-6.3 ---------------------------------------------------------------------------------


@define("6.1.1", "Send a text message of length 0 (RFC 6455 §5.6).",
        "An empty text message comes back.")
def _case_6_1_1(c: Case) -> None:
    c.expect({OK: [message(b"")]})
    c.peer.send_frame(TEXT, b"")
    c.peer.close_after(1)


def _three_fragments(case_id: str, middle: bytes) -> None:
    what = "all three empty" if not middle else "the first and last empty"

    @define(case_id, f"Send a text message in three fragments, {what} (RFC 6455 §5.4).",
            "The message comes back: " + (repr(middle.decode()) if middle else "empty") + ".")
    def on_open(c: Case) -> None:
        c.expect({OK: [message(middle)]})
        c.peer.send_frame(TEXT, b"", fin=False)
        c.peer.send_frame(CONT, middle, fin=False)
        c.peer.send_frame(CONT, b"")
        c.peer.close_after(1)


_three_fragments("6.1.2", b"")
_three_fragments("6.1.3", b"middle frame payload")


@define("6.2.1", f"Send valid UTF-8 text in one frame (RFC 6455 §5.6): {HELLO.hex()}.",
        "The message comes back unchanged.")
def _case_6_2_1(c: Case) -> None:
    c.expect({OK: [message(HELLO)]})
    c.peer.send_message(HELLO)
    c.peer.close_after(1)


@define("6.2.2", "Send valid UTF-8 text in two fragments split on a code point boundary"
        " (RFC 6455 §5.4, §5.6).", "The message comes back whole.")
def _case_6_2_2(c: Case) -> None:
    first, second = "Hello-µ@ßöä".encode(), "üàá-UTF-8!!".encode()
    c.expect({OK: [message(first + second)]})
    c.peer.send_frame(TEXT, first, fin=False)
    c.peer.send_frame(CONT, second)
    c.peer.close_after(1)


def _one_byte_fragments(case_id: str, payload: bytes) -> None:
    @define(case_id, "Send valid UTF-8 text in fragments of one byte, so that frames end inside"
            f" code points (RFC 6455 §5.6): {payload.hex()}.", "The message comes back whole.")
    def on_open(c: Case) -> None:
        c.expect({OK: [message(payload)]})
        c.peer.send_message(payload, fragment_size=1)
        c.peer.close_after(1)


_one_byte_fragments("6.2.3", HELLO)
_one_byte_fragments("6.2.4", KOSME)

#: Valid text, an encoded surrogate (U+D800, never valid in UTF-8), valid text.
INVALID = KOSME + b"\xed\xa0\x80" + b"edited"


def _invalid_text(case_id: str, fragment_size: int | None) -> None:
    how = "in fragments of one byte" if fragment_size else "in one frame"

    @define(case_id, f"Send invalid UTF-8 text {how} (RFC 6455 §8.1): {INVALID.hex()}.",
            "The testee fails the connection with 1007.")
    def on_open(c: Case) -> None:
        c.expect({OK: []}, UTF8_FAILURE)
        c.peer.send_message(INVALID, fragment_size=fragment_size)
        c.peer.kill_after(1)


_invalid_text("6.3.1", None)
_invalid_text("6.3.2", 1)

# --- 6.4: fail fast --------------------------------------------------------------------------

#: Valid text; U+110000 written in UTF-8's encoding scheme (beyond Unicode); valid text. The
#: first byte that makes it invalid is 0x90, the 13th.
FAST = KOSME + b"\xf4\x90\x80\x80" + b"edited"


class _FailFast(Case):
    """Three parts with a one-second wait after each of the first two. The part that makes the
    text invalid is the second; after it the testee should fail at once (wait "A" is then the
    last mark). A testee that waits for the end of the message lets wait "B" pass too."""

    parts: tuple[bytes, bytes, bytes] = (b"", b"", b"")
    #: 6.4.1/6.4.2: three frames; 6.4.3/6.4.4: three pieces of one frame's payload.
    streamed = False

    def on_open(self) -> None:
        self.expect({OK: [timeout("A")], NON_STRICT: [timeout("A"), timeout("B")]},
                    UTF8_FAILURE)
        if self.streamed:
            self.peer.begin_message()
            self.peer.begin_message_frame(len(FAST))
            self.peer.send_message_frame_data(self.parts[0])
        else:
            self.peer.send_frame(TEXT, self.parts[0], fin=False)
        self.peer.continue_later(1, self.second, "A")

    def second(self) -> None:
        if self.peer.state != State.OPEN:
            return
        self.received.append(timeout("A"))
        if self.streamed:
            self.peer.send_message_frame_data(self.parts[1])
        else:
            self.peer.send_frame(CONT, self.parts[1], fin=False)
        self.peer.continue_later(1, self.third, "B")

    def third(self) -> None:
        if self.peer.state != State.OPEN:
            return
        self.received.append(timeout("B"))
        if self.streamed:
            self.peer.send_message_frame_data(self.parts[2])
            self.peer.end_message()
        else:
            self.peer.send_frame(CONT, self.parts[2])
        self.peer.kill_after(1)


def _fail_fast(case_id: str, parts: tuple[bytes, bytes, bytes], streamed: bool) -> None:
    how = "three pieces of one frame" if streamed else "three frames"
    define(case_id, f"Send invalid UTF-8 text in {how}, waiting 1 s after the first and the"
           f" second (RFC 6455 §8.1): {' | '.join(p.hex() for p in parts)}. The second part"
           " makes the text invalid.", "The first part is accepted (the first wait ends); the"
           " second fails the connection at once with 1007, or at the latest the end of the"
           " message does.", base=_FailFast, parts=parts, streamed=streamed)(_FailFast.on_open)


_WHOLE_CODE_POINT = (FAST[:11], FAST[11:15], FAST[15:])
_UP_TO_BAD_BYTE = (FAST[:12], FAST[12:13], FAST[13:])
_fail_fast("6.4.1", _WHOLE_CODE_POINT, False)
_fail_fast("6.4.2", _UP_TO_BAD_BYTE, False)
_fail_fast("6.4.3", _WHOLE_CODE_POINT, True)
_fail_fast("6.4.4", _UP_TO_BAD_BYTE, True)

# --- 6.5-6.23: the stress test ---------------------------------------------------------------


def stress_sequences() -> list[tuple[str, list[tuple[bool, bytes]]]]:
    """The UTF-8 decoder stress test, grouped, in Autobahn's order: (title, [(valid, bytes)])."""
    groups: list[tuple[str, list[tuple[bool, bytes]]]] = []

    def group(title: str, items: list[bytes], valid: bool | None = None) -> None:
        groups.append((title, [(_is_utf8(b) if valid is None else valid, b) for b in items]))

    def hx(*values: str) -> list[bytes]:
        return [bytes.fromhex(v) for v in values]

    group("Some valid UTF-8 sequences",
          [b"hello$world", *(b"hello" + b + b"world" for b in hx("c2a2", "e282ac", "f0a4ada2")),
           KOSME], True)
    group("All prefixes of a valid UTF-8 string that contains multi-byte code points",
          [KOSME[:i] for i in range(1, len(KOSME) + 1)])
    group("First possible sequence of a certain length", hx("00", "c280", "e0a080", "f0908080"),
          True)
    group("First possible sequence length 5/6 (invalid codepoints)",
          hx("f888808080", "fc8480808080"), False)
    group("Last possible sequence of a certain length", hx("7f", "dfbf", "efbfbf", "f48fbfbf"),
          True)
    group("Last possible sequence length 4/5/6 (invalid codepoints)",
          hx("f7bfbfbf", "fbbfbfbfbf", "fdbfbfbfbfbf"), False)
    group("Other boundary conditions", hx("ed9fbf", "ee8080", "efbfbd", "f48fbfbf", "f4908080"))
    continuation = hx("80", "bf", "80bf", "80bf80", "80bf80bf", "80bf80bf80", "80bf80bf80bf")
    group("Unexpected continuation bytes", [*continuation, bytes(range(0x80, 0xBF))], False)
    lonely = [(0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB), (0xFC, 0xFD)]
    group("Lonely start characters",
          [b"".join(bytes((b, 0x20)) for b in range(lo, hi)) for lo, hi in lonely], False)
    missing = hx("c0", "e080", "f08080", "f8808080", "fc80808080",
                 "df", "efbf", "f7bfbf", "fbbfbfbf", "fdbfbfbfbf")
    group("Sequences with last continuation byte missing", missing, False)
    group("Concatenation of incomplete sequences", [b"".join(missing)], False)
    group("Impossible bytes", hx("fe", "ff", "fefeffff"), False)
    group("Examples of an overlong ASCII character",
          hx("c0af", "e080af", "f08080af", "f8808080af", "fc80808080af"), False)
    group("Maximum overlong sequences",
          hx("c1bf", "e09fbf", "f08fbfbf", "f887bfbfbf", "fc83bfbfbfbf"), False)
    group("Overlong representation of the NUL character",
          hx("c080", "e08080", "f0808080", "f880808080", "fc8080808080"), False)
    group("Single UTF-16 surrogates",
          hx("eda080", "edadbf", "edae80", "edafbf", "edb080", "edbe80", "edbfbf"), False)
    group("Paired UTF-16 surrogates",
          [bytes.fromhex(h + low) for h in ("eda080", "edadbf", "edae80", "edafbf")
           for low in ("edb080", "edbfbf")], False)
    non_characters = hx("efbfbe", "efbfbf")
    for first in (0xF0, 0xF1, 0xF2, 0xF3, 0xF4):
        for second in (0x8F, 0x9F, 0xAF, 0xBF):
            if first == 0xF4 and second != 0x8F:
                continue  # beyond U+10FFFF
            for last in (0xBE, 0xBF):
                if first == 0xF0 and second == 0x8F:
                    continue  # overlong
                non_characters.append(bytes((first, second, 0xBF, last)))
    group("Non-character code points (valid UTF-8)", non_characters, True)
    group("Unicode specials (i.e. replacement char)",
          hx("efbfb9", "efbfba", "efbfbb", "efbfbc", "efbfbd", "efbfbe", "efbfbf"), True)
    return groups


class _StressCase(Case):
    payload = b""
    valid = True

    def on_open(self) -> None:
        if self.valid:
            self.expect({OK: [message(self.payload)]})
        else:
            self.expect({OK: []}, UTF8_FAILURE)
        self.peer.send_message(self.payload)
        self.peer.kill_after(0.5)


for _group, (_title, _items) in enumerate(stress_sequences(), 5):
    CATEGORIES[f"6.{_group}"] = _title
    for _n, (_valid, _payload) in enumerate(_items, 1):
        _kind = "valid" if _valid else "invalid"
        define(f"6.{_group}.{_n}", f"Send a text message whose payload is {_kind} UTF-8 in one"
               f" frame (RFC 6455 §8.1): 0x{_payload.hex()}.",
               "The message comes back unchanged." if _valid else
               "The testee fails the connection with 1007.",
               base=_StressCase, payload=_payload, valid=_valid)(_StressCase.on_open)
