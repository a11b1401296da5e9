"""Cases 7.x: the closing handshake (RFC 6455 §5.5.1, §7).

§5.5.1: after sending a close frame an endpoint sends no more data; an endpoint that receives a
close frame answers it with one (the body: none, or a 2-byte code and a UTF-8 reason, at most
125 bytes in all); data after a close is ignored. §7.4.1 lists the codes that may appear in a
close frame; codes 0-999, 1004-1006, 1012-2999 (as Autobahn counts) and 5000 and above are a
protocol error (1002). §7.1.1: the server closes TCP first.

In every 7.x case the fuzzer sends the first close frame; a testee whose answer carries a code
the case does not allow fails the case, not only its closing behaviour.
"""

from __future__ import annotations

from ..case import (
    INFORMATIONAL,
    NON_STRICT,
    NORMAL,
    OK,
    Case,
    ExpectedClose,
    Informational,
    WrongCodeFails,
    message,
)
from . import define

TEXT, CLOSE, PING, CONT = 1, 8, 9, 0
HELLO = b"Hello World!"


class _Closing(WrongCodeFails):
    suppress_close = True


@define("7.1.1", "Send a text message, then a close frame (RFC 6455 §5.5.1).",
        "The message is echoed, then the close is answered: clean close with 1000.",
        base=WrongCodeFails)
def _case_7_1_1(c: Case) -> None:
    c.expect({OK: [message(HELLO)]})
    c.peer.send_frame(TEXT, HELLO)
    c.peer.kill_after(1)


@define("7.1.2", "Send two close frames (RFC 6455 §5.5.1).",
        "The first close is answered, the second ignored: clean close with 1000.", base=_Closing)
def _case_7_1_2(c: Case) -> None:
    c.expect({OK: []})
    c.peer.send_close(1000)
    c.peer.send_frame(CLOSE)
    c.peer.kill_after(1)


@define("7.1.3", "Send a close frame, then a ping (RFC 6455 §5.5.1: nothing is processed after a"
        " close).", "No pong comes back: clean close with 1000.", base=_Closing)
def _case_7_1_3(c: Case) -> None:
    c.expect({OK: []})
    c.peer.send_close(1000)
    c.peer.send_frame(PING)
    c.peer.kill_after(1)


@define("7.1.4", "Send a close frame, then a text message (RFC 6455 §5.5.1).",
        "The message is ignored: clean close with 1000.", base=_Closing)
def _case_7_1_4(c: Case) -> None:
    c.expect({OK: []})
    c.peer.send_close(1000)
    c.peer.send_frame(TEXT, HELLO)
    c.peer.kill_after(1)


@define("7.1.5", "Send the first fragment of a text message, a close frame, then the last"
        " fragment (RFC 6455 §5.5: a close may come between fragments).",
        "The close is answered with 1000, the unfinished message dropped: clean close.",
        base=_Closing)
def _case_7_1_5(c: Case) -> None:
    c.expect({OK: []})
    c.peer.send_frame(TEXT, b"fragment1", fin=False)
    c.peer.send_close(1000)
    c.peer.send_frame(CONT, b"fragment2")
    c.peer.kill_after(1)


class _MessageThenClose(Case):
    """7.1.6: what comes back depends on how the testee orders its work, so it only informs."""

    suppress_close = True

    def on_open(self) -> None:
        self.expect({OK: [message(HELLO)], NON_STRICT: []})
        self.peer.send_frame(TEXT, b"BAsd7&jh23", payload_len=256 * 2**10)
        self.peer.send_frame(TEXT, HELLO)
        self.peer.send_close(1000)
        self.peer.send_frame(PING)
        self.peer.kill_after(1)

    def judge(self) -> None:
        super().judge()
        if self.behavior == OK:
            self.result = "Text message was processed before close."
        elif self.behavior == NON_STRICT:
            self.result = "Close was processed before text message could be returned."
        self.behavior = self.behavior_close = INFORMATIONAL


