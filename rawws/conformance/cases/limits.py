"""Cases 9.x (limits and performance) and 10.1.1 (auto-fragmentation).

9.1-9.6 send one large message (up to 16 MiB, whole, in fragments, or written in small chops)
and wait for the echo; 9.7/9.8 send 1000 messages one after the other, each after the echo of
the previous one. The verdict is OK when everything came back in time, and the duration is
the result: these cases measure the testee (and the fuzzer). The wire log is off while the
data flows.

10.1.1 checks the fuzzer's own auto-fragmentation (65536 bytes in 1300-byte frames) and that the
testee reassembles the message.
"""

from __future__ import annotations

from ..case import FAILED, NORMAL, OK, Case, message
from . import define

TEXT, BINARY = 1, 2
KIB, MIB = 2**10, 2**20
TEXT_UNIT = b"BAsd7&jh23"
BINARY_UNIT = b"\x00\xfe\x23\xfa\xf0"


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB else f"{n // KIB} KiB"


class _OneBigMessage(Case):
    """Send one message of ``length`` bytes; OK when it comes back whole within ``wait`` s."""

    report_time = True
    binary = False
    length = 0
    wait = 10
    unit = TEXT_UNIT
    #: Whole message in fragments of this size (9.3/9.4).
    fragment_size: int | None = None
    #: Written to the socket in pieces of this size (9.5/9.6).
    chop: int | None = None

    def on_open(self) -> None:
        self.peer.create_wirelog = False
        self.behavior = FAILED
        self.expected_close = NORMAL
        self.result = f"Did not receive message within {self.wait} seconds."
        opcode = BINARY if self.binary else TEXT
        if self.fragment_size is not None:
            payload = self.unit * (self.length // len(self.unit))
            self.peer.send_message(payload, self.binary, fragment_size=self.fragment_size)
        else:
            self.peer.send_frame(opcode, self.unit, payload_len=self.length, chopsize=self.chop)
        self.peer.close_after(self.wait)

    def on_message(self, payload: bytes, binary: bool) -> None:
        kind = "binary" if self.binary else "text"
        if binary != self.binary:
            self.result = f"Expected {kind} message with payload, but got the other kind."
        elif len(payload) != self.length:
            self.result = (f"Expected {kind} message with payload of length {self.length},"
                           f" but got {len(payload)}.")
        else:
            self.behavior = OK
            self.result = f"Received {kind} message of length {len(payload)}."
        self.peer.create_wirelog = True
        self.peer.send_close(1000)


def _big(case_id: str, description: str, **attributes: object) -> None:
    define(case_id, description, "The message comes back unchanged, in time.",
           base=_OneBigMessage, **attributes)(_OneBigMessage.on_open)


for _n, (_length, _wait) in enumerate(zip((64 * KIB, 256 * KIB, MIB, 4 * MIB, 8 * MIB, 16 * MIB),
                                          (10, 10, 100, 100, 100, 100), strict=True), 1):
    _big(f"9.1.{_n}", f"Send a text message of {_size(_length)} in one frame.",
         length=_length, wait=_wait)
for _n, (_length, _wait) in enumerate(zip((64 * KIB, 256 * KIB, MIB, 4 * MIB, 8 * MIB, 16 * MIB),
                                          (10, 10, 10, 10, 100, 100), strict=True), 1):
    _big(f"9.2.{_n}", f"Send a binary message of {_size(_length)} in one frame.",
         binary=True, unit=BINARY_UNIT, length=_length, wait=_wait)

_FRAGMENTS = (64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 4 * MIB)
for _n, _fragment in enumerate(_FRAGMENTS, 1):
    _what = f"{_fragment} bytes" if _fragment < KIB else _size(_fragment)
    _big(f"9.3.{_n}", f"Send a text message of 4 MiB in fragments of {_what}.",
         length=4 * MIB, wait=100, unit=b"*", fragment_size=_fragment)
    _big(f"9.4.{_n}", f"Send a binary message of 4 MiB in fragments of {_what}.", binary=True,
         length=4 * MIB, wait=100, unit=b"\xfe" if _n == 1 else b"*", fragment_size=_fragment)

for _n, _chop in enumerate((64, 128, 256, 512, 1024, 2048), 1):
    _big(f"9.5.{_n}", f"Send a text message of 1 MiB, written to the socket {_chop} bytes at a"
         " time.", length=MIB, wait=1000, chop=_chop)
    _big(f"9.6.{_n}", f"Send a binary message of 1 MiB, written to the socket {_chop} bytes at"
         " a time.", binary=True, unit=BINARY_UNIT, length=MIB, wait=1000, chop=_chop)


class _RoundTrips(Case):
    """Send ``count`` messages of ``length`` bytes, each after the echo of the previous one."""

    report_time = True
    binary = False
    length = 0
    count = 1000
    wait = 60

    def on_open(self) -> None:
        self.peer.enable_wirelog(False)
        self.behavior = FAILED
        self.expected_close = NORMAL
        self.result = f"Case did not finish within {self.wait} seconds."
        self.peer.close_after(self.wait)
        self.sent = 0
        self.send_one()

    def send_one(self) -> None:
        if self.binary:
            self.peer.send_frame(BINARY, b"\xfe", payload_len=self.length)
        else:
            self.peer.send_frame(TEXT, b"*", payload_len=self.length)
        self.sent += 1

    def on_message(self, payload: bytes, binary: bool) -> None:
        if binary != self.binary or len(payload) != self.length:
            self.behavior = FAILED
            self.result = ("Echo'ed message type or length differs from what I sent (got"
                           f" binary = {binary}, payload length = {len(payload)}).")
        elif self.sent < self.count:
            self.send_one()
            return
        else:
            self.behavior = OK
            self.result = "Ok, received all echo'ed messages in time."
        self.peer.enable_wirelog(True)
        self.peer.send_close(1000)


for _binary, _group in ((False, "9.7"), (True, "9.8")):
    for _n, (_length, _wait) in enumerate(((0, 60), (16, 60), (64, 60), (256, 120),
                                           (1024, 240), (4096, 480)), 1):
        _kind = "binary" if _binary else "text"
        define(f"{_group}.{_n}", f"Send 1000 {_kind} messages of {_length} bytes, each after"
               " the echo of the previous one, to measure the round trip time.",
               f"All 1000 messages come back unchanged within {_wait} s.", base=_RoundTrips,
               binary=_binary, length=_length, wait=_wait)(_RoundTrips.on_open)


class _AutoFragmented(Case):
    """10.1.1: the frames the fuzzer sent are counted too (50 continuations and 1 text frame)."""

    def on_open(self) -> None:
        self.payload = b"*" * 65536
        self.peer.auto_fragment_size = 1300
        self.expect({OK: [message(self.payload)]})
        self.peer.send_message(self.payload)
        self.peer.kill_after(10)

    def judge(self) -> None:
        super().judge()
        if not self.peer.connection_was_open:
            self.behavior, self.result = FAILED, "WebSocket connection was never open"
            return
        size = self.peer.auto_fragment_size
        expected = {0: len(self.payload) // size, 1: 1 if len(self.payload) % size else 0}
        sent = {0: self.peer.tx_frame_stats.get(0, 0), 1: self.peer.tx_frame_stats.get(1, 0)}
        if sent != expected:
            self.behavior = FAILED
            self.result = f"Frames transmitted {sent} does not match what we expected {expected}."


define("10.1.1", "Send a text message of 65536 bytes, auto-fragmented into frames of 1300"
       " bytes (RFC 6455 §5.4).", "The message comes back whole; the frame counts are as"
       " expected.", base=_AutoFragmented)(_AutoFragmented.on_open)
