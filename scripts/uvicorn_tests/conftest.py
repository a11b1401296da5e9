"""rawws' plugin for uvicorn's own WebSocket tests (scripts/uvicorn_tests.sh copies it to
``tests/protocols/conftest.py`` of the downloaded uvicorn source distribution; nothing of
uvicorn's is kept in the rawws repository).

It does three things and nothing else:

1. Adds ``rawws.asgi:WebSocketProtocol`` (id ``rawws``) to the ``ws_protocol_cls``
   parametrisation, beside uvicorn's ``wsproto`` and ``websockets-sansio`` classes.
2. Marks the tests whose expectation is a documented difference (docs/asgi.md, "Where rawws
   differs") as strict xfails for the rawws class only: uvicorn drops TCP where rawws sends the
   RFC's close code. Strict: if one of them starts passing, the run fails and the list is wrong.
3. Where a test checks ``isinstance(protocol, (WSProtocol, WebSocketsSansIOProtocol))`` before
   reading the protocol's attributes (keepalive tests), widens that check to the rawws class
   for the rawws runs (the attributes it then reads, ``ping_sent_at``, ``ping_timer``,
   ``transport``, are the same).

At the end it compares the classes test by test: every test that passes with ``wsproto`` must
pass with ``rawws`` (or be one of the documented differences); anything else fails the run.
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from typing import Any

import pytest

from uvicorn.importer import import_from_string

RAWWS = "rawws.asgi:WebSocketProtocol"
WSPROTO = "uvicorn.protocols.websockets.wsproto_impl:WSProtocol"
SANSIO = "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol"
IDS = {RAWWS: "rawws", WSPROTO: "wsproto", SANSIO: "websockets-sansio"}

#: Tests whose expectation rawws does not meet on purpose, and why (docs/asgi.md).
DIFFERENCES = {
    "test_duplicate_handshake": (
        "a second websocket.accept is an application error after the handshake: rawws closes "
        "with 1011 (uvicorn drops TCP: the client sees 1006)"),
    "test_asgi_return_value": (
        "an application that returns a value after accepting is an error: rawws closes with "
        "1011 (uvicorn drops TCP: the client sees 1006)"),
    "test_close_transport_on_asgi_return": (
        "an application that returns without closing gets a normal closure: rawws closes with "
        "1000 (uvicorn drops TCP: the client sees 1006)"),
}


@pytest.fixture(
    params=[
        pytest.param(WSPROTO, id="wsproto", marks=pytest.mark.skipif(
            not importlib.util.find_spec("wsproto"), reason="wsproto not installed.")),
        pytest.param(SANSIO, id="websockets-sansio"),
        pytest.param(RAWWS, id="rawws"),
    ]
)
def ws_protocol_cls(request: pytest.FixtureRequest) -> Any:
    return import_from_string(request.param)


def _ws_param(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    return callspec.params.get("ws_protocol_cls")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        name = getattr(item, "originalname", item.name)
        if _ws_param(item) == RAWWS and name in DIFFERENCES:
            item.add_marker(pytest.mark.xfail(reason=DIFFERENCES[name], strict=True))


class _AnyWebSocketProtocol(type):
    """A stand-in for ``WSProtocol`` in ``isinstance`` checks that also accepts rawws'."""

    def __instancecheck__(cls, instance: object) -> bool:
        from rawws.asgi import WebSocketProtocol

        return isinstance(instance, (cls.wrapped, WebSocketProtocol))  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _widen_isinstance_for_rawws(request: pytest.FixtureRequest,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    if _ws_param(request.node) != RAWWS:
        return
    module = request.module
    wrapped = getattr(module, "_WSProtocol", None)
    if wrapped is not None:
        monkeypatch.setattr(module, "_WSProtocol",
                            _AnyWebSocketProtocol("WSProtocol", (), {"wrapped": wrapped}))


_outcomes: dict[str, dict[tuple[str, str], str]] = defaultdict(dict)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    item_params = _report_params.get(report.nodeid)
    if item_params is None:
        return
    ws, key = item_params
    outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
    _outcomes[ws][key] = outcome


_report_params: dict[str, tuple[str, tuple[str, str]]] = {}


def pytest_itemcollected(item: pytest.Item) -> None:
    ws = _ws_param(item)
    if ws is None:
        return
    callspec = item.callspec  # type: ignore[attr-defined]
    others = "-".join(f"{k}={v!r}" for k, v in sorted(callspec.params.items())
                      if k != "ws_protocol_cls")
    _report_params[item.nodeid] = (IDS[ws], (getattr(item, "originalname", item.name), others))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    write = terminalreporter.write_line
    write("")
    write("rawws: outcomes by WebSocket protocol class")
    for ws in ("wsproto", "websockets-sansio", "rawws"):
        counts: dict[str, int] = defaultdict(int)
        for outcome in _outcomes[ws].values():
            counts[outcome] += 1
        write(f"  {ws:18} " + ", ".join(f"{n} {o}" for o, n in sorted(counts.items())))
    missing = sorted(
        f"{name}[{others}]" for (name, others), outcome in _outcomes["wsproto"].items()
        if outcome == "passed" and _outcomes["rawws"].get((name, others)) not in (
            "passed", "xfailed")
    )
    documented = sorted(f"{name}[{others}]" for (name, others), outcome
                        in _outcomes["rawws"].items() if outcome == "xfailed")
    write(f"  documented differences (strict xfail for rawws): {len(documented)}")
    if missing:
        write(f"  FAIL: {len(missing)} test(s) pass with wsproto but not with rawws:")
        for test in missing:
            write(f"    {test}")
        terminalreporter._session.exitstatus = 1
    else:
        write("  every test that passes with wsproto passes with rawws "
              "(documented differences aside)")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    missing = [
        key for key, outcome in _outcomes["wsproto"].items()
        if outcome == "passed" and _outcomes["rawws"].get(key) not in ("passed", "xfailed")
    ]
    if missing and session.exitstatus == 0:
        session.exitstatus = 1
