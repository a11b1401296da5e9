"""rawws.chat.hub: output commit. Actions after a Hold wait for its ticket, in order."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest

from rawws.chat.hub import ChatHub
from rawws.chat.router import Action, Close, Endpoint, Hold, Route, Router, Send, Session, route_for
from rawws.chat.sqlite_db import Batch
from rawws.chat.tickets import Done, StoreUnavailable


class Recorder(ChatHub):
    """A hub whose deliveries and closes are written down instead of sent."""

    def __init__(self) -> None:
        super().__init__(Router())
        self.log: list[str] = []

    def deliver(self, targets: Sequence[Session], text: str, droppable: bool = False) -> None:
        self.log.append(text)

    def close_peer(self, peer: Any, code: int, reason: str) -> None:
        self.log.append(f"close {code}")


def session() -> Session:
    return Router().open(object(), route_for("/ws") or Route(Endpoint.GENERAL))[0]


def send(text: str) -> Send:
    return Send([], text)


def hold(ticket: Any, *actions: Action) -> Hold:
    return Hold(ticket, lambda: list(actions))


def test_without_holds_everything_happens_at_once() -> None:
    hub = Recorder()
    hub.execute([send("a"), send("b")])
    assert hub.log == ["a", "b"]
    assert hub.held_actions == 0


def test_a_done_ticket_releases_inline() -> None:
    hub = Recorder()
    hub.execute([send("a"), hold(Done(None), send("b")), send("c")])
    assert hub.log == ["a", "b", "c"]


def test_everything_after_a_pending_hold_waits_in_order() -> None:
    hub = Recorder()
    ticket = Batch()
    hub.execute([send("before"), hold(ticket, send("ack")), send("after")])
    hub.execute([send("next message")])  # a later message, e.g. a join's history reply
    hub.when_released(lambda: hub.log.append("http answer"))
    assert hub.log == ["before"]
    assert hub.held_actions == 4
    ticket._resolve(None)
    assert hub.log == ["before", "ack", "after", "next message", "http answer"]
    assert hub.held_actions == 0
    hub.execute([send("live")])
    assert hub.log[-1] == "live"


def test_holds_in_a_row_and_holds_inside_holds() -> None:
    hub = Recorder()
    first, second, inner = Batch(), Batch(), Batch()
    hub.execute([hold(first, send("1"), hold(inner, send("1b")), send("1c")),
                 hold(second, send("2")), Close(session(), 1000, "")])
    first._resolve(None)
    assert hub.log == ["1"]  # 1b waits for inner, and everything after it
    second._resolve(None)
    assert hub.log == ["1"]
    inner._resolve(None)
    assert hub.log == ["1", "1b", "1c", "2", "close 1000"]


def test_a_failed_ticket_still_releases_what_follows() -> None:
    hub = Recorder()
    ticket = Batch()

    def then() -> list[Action]:
        try:
            ticket.result()
        except StoreUnavailable as exc:
            return [send(f"error: {exc}")]
        return [send("ack")]

    hub.execute([Hold(ticket, then), send("after")])
    ticket._resolve(StoreUnavailable("disk full"))
    assert hub.log == ["error: disk full", "after"]


def test_a_broken_continuation_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    hub = Recorder()
    ticket = Batch()

    def then() -> list[Action]:
        raise RuntimeError("bug")

    hub.execute([Hold(ticket, then), send("after")])
    with caplog.at_level(logging.ERROR, "rawws.chat"):
        ticket._resolve(None)
    assert hub.log == ["after"]
    assert "building the actions after a store write failed" in caplog.text
