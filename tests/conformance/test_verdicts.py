"""The verdict rules (rawws.conformance.case) on synthetic traces, and the case catalogue."""

from __future__ import annotations

from typing import Any

import pytest

from rawws.conformance import cases
from rawws.conformance.case import (
    FAILED,
    FAILED_BY_CLIENT,
    INFORMATIONAL,
    NON_STRICT,
    NORMAL,
    OK,
    UNCLEAN,
    WRONG_CODE,
    Case,
    CloseFacts,
    ExpectedClose,
    failure,
    judge_behavior,
    judge_close,
    message,
    pong,
    timeout,
)


def facts(**changes: Any) -> CloseFacts:
    values: dict[str, Any] = dict(connection_was_open=True, closed_by_me=True, was_clean=True,
                                  remote_close_code=1000, dropped_by_me=False, is_server=False)
    values.update(changes)
    return CloseFacts(**values)


# --- behaviour -------------------------------------------------------------------------------


def test_the_first_matching_outcome_names_the_verdict() -> None:
    expected = {OK: [message(b"hi")], NON_STRICT: []}
    assert judge_behavior(expected, [message(b"hi")], FAILED) == (OK, True)
    assert judge_behavior(expected, [], FAILED) == (NON_STRICT, True)


def test_events_are_compared_in_order_and_byte_for_byte() -> None:
    expected = {OK: [pong(b"a"), message(b"b")]}
    assert judge_behavior(expected, [message(b"b"), pong(b"a")], FAILED) == (FAILED, False)
    assert judge_behavior(expected, [pong(b"a"), message(b"b", binary=True)], FAILED)[0] == FAILED
    assert judge_behavior(expected, [pong(b"a"), message(b"b"), pong(b"")], FAILED)[0] == FAILED


def test_the_default_stands_when_nothing_matches() -> None:
    # 9.x cases set their verdict themselves and expect nothing.
    assert judge_behavior({}, [message(b"x")], OK) == (OK, False)


# --- closing behaviour -----------------------------------------------------------------------


def test_a_clean_normal_close_is_ok() -> None:
    assert judge_close(NORMAL, facts())[0] == OK


def test_a_connection_that_never_opened_fails() -> None:
    verdict, why = judge_close(NORMAL, facts(connection_was_open=False))
    assert verdict == FAILED and "never completed" in why


def test_the_wrong_endpoint_closing_first_fails() -> None:
    # The testee should have failed the connection (a protocol error) but we had to close it.
    assert judge_close(failure(1002), facts(closed_by_me=True))[0] == FAILED
    # The testee closed when we should have: it did not echo, for instance.
    assert judge_close(NORMAL, facts(closed_by_me=False))[0] == FAILED


def test_unclean_only_counts_where_the_case_requires_clean() -> None:
    assert judge_close(NORMAL, facts(was_clean=False))[0] == UNCLEAN
    lax = ExpectedClose(True, (1002,), False)
    assert judge_close(lax, facts(was_clean=False, remote_close_code=None))[0] == OK


def test_a_code_outside_the_allowed_ones_is_wrong_but_no_code_is_fine() -> None:
    assert judge_close(NORMAL, facts(remote_close_code=1002))[0] == WRONG_CODE
    assert judge_close(NORMAL, facts(remote_close_code=None))[0] == OK
    assert judge_close(failure(1002), facts(closed_by_me=False, remote_close_code=1002,
                                            was_clean=False))[0] == OK


def test_a_client_that_had_to_drop_tcp_blames_the_server() -> None:
    # RFC 6455 §7.1.1: the server closes TCP first. Only a client can complain of it.
    assert judge_close(NORMAL, facts(dropped_by_me=True))[0] == FAILED_BY_CLIENT
    assert judge_close(NORMAL, facts(dropped_by_me=True, is_server=True))[0] == OK


def test_the_rules_apply_in_order() -> None:
    # Wrong endpoint beats unclean, which beats wrong code, which beats failed by client.
    every_fault = facts(closed_by_me=False, was_clean=False, remote_close_code=1011,
                        dropped_by_me=True)
    assert judge_close(NORMAL, every_fault)[0] == FAILED
    assert judge_close(NORMAL, facts(was_clean=False, remote_close_code=1011))[0] == UNCLEAN
    assert judge_close(NORMAL, facts(remote_close_code=1011, dropped_by_me=True))[0] \
        == WRONG_CODE


