"""The reports are in wstest's layout: index.json, one JSON (same keys) and HTML file per case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rawws
from rawws.__main__ import EchoListener
from rawws.conformance.report import case_filename
from rawws.conformance.runner import Results, run_fuzzing_client

#: The keys of a wstest case report (autobahntestsuite 25.10.1, fuzzing.py's caseResult).
WSTEST_CASE_KEYS = {
    "agent", "behavior", "behaviorClose", "case", "closedByMe", "createStats", "createWirelog",
    "description", "droppedByMe", "duration", "expectation", "expected", "expectedClose",
    "failedByMe", "httpRequest", "httpResponse", "id", "isServer", "localCloseCode",
    "localCloseReason", "received", "remoteCloseCode", "remoteCloseReason",
    "reportCompressionRatio", "reportTime", "result", "resultClose", "rxFrameStats",
    "rxOctetStats", "started", "trafficStats", "txFrameStats", "txOctetStats", "wasClean",
    "wasCloseHandshakeTimeout", "wasNotCleanReason", "wasOpenHandshakeTimeout",
    "wasServerConnectionDropTimeout", "wirelog",
}


@pytest.mark.parametrize(("agent", "name"), [
    ("rawws", "rawws_case_1_1_1.json"),
    ("AutobahnPython/0.6.0", "autobahnpython_0_6_0_case_1_1_1.json"),
    (" My Server! ", "my_server_case_1_1_1.json"),
])
def test_report_file_names_are_made_like_wstests(agent: str, name: str) -> None:
    assert case_filename(agent, "1.1.1", "json") == name


async def test_reports_have_wstests_layout(tmp_path: Path) -> None:
    async with rawws.serve(EchoListener(), "127.0.0.1", 0, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        results = Results(tmp_path)
        await run_fuzzing_client(f"ws://127.0.0.1:{port}", ["1.1.1", "2.5", "7.5.1"], results,
                                 agent="rawws")
    results.write()
    index = json.loads((tmp_path / "index.json").read_text())
    assert list(index) == ["rawws"] and sorted(index["rawws"]) == ["1.1.1", "2.5", "7.5.1"]
    entry = index["rawws"]["2.5"]
    assert set(entry) == {"behavior", "behaviorClose", "duration", "remoteCloseCode",
                          "reportfile"}
    assert entry["reportfile"] == "rawws_case_2_5.json"
    assert (entry["behavior"], entry["behaviorClose"], entry["remoteCloseCode"]) == \
        ("OK", "OK", 1002)
    report = json.loads((tmp_path / entry["reportfile"]).read_text())
    assert set(report) >= WSTEST_CASE_KEYS
    assert report["expectedClose"] == {"closedByMe": False, "closeCode": [1002],
                                       "requireClean": False}
    assert report["received"] == [] and report["expected"] == {"OK": []}
    assert report["isServer"] is False and report["closedByMe"] is False
    kinds = {row[0] for row in report["wirelog"]}
    assert {"TO", "RO", "TF", "RF", "KL"} <= kinds
    # The invalid close reason we sent is reported in hex (it is not text).
    reason = json.loads((tmp_path / "rawws_case_7_5_1.json").read_text())["localCloseReason"]
    assert reason == "cebae1bdb9cf83cebcceb5eda080656469746564"
    page = (tmp_path / "index.html").read_text()
    assert "rawws_case_2_5.html" in page and "Close handling" in page
    assert "Wire log" in (tmp_path / "rawws_case_2_5.html").read_text()
