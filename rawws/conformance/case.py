"""What a test case is, and how it is judged: Autobahn's verdict rules.

Owns: the :class:`Case` base class (what a case expects, what it received, when it starts the
closing handshake itself) and the two verdicts every case report carries:

* ``behavior`` — did the testee send what the case expected? The events received (messages,
  pongs, and the case's own timeout marks) are compared, in order and byte for byte, with each
  expected outcome; the first that matches names the verdict (``OK``, ``NON-STRICT``, ...).
  None matching is ``FAILED``. Some cases set the verdict themselves (9.x performance cases,
  12.x/13.x compression cases, the informational ones).
* ``behaviorClose`` — did the connection end the way the RFC requires? Checked in this order
  (:func:`judge_close`), the first rule broken decides:

  1. the wrong endpoint started the closing handshake (``FAILED``): e.g. the testee should have
     failed the connection on a protocol error but the fuzzer had to close it;
  2. the case requires a clean close and it was not (``UNCLEAN``);
  3. the testee's close code is not one the case allows (``WRONG CODE``; no code is fine);
  4. we are the client and had to drop TCP ourselves (``FAILED BY CLIENT``: RFC 6455 §7.1.1,
     the server should close TCP first);
  5. otherwise ``OK``. A connection that never opened is ``FAILED``.

  For the UTF-8 cases (6.x), the wrong endpoint closing also fails ``behavior``: the testee did
  not notice the invalid text at all. Several close-handling cases (7.x) turn ``WRONG CODE``
  into a failed ``behavior``.

The rules are plain functions on plain values, so they can be tested on synthetic traces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .endpoint import Endpoint
    from .pmce import Deflate, DeflateAccept, DeflateOffer

__all__ = [
    "FAILED",
    "FAILED_BY_CLIENT",
    "INFORMATIONAL",
    "NON_STRICT",
    "NORMAL",
    "OK",
    "UNCLEAN",
    "UNIMPLEMENTED",
    "WRONG_CODE",
    "Case",
    "CloseFacts",
    "Event",
    "ExpectedClose",
    "failure",
    "judge_behavior",
    "judge_close",
    "message",
    "pong",
    "timeout",
]

OK = "OK"
NON_STRICT = "NON-STRICT"
FAILED = "FAILED"
WRONG_CODE = "WRONG CODE"
UNCLEAN = "UNCLEAN"
FAILED_BY_CLIENT = "FAILED BY CLIENT"
INFORMATIONAL = "INFORMATIONAL"
UNIMPLEMENTED = "UNIMPLEMENTED"

#: ``("message", payload, binary)``, ``("pong", payload)`` or ``("timeout", tag)``.
Event = tuple[Any, ...]


@dataclass(frozen=True)
class ExpectedClose:
    """How a case expects the connection to end."""

    #: True when the fuzzer is to start the closing handshake (the testee behaved), False when
    #: the testee must fail the connection itself.
    closed_by_me: bool
    #: Close codes the testee may send (the first is the one we close with).
    codes: tuple[int, ...]
    #: The closing handshake must complete and the server must close TCP.
    require_clean: bool
    #: Closing by the wrong endpoint also fails ``behavior`` (6.x: invalid UTF-8 went unseen).
    wrong_endpoint_fatal: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"closedByMe": self.closed_by_me, "closeCode": list(self.codes),
                               "requireClean": self.require_clean}
        if self.wrong_endpoint_fatal:
            out["closedByWrongEndpointIsFatal"] = True
        return out


#: The testee behaved: we close with 1000, cleanly.
NORMAL = ExpectedClose(True, (1000,), True)


def failure(*codes: int, fatal: bool = False) -> ExpectedClose:
    """The testee must fail the connection with one of ``codes`` (or just drop TCP)."""
    return ExpectedClose(False, codes, False, fatal)


def message(payload: bytes, binary: bool = False) -> Event:
    """The event of a data message arriving."""
    return ("message", payload, binary)


def pong(payload: bytes = b"") -> Event:
    return ("pong", payload)


def timeout(tag: str) -> Event:
    """A case's own mark: "the wait named ``tag`` ended with the connection still open"."""
    return ("timeout", tag)


@dataclass(frozen=True)
class CloseFacts:
    """What the endpoint observed about how the connection ended."""

    connection_was_open: bool
    closed_by_me: bool
    was_clean: bool
    remote_close_code: int | None
    dropped_by_me: bool
    is_server: bool


def judge_behavior(expected: dict[str, list[Event]], received: Sequence[Event],
                   default: str) -> tuple[str, bool]:
    """The first expected outcome equal to ``received`` (``default`` if none), and whether one
    matched."""
    for behavior, events in expected.items():
        if list(received) == events:
            return behavior, True
    return default, False