# --- whole cases on a stand-in endpoint ------------------------------------------------------


class FakePeer:
    """What a case reads from its endpoint, set by hand."""

    def __init__(self, **close: Any) -> None:
        self.connection_was_open = True
        self.closed_by_me = True
        self.was_clean = True
        self.remote_close_code: int | None = 1000
        self.dropped_by_me = False
        self.is_server = False
        self.tx_frame_stats: dict[int, int] = {}
        self.auto_fragment_size = 0
        self.sent: list[tuple[Any, ...]] = []
        for key, value in close.items():
            setattr(self, key, value)

    def send_frame(self, *args: Any, **kwargs: Any) -> None:
        self.sent.append(("frame", args, kwargs))

    def send_close(self, code: int | None = None, reason: str | None = None) -> None:
        self.sent.append(("close", code))

    def send_close_frame(self, code: int | None = None, reason: bytes | None = None) -> None:
        self.sent.append(("close_frame", code, reason))

    def send_message(self, *args: Any, **kwargs: Any) -> None:
        self.sent.append(("message", args, kwargs))

    def kill_after(self, delay: float) -> None:
        pass

    close_after = kill_after

    def continue_later(self, *args: Any) -> None:
        pass


def run(case_id: str, peer: FakePeer, received: list[tuple[Any, ...]]) -> Case:
    case = cases.get(case_id)(peer)  # type: ignore[arg-type]
    case.on_open()
    for event in received:
        if event[0] == "message":
            case.on_message(event[1], event[2])
        elif event[0] == "pong":
            case.on_pong(event[1])
        else:
            case.received.append(event)
    case.on_connection_lost()
    return case


def test_an_echo_closes_the_case_itself() -> None:
    peer = FakePeer()
    case = run("1.1.2", peer, [message(b"*" * 125)])
    assert peer.sent[-1] == ("close", 1000)  # the expected events arrived: we close
    assert (case.behavior, case.behavior_close) == (OK, OK)


def test_a_valid_message_then_a_protocol_error() -> None:
    # 3.2: echo, then 1002 from the testee, is OK; failing before the echo is NON-STRICT.
    failed_first = dict(closed_by_me=False, remote_close_code=1002, was_clean=True)
    assert run("3.2", FakePeer(**failed_first), [message(b"Hello, world!")]).behavior == OK
    assert run("3.2", FakePeer(**failed_first), []).behavior == NON_STRICT
    # A testee that never noticed the bad frame: we had to close, so closing fails.
    lax = run("3.2", FakePeer(), [message(b"Hello, world!"), message(b"Hello, world!"),
                                  pong(b"")])
    assert (lax.behavior, lax.behavior_close) == (FAILED, FAILED)


def test_invalid_utf8_unnoticed_fails_the_case_itself() -> None:
    # 6.x: the wrong endpoint closing means the invalid text went unseen.
    case = run("6.3.1", FakePeer(closed_by_me=True), [])
    assert (case.behavior, case.behavior_close) == (FAILED, FAILED)
    noticed = run("6.3.1", FakePeer(closed_by_me=False, remote_close_code=1007), [])
    assert (noticed.behavior, noticed.behavior_close) == (OK, OK)


def test_fail_fast_marks() -> None:
    fast = FakePeer(closed_by_me=False, remote_close_code=1007)
    assert run("6.4.1", fast, [timeout("A")]).behavior == OK
    slow = FakePeer(closed_by_me=False, remote_close_code=1007)
    assert run("6.4.1", slow, [timeout("A"), timeout("B")]).behavior == NON_STRICT


def test_close_cases_turn_a_wrong_code_into_a_failure() -> None:
    # 7.9.1: close code 0 must be answered with 1002 (or a dropped connection), not 1000.
    case = run("7.9.1", FakePeer(remote_close_code=1000, was_clean=True), [])
    assert (case.behavior, case.behavior_close) == (FAILED, WRONG_CODE)
    good = run("7.9.1", FakePeer(remote_close_code=1002), [])
    assert (good.behavior, good.behavior_close) == (OK, OK)


