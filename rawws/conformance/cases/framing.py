"""Cases 1.x-5.x: framing, pings and pongs, reserved bits, reserved opcodes, fragmentation.

RFC 6455 §5.2 (the frame), §5.4 (fragmentation), §5.5 (control frames: at most 125 bytes, never
fragmented, may be injected between fragments), §5.5.2/§5.5.3 (a ping is answered with a pong
carrying the same payload; an unsolicited pong is ignored), §5.2 again for RSV bits and opcodes
that no extension defines: the receiver MUST fail the connection.

Where a case sends a valid message and then a bad frame, the testee should echo the message
first (``OK``); failing before the echo is allowed but ``NON-STRICT``.

The last argument to ``send_frame`` decides how the bytes reach the wire: by default frames
written together leave together; ``sync=True`` writes each frame on its own; ``chopsize=1``
writes one byte at a time.
"""

from __future__ import annotations

from ..case import NON_STRICT, NORMAL, OK, Case, failure, message, pong
from . import define

TEXT, BINARY, CLOSE, PING, PONG, CONT = 1, 2, 8, 9, 10, 0
HELLO = b"Hello, world!"

# --- 1.1 / 1.2: one message of a given size, echoed ----------------------------------------------

_SIZES = [(0, None), (125, None), (126, None), (127, None), (128, None), (65535, None),
          (65536, None), (65536, 997)]


def _echo_case(case_id: str, opcode: int, size: int, chop: int | None) -> None:
    kind = "text" if opcode == TEXT else "binary"
    unit = b"*" if opcode == TEXT else b"\xfe"
    chopped = f", written in chops of {chop} bytes" if chop else ""
    lengths = {0: "", 125: " (the largest 7-bit length)", 126: " (16-bit length)",
               127: " (16-bit length)", 65535: " (the largest 16-bit length)",
               65536: " (64-bit length)"}

    @define(case_id, f"Send a {kind} message of {size} bytes{lengths.get(size, '')}{chopped}"
            " (RFC 6455 §5.2, §5.6).",
            f"The {kind} message comes back unchanged; clean close with 1000.")
    def on_open(c: Case) -> None:
        payload = unit * size
        c.expect({OK: [message(payload, opcode == BINARY)]})
        c.peer.send_frame(opcode, payload, chopsize=chop)
        c.peer.kill_after(1 if size <= 128 else 10)


for _i, (_size, _chop) in enumerate(_SIZES, 1):
    _echo_case(f"1.1.{_i}", TEXT, _size, _chop)
    _echo_case(f"1.2.{_i}", BINARY, _size, _chop)

# --- 2.x: pings and pongs (§5.5.2, §5.5.3) -------------------------------------------------------


def _ping_case(case_id: str, what: str, payload: bytes, *, chop: int | None = None,
               wait: float = 1) -> None:
    @define(case_id, f"Send a ping with {what} (RFC 6455 §5.5.2).",
            "A pong with the same payload comes back; clean close with 1000.")
    def on_open(c: Case) -> None:
        c.expect({OK: [pong(payload)]})
        c.peer.send_frame(PING, payload, chopsize=chop)
        c.peer.close_after(wait)