def judge_close(expected: ExpectedClose, facts: CloseFacts) -> tuple[str, str]:
    """``behaviorClose`` and its explanation (rules in the module docstring)."""
    if not facts.connection_was_open:
        return FAILED, "The WebSocket opening handshake was never completed!"
    if expected.closed_by_me != facts.closed_by_me:
        return FAILED, "The connection was failed by the wrong endpoint"
    if expected.require_clean and not facts.was_clean:
        return UNCLEAN, "The spec requires the connection to be failed cleanly here"
    if facts.remote_close_code is not None and facts.remote_close_code not in expected.codes:
        codes = ",".join(map(str, expected.codes))
        return WRONG_CODE, f"The close code should have been {codes} or empty"
    if not facts.is_server and facts.dropped_by_me:
        return FAILED_BY_CLIENT, "It is preferred that the server close the TCP connection"
    return OK, "Connection was properly closed"


class Case:
    """One test case run on one connection. Subclasses set the class attributes and
    :meth:`on_open` (what to send); some override :meth:`on_message` or :meth:`judge`."""

    #: ``"1.1.1"``: set by the catalogue.
    id: ClassVar[str] = ""
    description: ClassVar[str] = ""
    expectation: ClassVar[str] = ""
    #: Reports show the case's duration (9.x, 12.x, 13.x).
    report_time: ClassVar[bool] = False
    report_compression_ratio: ClassVar[bool] = False
    #: Do not start the closing handshake when the expected events arrived (the case sends
    #: its own close frames).
    suppress_close: ClassVar[bool] = False
    #: permessage-deflate offers this case makes as a client (12.x, 13.x), else none.
    client_offers: ClassVar[tuple[DeflateOffer, ...]] = ()

    def __init__(self, peer: Endpoint) -> None:
        self.peer = peer
        self.received: list[Event] = []
        self.expected: dict[str, list[Event]] = {}
        self.expected_close = NORMAL
        self.behavior = FAILED
        self.behavior_close = FAILED
        self.result = "Actual events differ from any expected."
        self.result_close = "TCP connection was dropped without close handshake"
        self.traffic_stats: dict[str, Any] | None = None

    def expect(self, outcomes: dict[str, list[Event]], close: ExpectedClose = NORMAL) -> None:
        """Set the expected outcomes (verdict -> events) and how the connection should end."""
        self.expected, self.expected_close = outcomes, close

    # What permessage-deflate answer this case gives as a server: None declines every offer.
    def server_accept(self, offers: list[DeflateOffer]) -> DeflateAccept | None:
        return None

    def accept_response(self, header: str) -> Deflate | None:
        """As a client: the extension a server answered with; only cases that offered accept."""
        return None

    # --- events from the endpoint ----------------------------------------------------------

    def on_open(self) -> None:
        pass

    def on_message(self, payload: bytes, binary: bool) -> None:
        self.received.append(("message", payload, binary))
        self.finish_when_done()

    def on_pong(self, payload: bytes) -> None:
        self.received.append(("pong", payload))
        self.finish_when_done()

    def on_close(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        pass

    def on_connection_lost(self) -> None:
        self.judge()

    def finish_when_done(self) -> None:
        """Once what arrived matches every expected outcome, start the closing handshake."""
        if any(self.received != events for events in self.expected.values()):
            return
        if self.expected_close.closed_by_me and not self.suppress_close:
            self.peer.send_close(self.expected_close.codes[0])

    # --- the verdict -----------------------------------------------------------------------

    def close_facts(self) -> CloseFacts:
        p = self.peer
        return CloseFacts(p.connection_was_open, p.closed_by_me, p.was_clean,
                          p.remote_close_code, p.dropped_by_me, p.is_server)

    def judge(self) -> None:
        """Set ``behavior`` and ``behavior_close`` (and their explanations)."""
        behavior, matched = judge_behavior(self.expected, self.received, self.behavior)
        if matched:
            self.behavior, self.result = behavior, "Actual events match at least one expected."
        facts = self.close_facts()
        self.behavior_close, self.result_close = judge_close(self.expected_close, facts)
        if (facts.connection_was_open and self.expected_close.wrong_endpoint_fatal
                and self.expected_close.closed_by_me != facts.closed_by_me):
            self.behavior = FAILED


class WrongCodeFails(Case):
    """7.x: a wrong close code from the testee fails the case itself."""

    def judge(self) -> None:
        super().judge()
        if self.behavior_close == WRONG_CODE:
            self.behavior, self.result = FAILED, self.result_close


class Informational(Case):
    """Cases whose outcome the RFC leaves open: always INFORMATIONAL, both verdicts."""

    def judge(self) -> None:
        super().judge()
        self.behavior = self.behavior_close = INFORMATIONAL
        self.result = "Actual events are undefined by the spec."