def test_informational_cases_always_inform() -> None:
    for peer in (FakePeer(), FakePeer(remote_close_code=1002), FakePeer(closed_by_me=False)):
        case = run("7.13.1", peer, [])
        assert (case.behavior, case.behavior_close) == (INFORMATIONAL, INFORMATIONAL)


def test_message_then_close_reports_what_happened_but_only_informs() -> None:
    echoed = run("7.1.6", FakePeer(), [message(b"Hello World!")])
    assert echoed.behavior == INFORMATIONAL
    assert echoed.result == "Text message was processed before close."
    dropped = run("7.1.6", FakePeer(), [])
    assert dropped.result == "Close was processed before text message could be returned."


def test_performance_cases_judge_the_echo_they_get() -> None:
    case = run("9.1.1", FakePeer(), [message(b"x" * 64 * 2**10)])
    assert case.behavior == OK
    short = run("9.1.1", FakePeer(), [message(b"x" * 10)])
    assert short.behavior == FAILED and "but got 10" in short.result
    silent = run("9.1.1", FakePeer(), [])
    assert silent.behavior == FAILED and "within 10 seconds" in silent.result


def test_compression_cases_without_deflate_are_unimplemented() -> None:
    peer = FakePeer()
    peer.pmce = None  # type: ignore[attr-defined]
    peer.enable_wirelog = lambda enable: None  # type: ignore[attr-defined]
    case = run("12.1.1", peer, [])
    assert case.behavior == "UNIMPLEMENTED"
    assert peer.sent == [("close", 1000)]


# --- the catalogue ---------------------------------------------------------------------------


def test_the_catalogue_has_autobahns_517_cases() -> None:
    ids = cases.all_ids()
    assert len(ids) == 517 and ids[0] == "1.1.1" and ids[-1] == "13.7.18"
    assert [len(cases.select([f"{n}.*"])) for n in (1, 2, 3, 4, 5, 6, 7, 9, 10, 12, 13)] == \
        [16, 11, 7, 10, 20, 145, 37, 54, 1, 90, 126]


@pytest.mark.parametrize(("patterns", "exclude", "expected"), [
    (["1.1.*"], [], [f"1.1.{i}" for i in range(1, 9)]),
    (["1.*"], ["1.2.*", "1.1.1"], [f"1.1.{i}" for i in range(2, 9)]),
    (["2.1"], [], ["2.1"]),                          # no star: exactly that case
    (["12.1.1*"], [], ["12.1.1", *(f"12.1.{i}" for i in range(10, 19))]),
    (["9.1.*", "2.*", "2.1"], [], [*(f"2.{i}" for i in range(1, 12)),
                                   *(f"9.1.{i}" for i in range(1, 7))]),  # sorted, no repeats
])
def test_case_patterns_work_like_wstests(patterns: list[str], exclude: list[str],
                                         expected: list[str]) -> None:
    assert cases.select(patterns, exclude) == expected


def test_a_pattern_matches_from_the_start_of_the_id() -> None:
    assert "10.1.1" not in cases.select(["1.*"])
    assert cases.select(["*"]) == cases.all_ids()
    with pytest.raises(KeyError):
        cases.select(["99.1"])


def test_agent_specific_exclusions() -> None:
    rules = {"raw*": ["9.*", "12.1.1"]}
    assert cases.agent_excluded(rules, "rawws", "9.1.1")
    assert cases.agent_excluded(rules, "rawws", "12.1.1")
    assert not cases.agent_excluded(rules, "rawws", "12.1.10")  # whole-id match
    assert not cases.agent_excluded(rules, "websockets", "9.1.1")


def test_the_utf8_stress_cases_agree_with_python_on_validity() -> None:
    stress = [cases.get(i) for i in cases.select(["6.*"]) if hasattr(cases.get(i), "valid")]
    assert len(stress) == 132
    for cls in stress:
        payload: bytes = cls.payload  # type: ignore[attr-defined]
        try:
            payload.decode("utf-8")
            valid = True
        except UnicodeDecodeError:
            valid = False
        assert cls.valid is valid, cls.id  # type: ignore[attr-defined]