_ping_case("2.1", "no payload", b"")
_ping_case("2.2", "a short text payload", HELLO)
_ping_case("2.3", "a short binary payload (not UTF-8)", b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")
_ping_case("2.4", "a binary payload of 125 bytes, the most a control frame may carry",
           b"\xfe" * 125)


@define("2.5", "Send a ping with 126 bytes of payload (RFC 6455 §5.5: control frames carry at"
        " most 125).", "The testee fails the connection with 1002.")
def _case_2_5(c: Case) -> None:
    c.expect({OK: []}, failure(1002))
    c.peer.send_frame(PING, b"\xfe" * 126)
    c.peer.kill_after(1)


_ping_case("2.6", "125 bytes of payload, written one byte at a time", b"\xfe" * 125, chop=1,
           wait=2)


def _unsolicited_pong(case_id: str, payload: bytes) -> None:
    what = "with a payload" if payload else "without payload"

    @define(case_id, f"Send an unsolicited pong {what}, then close (RFC 6455 §5.5.3: a pong"
            " nobody asked for is ignored).", "Nothing comes back; clean close with 1000.")
    def on_open(c: Case) -> None:
        c.expect({OK: []})
        c.peer.send_frame(PONG, payload)
        c.peer.send_close(1000)
        c.peer.close_after(1)


_unsolicited_pong("2.7", b"")
_unsolicited_pong("2.8", b"unsolicited pong payload")


@define("2.9", "Send an unsolicited pong, then a ping (RFC 6455 §5.5.3).",
        "Only the ping is answered, with a pong carrying its payload; clean close with 1000.")
def _case_2_9(c: Case) -> None:
    c.expect({OK: [pong(b"ping payload")]})
    c.peer.send_frame(PONG, b"unsolicited pong payload")
    c.peer.send_frame(PING, b"ping payload")
    c.peer.close_after(1)


def _ten_pings(case_id: str, chop: int | None) -> None:
    how = ", written one byte at a time" if chop else ""

    @define(case_id, f"Send 10 pings with payloads{how} (RFC 6455 §5.5.2; answering every one"
            " is not required, answering the last is).",
            "Ten pongs come back, in order, with the ten payloads; clean close with 1000.")
    def on_open(c: Case) -> None:
        payloads = [f"payload-{i}".encode() for i in range(10)]
        c.expect({OK: [pong(p) for p in payloads]})
        for p in payloads:
            c.peer.send_frame(PING, p, chopsize=chop)
        c.peer.close_after(3)


_ten_pings("2.10", None)
_ten_pings("2.11", 1)

# --- 3.x: RSV bits no extension owns (§5.2) --------------------------------------------------


def _rsv_alone(case_id: str, what: str, opcode: int, payload: bytes, rsv: int) -> None:
    @define(case_id, f"Send {what} with RSV = {rsv} (RFC 6455 §5.2: without a negotiated"
            " extension the RSV bits MUST be 0).", "The testee fails the connection with 1002.")
    def on_open(c: Case) -> None:
        c.expect({OK: []}, failure(1002))
        c.peer.send_frame(opcode, payload, rsv=rsv)
        c.peer.kill_after(1)


def _rsv_after_message(case_id: str, rsv: int, *, sync: bool = False, chop: int | None = None
                       ) -> None:
    how = ", each frame written on its own" if sync else (", one byte at a time" if chop else "")

    @define(case_id, f"Send a text message, the same with RSV = {rsv}, then a ping{how}"
            " (RFC 6455 §5.2).", "The first message is echoed, then the testee fails the"
            " connection with 1002; no pong comes back.")
    def on_open(c: Case) -> None:
        c.expect({OK: [message(HELLO)], NON_STRICT: []}, failure(1002))
        c.peer.send_frame(TEXT, HELLO, sync=sync, chopsize=chop)
        c.peer.send_frame(TEXT, HELLO, rsv=rsv, sync=sync, chopsize=chop)
        c.peer.send_frame(PING, sync=sync, chopsize=chop)
        c.peer.kill_after(1)


_rsv_alone("3.1", "a short text message", TEXT, HELLO, 1)
_rsv_after_message("3.2", 2)
_rsv_after_message("3.3", 3, sync=True)
_rsv_after_message("3.4", 4, chop=1)
_rsv_alone("3.5", "a short binary message", BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", 5)
# Autobahn's 3.6 is described as a ping but sends a binary frame; we send what it sends.
_rsv_alone("3.6", "a short binary message", BINARY, HELLO, 6)
_rsv_alone("3.7", "a close frame", CLOSE, b"", 7)

# --- 4.x: reserved opcodes (§5.2: 3-7 data, 11-15 control) -----------------------------------


def _opcode_alone(case_id: str, opcode: int, payload: bytes) -> None:
    kind = "data" if opcode < 8 else "control"
    with_payload = " with a payload" if payload else ""

    @define(case_id, f"Send a frame with the reserved {kind} opcode {opcode}{with_payload}"
            " (RFC 6455 §5.2: an unknown opcode MUST fail the connection).",
            "The testee fails the connection with 1002.")
    def on_open(c: Case) -> None:
        c.expect({OK: []}, failure(1002))
        c.peer.send_frame(opcode, payload)
        c.peer.kill_after(1)


def _opcode_after_message(case_id: str, opcode: int, payload: bytes, chop: int | None) -> None:
    kind = "data" if opcode < 8 else "control"
    how = ", one byte at a time" if chop else ""

    @define(case_id, f"Send a text message, a frame with the reserved {kind} opcode {opcode},"
            f" then a ping{how} (RFC 6455 §5.2).", "The message is echoed, then the testee"
            " fails the connection with 1002; no pong comes back.")
    def on_open(c: Case) -> None:
        c.expect({OK: [message(HELLO)], NON_STRICT: []}, failure(1002))
        c.peer.send_frame(TEXT, HELLO, chopsize=chop)
        c.peer.send_frame(opcode, payload, chopsize=chop)
        c.peer.send_frame(PING, chopsize=chop)
        c.peer.kill_after(1)


for _base, _group in ((3, "4.1"), (11, "4.2")):
    _opcode_alone(f"{_group}.1", _base, b"")
    _opcode_alone(f"{_group}.2", _base + 1, b"reserved opcode payload")
    _opcode_after_message(f"{_group}.3", _base + 2, b"", None)
    _opcode_after_message(f"{_group}.4", _base + 3, HELLO, None)
    _opcode_after_message(f"{_group}.5", _base + 4, HELLO, 1)

# --- 5.x: fragmentation (§5.4) ---------------------------------------------------------------


def _fragmented_control(case_id: str, opcode: int, name: str) -> None:
    @define(case_id, f"Send a {name} in two fragments (RFC 6455 §5.4: control frames MUST NOT"
            " be fragmented).", "The testee fails the connection with 1002.")
    def on_open(c: Case) -> None:
        c.expect({OK: []}, failure(1002))
        c.peer.send_frame(opcode, b"fragment1", fin=False)
        c.peer.send_frame(CONT, b"fragment2")
        c.peer.kill_after(1)


_fragmented_control("5.1", PING, "ping")
_fragmented_control("5.2", PONG, "pong")

_HOW = {None: "in one write", "sync": "each frame written on its own", 1: "one byte at a time"}


def _two_fragments(case_id: str, how: str | int | None, with_ping: bool) -> None:
    sync, chop = how == "sync", (how if isinstance(how, int) else None)
    ping = ", with a ping between them" if with_ping else ""

    @define(case_id, f"Send a text message in two fragments{ping}, {_HOW[how]}"
            " (RFC 6455 §5.4; §5.5: control frames MAY be injected between fragments).",
            ("The pong comes back, then " if with_ping else "") + "the message is echoed whole;"
            " clean close with 1000.")
    def on_open(c: Case) -> None:
        events = [pong(b"ping payload")] if with_ping else []
        c.expect({OK: [*events, message(b"fragment1fragment2")]})
        c.peer.send_frame(TEXT, b"fragment1", fin=False, sync=sync, chopsize=chop)
        if with_ping:
            c.peer.send_frame(PING, b"ping payload", sync=sync, chopsize=chop)
        c.peer.send_frame(CONT, b"fragment2", sync=sync, chopsize=chop)
        c.peer.close_after(1)


for _n, _how in enumerate((None, "sync", 1)):
    _two_fragments(f"5.{3 + _n}", _how, False)
    _two_fragments(f"5.{6 + _n}", _how, True)


def _nothing_to_continue(case_id: str, fin: bool, how: str | int | None) -> None:
    sync, chop = how == "sync", (how if isinstance(how, int) else None)

    @define(case_id, f"Send a continuation frame (FIN = {str(fin).lower()}) with no message to"
            f" continue, then a text message, {_HOW[how]} (RFC 6455 §5.4).",
            "The testee fails the connection with 1002.")
    def on_open(c: Case) -> None:
        c.expect({OK: []}, failure(1002))
        c.peer.send_frame(CONT, b"non-continuation payload", fin=fin, sync=sync, chopsize=chop)
        c.peer.send_frame(TEXT, HELLO, sync=sync, chopsize=chop)
        c.peer.kill_after(1)


for _n, _how in enumerate((None, "sync", 1)):
    _nothing_to_continue(f"5.{9 + _n}", True, _how)
    _nothing_to_continue(f"5.{12 + _n}", False, _how)


@define("5.15", "Send a text message in two fragments, then a continuation frame with nothing to"
        " continue, then a text message (RFC 6455 §5.4).", "The two-fragment message is echoed,"
        " then the testee fails the connection with 1002.")
def _case_5_15(c: Case) -> None:
    c.expect({OK: [message(b"fragment1fragment2")], NON_STRICT: []}, failure(1002))
    c.peer.send_frame(TEXT, b"fragment1", fin=False)
    c.peer.send_frame(CONT, b"fragment2")
    c.peer.send_frame(CONT, b"fragment3", fin=False)
    c.peer.send_frame(TEXT, b"fragment4")
    c.peer.kill_after(1)


def _orphan_then_message(case_id: str, fin: bool) -> None:
    @define(case_id, f"Twice: a continuation frame (FIN = {str(fin).lower()}) with nothing to"
            " continue, then a text message in two fragments (RFC 6455 §5.4).",
            "The testee fails the connection with 1002 at the first frame.")
    def on_open(c: Case) -> None:
        c.expect({OK: []}, failure(1002))
        for _ in range(2):
            c.peer.send_frame(CONT, b"fragment1", fin=fin)
            c.peer.send_frame(TEXT, b"fragment2", fin=False)
            c.peer.send_frame(CONT, b"fragment3")
        c.peer.kill_after(1)


_orphan_then_message("5.16", False)
_orphan_then_message("5.17", True)


@define("5.18", "Send a text message in two fragments that both carry the text opcode (RFC 6455"
        " §5.4: every fragment after the first has opcode 0).",
        "The testee fails the connection with 1002.")
def _case_5_18(c: Case) -> None:
    c.expect({OK: []}, failure(1002))
    c.peer.send_frame(TEXT, b"fragment1", fin=False)
    c.peer.send_frame(TEXT, b"fragment2")
    c.peer.kill_after(1)


class _PingsAmongFragments(Case):
    """5.19 / 5.20: two fragments and a ping, a one-second pause, two fragments, a ping and the
    last fragment. The first pong must come back during the pause, before the message ends."""

    sync = False
    fragments = tuple(b"fragment%d" % i for i in range(1, 6))
    pings = (b"pongme 1!", b"pongme 2!")

    def on_open(self) -> None:
        self.expect({OK: [pong(self.pings[0]), pong(self.pings[1]),
                          message(b"".join(self.fragments))]}, NORMAL)
        send = self.peer.send_frame
        send(TEXT, self.fragments[0], fin=False, sync=self.sync)
        send(CONT, self.fragments[1], fin=False, sync=self.sync)
        send(PING, self.pings[0], sync=self.sync)
        self.peer.continue_later(1, self.second_part)

    def second_part(self) -> None:
        send = self.peer.send_frame
        send(CONT, self.fragments[2], fin=False, sync=self.sync)
        send(CONT, self.fragments[3], fin=False, sync=self.sync)
        send(PING, self.pings[1], sync=self.sync)
        send(CONT, self.fragments[4], sync=self.sync)
        self.peer.close_after(1)


def _pings_among_fragments(case_id: str, sync: bool) -> None:
    how = ", each frame written on its own" if sync else ""
    define(case_id, f"A text message in five fragments with two pings among them and a 1 s pause"
           f" in the middle{how} (RFC 6455 §5.4, §5.5).", "Each ping is answered at once, the"
           " first one before the message is complete; the message is echoed whole.",
           base=_PingsAmongFragments, sync=sync)(_PingsAmongFragments.on_open)


_pings_among_fragments("5.19", False)
_pings_among_fragments("5.20", True)