define("7.1.6", "Send a 256 KiB text message, a short one, a close frame and a ping, back to"
       " back (RFC 6455 §5.5.1).", "Depends on the order the testee does its work in: whether"
       " the messages are echoed before the close is answered is not specified.",
       base=_MessageThenClose)(_MessageThenClose.on_open)


def _close_body(case_id: str, what: str, expectation: str, expected: ExpectedClose,
                code: int | None, reason: bytes | None, *, valid: bool) -> None:
    @define(case_id, f"Send a close frame with {what} (RFC 6455 §5.5.1).", expectation,
            base=_Closing)
    def on_open(c: Case) -> None:
        c.expect({OK: []}, expected)
        if valid:
            assert code is not None
            c.peer.send_close(code, None if reason is None else reason.decode())
        else:
            c.peer.send_close_frame(code, reason)
        c.peer.kill_after(1)


_PROTOCOL_ERROR = ExpectedClose(True, (1002,), False)
_CLEAN = "Clean close with 1000."
_close_body("7.3.1", "an empty body (no code, no reason)", _CLEAN, NORMAL, None, None,
            valid=False)
_close_body("7.3.2", "a 1-byte body (a close code takes 2)", "Close with 1002, or TCP dropped.",
            _PROTOCOL_ERROR, None, b"a", valid=False)
_close_body("7.3.3", "a close code and no reason", _CLEAN, NORMAL, 1000, None, valid=True)
_close_body("7.3.4", "a close code and a reason", _CLEAN, NORMAL, 1000, b"Hello World!",
            valid=True)
_close_body("7.3.5", "a close code and a reason of 123 bytes, the most that fits", _CLEAN,
            NORMAL, 1000, b"*" * 123, valid=True)
_close_body("7.3.6", "a reason of 124 bytes: 126 bytes of body, too long for a control frame"
            " (§5.5)", "Close with 1002, or TCP dropped.", _PROTOCOL_ERROR, 1000, b"*" * 124,
            valid=False)
#: Valid UTF-8, an encoded surrogate, valid UTF-8.
INVALID_REASON = bytes.fromhex("cebae1bdb9cf83cebcceb5eda080656469746564")
_close_body("7.5.1", "a reason that is not valid UTF-8 (§8.1)", "Close with 1002 or 1007, or TCP"
            " dropped.", ExpectedClose(True, (1002, 1007), False), 1000, INVALID_REASON,
            valid=False)

VALID_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999)
INVALID_CODES = (0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999)


def _close_code(case_id: str, code: int, valid: bool) -> None:
    if valid:
        expected = ExpectedClose(True, (1000, code), True)
        description = f"Send a close frame with the valid close code {code} (RFC 6455 §7.4)."
        expectation = f"Clean close with 1000 or {code}."
    else:
        expected = _PROTOCOL_ERROR
        description = (f"Send a close frame with the close code {code}, which may not be sent"
                       " (RFC 6455 §7.4.1, §7.4.2).")
        expectation = "Close with 1002, or TCP dropped."

    @define(case_id, description, expectation, base=WrongCodeFails)
    def on_open(c: Case) -> None:
        c.expect({OK: []}, expected)
        c.peer.send_close_frame(code)
        c.peer.kill_after(1)


for _n, _code in enumerate(VALID_CODES, 1):
    _close_code(f"7.7.{_n}", _code, True)
for _n, _code in enumerate(INVALID_CODES, 1):
    _close_code(f"7.9.{_n}", _code, False)


class _OpenCode(Informational):
    suppress_close = True
    code = 5000

    def on_open(self) -> None:
        self.expect({OK: []}, ExpectedClose(True, (1000, self.code, 1002), False))
        self.peer.send_close_frame(self.code)
        self.peer.kill_after(1)


for _n, _code in enumerate((5000, 65535), 1):
    define(f"7.13.{_n}", f"Send a close frame with the close code {_code}, outside every range"
           " RFC 6455 §7.4 defines.", "Not specified: the RFC does not say how to react.",
           base=_OpenCode, code=_code)(_OpenCode.on_open)
