"""Run the Autobahn testsuite (wstest) against rawws or a peer, summarize index.json, gate on it.

    .venv/bin/python conformance/run.py                       # both modes against rawws
    .venv/bin/python conformance/run.py --mode server --cases '1.*,6.4.*'
    .venv/bin/python conformance/run.py --mode server --peer websockets,aiohttp
    .venv/bin/python conformance/run.py --mode asgi --cases '6.*'   # through uvicorn
    .venv/bin/python conformance/run.py --summarize conformance/reports/server-rawws --details

Modes:
  server  `wstest -m fuzzingclient` tests a server: `python -m rawws echo --max-size 0` (or
          conformance/peers/<peer>_echo.py), started on a free port of 127.0.0.1.
  client  `wstest -m fuzzingserver` runs on a free port; conformance/client.py drives the client.
  asgi    the server cases against rawws under uvicorn: conformance/peers/asgi_echo.py, a bare
          ASGI echo app with ``--ws rawws.asgi:WebSocketProtocol`` (agent rawws-asgi).
  both    server and client; all: server, client and asgi (make conformance).

Each mode/agent writes to conformance/reports/<mode>-<agent>/ (index.json, one JSON + HTML report
per case), next to <mode>-<agent>.spec.json (the spec actually used, generated from
fuzzingclient.json / fuzzingserver.json) and the logs of wstest, the testee and the driver.

Gate (exit status 1): any case whose behavior is not OK or INFORMATIONAL (FAILED, NON-STRICT, ...),
or whose closing behavior is not OK or INFORMATIONAL; UNIMPLEMENTED is tolerated unless
--require-deflate is given (the Makefile passes it once rawws.sansio.deflate exists).
Exit status 2: the harness itself could not do its job (wstest missing, a process did not start,
a run exceeded --timeout, or cases are missing from index.json).
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT / "conformance"
REPORTS = CONFORMANCE / "reports"
TOTAL_CASES = 517  # autobahntestsuite 25.10.1, cases ["*"]
AGENTS = ("rawws", "websockets", "aiohttp")
ASGI_AGENT = "rawws-asgi"  # rawws.asgi.WebSocketProtocol under uvicorn, server cases only
BEHAVIORS = ("OK", "NON-STRICT", "FAILED", "INFORMATIONAL", "UNIMPLEMENTED")
ACCEPTED = {"OK", "INFORMATIONAL"}

EXIT_OK, EXIT_GATE, EXIT_HARNESS = 0, 1, 2


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split("."))


def compact(case_ids: list[str]) -> str:
    """'12.1.1 12.1.2 12.1.3 12.2.1' -> '12.1.1-12.1.3 12.2.1' (runs of consecutive last parts)."""
    out: list[str] = []
    ids = sorted(case_ids, key=case_key)
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids):
            a, b = case_key(ids[j]), case_key(ids[j + 1])
            if a[:-1] != b[:-1] or b[-1] != a[-1] + 1:
                break
            j += 1
        out.append(ids[i] if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return " ".join(out)


# --- summary -------------------------------------------------------------------------------------


@dataclass
class Summary:
    mode: str
    agent: str
    outdir: Path
    behaviors: dict[str, list[str]] = field(default_factory=dict)  # behavior -> case ids
    close_not_ok: dict[str, list[str]] = field(default_factory=dict)  # behaviorClose -> case ids
    nine_ms: int = 0
    nine_cases: int = 0
    nine_groups: dict[str, int] = field(default_factory=dict)  # "9.1" -> ms
    wall_by_group: dict[str, float] = field(default_factory=dict)  # "9" -> s, from wstest's output
    expected: int | None = None
    wall_s: float | None = None
    harness_errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.behaviors.values())

    def gate_failures(self, require_deflate: bool) -> list[str]:
        accepted = ACCEPTED if require_deflate else ACCEPTED | {"UNIMPLEMENTED"}
        bad = {b: ids for b, ids in self.behaviors.items() if b not in accepted}
        failures = [f"{b}: {compact(ids)}" for b, ids in bad.items()]
        failures += [f"closing {b}: {compact(ids)}" for b, ids in self.close_not_ok.items()]
        return failures

    def to_json(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "agent": self.agent,
            "total": self.total,
            "expected": self.expected,
            "counts": {b: len(ids) for b, ids in self.behaviors.items()},
            "not_ok": {b: ids for b, ids in self.behaviors.items() if b != "OK"},
            "closing_not_ok": self.close_not_ok,
            "duration_9x_s": round(self.nine_ms / 1000, 1),
            "duration_9x_groups_s": {g: round(ms / 1000, 2) for g, ms in self.nine_groups.items()},
            "wall_s": None if self.wall_s is None else round(self.wall_s, 1),
            "wall_by_group_s": self.wall_by_group,
            "harness_errors": self.harness_errors,
        }


def summarize(mode: str, outdir: Path, agent: str | None = None) -> list[Summary]:
    """One Summary per agent found in outdir/index.json (or just `agent`)."""
    index_path = outdir / "index.json"
    if not index_path.exists():
        summary = Summary(mode, agent or "?", outdir)
        summary.harness_errors.append(f"{index_path.relative_to(ROOT)} was not written")
        return [summary]
    index = json.loads(index_path.read_text())
    summaries = []
    for name in [agent] if agent else sorted(index):
        summary = Summary(mode, name, outdir)
        saved = outdir.parent / f"{mode}-{name}.summary.json"  # written by the run, if any
        if saved.exists():
            summary.wall_by_group = json.loads(saved.read_text()).get("wall_by_group_s", {})
        cases = index.get(name, {})
        if not cases:
            summary.harness_errors.append(f"no results for agent {name} in {index_path}")
        for case_id in sorted(cases, key=case_key):
            result = cases[case_id]
            summary.behaviors.setdefault(result["behavior"], []).append(case_id)
            close = result["behaviorClose"]
            if close not in ACCEPTED and result["behavior"] != "UNIMPLEMENTED":
                summary.close_not_ok.setdefault(close, []).append(case_id)
            if case_id.startswith("9."):
                summary.nine_ms += result["duration"]
                summary.nine_cases += 1
                group = ".".join(case_id.split(".")[:2])
                summary.nine_groups[group] = summary.nine_groups.get(group, 0) + result["duration"]
        summaries.append(summary)
    return summaries


def print_summary(summary: Summary, require_deflate: bool) -> None:
    where = summary.outdir.relative_to(ROOT)
    wall = "" if summary.wall_s is None else f", run took {summary.wall_s:.0f} s"
    print(f"\n{summary.mode} mode, agent {summary.agent}: {summary.total} cases ({where}){wall}")
    for behavior in [*BEHAVIORS, *sorted(set(summary.behaviors) - set(BEHAVIORS))]:
        ids = summary.behaviors.get(behavior, [])
        listing = "" if behavior == "OK" else compact(ids)
        print(f"  {behavior:<14}{len(ids):>4}  {listing}".rstrip())
    for behavior, ids in sorted(summary.close_not_ok.items()):
        print(f"  closing behavior {behavior}: {compact(ids)}")
    if summary.nine_cases:
        print(f"  9.x: {summary.nine_cases} cases, total duration {summary.nine_ms / 1000:.1f} s")
        groups = ", ".join(f"{g} {ms / 1000:.1f}" for g, ms in summary.nine_groups.items())
        print(f"       by group (s): {groups}")
    if "9" in summary.wall_by_group:
        print(f"  9.x wall clock (handshakes, gaps included): {summary.wall_by_group['9']:.1f} s")
    for error in summary.harness_errors:
        print(f"  HARNESS ERROR: {error}")
    failures = summary.gate_failures(require_deflate)
    verdict = "FAILED" if failures or summary.harness_errors else "passed"
    policy = "deflate required" if require_deflate else "UNIMPLEMENTED tolerated"
    print(f"  gate ({policy}): {verdict}")


def shorten(value: object, limit: int = 300) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + f" ... ({len(text)} chars)"


def print_details(summary: Summary) -> None:
    """What wstest says about every case that is not OK, from the per-case JSON reports."""
    index = json.loads((summary.outdir / "index.json").read_text()).get(summary.agent, {})
    for case_id in sorted(index, key=case_key):
        entry = index[case_id]
        if entry["behavior"] == "OK" and entry["behaviorClose"] in ACCEPTED:
            continue
        report = json.loads((summary.outdir / entry["reportfile"]).read_text())
        print(f"\n--- {case_id}: {report['behavior']} / closing {report['behaviorClose']}")
        print(f"    description: {shorten(report['description'])}")
        print(f"    expectation: {shorten(report['expectation'])}")
        print(f"    result:      {report['result']}")
        print(f"    closing:     {report['resultClose']}")
        print(f"    expected:    {shorten(report['expected'])}")
        print(f"    received:    {shorten(report['received'])}")
        print(
            f"    close codes: local {report['localCloseCode']} remote {report['remoteCloseCode']}"
            f" (reason {report['remoteCloseReason']!r}); clean {report['wasClean']}"
            f" ({report['wasNotCleanReason']}); duration {report['duration']} ms"
        )


# --- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(cmd: list[str], log: Path | None) -> subprocess.Popen[str]:
    """Start a process in its own session (so it and its children can be stopped together)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = subprocess.PIPE if log is None else log.open("w")
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_listening(port: int, proc: subprocess.Popen[str], seconds: float) -> str | None:
    """Wait until something accepts TCP on 127.0.0.1:port; return an error message on failure."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"{proc.args[0]} exited with status {proc.returncode} before listening"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return None
        except OSError:
            time.sleep(0.2)
    return f"nothing listened on 127.0.0.1:{port} within {seconds:g} s"


class WstestOutput(threading.Thread):
    """Copies wstest's output to its log; notes the case count; prints progress per case group.

    It also times each top-level group by the wall clock (from the start of its first case to the
    start of the next group's, or to the end of the run), which, unlike the per-case durations in
    index.json, includes the opening handshakes and anything the testee does between cases.
    """

    PLANNED = re.compile(r"Ok, will run (\d+) test cases")
    RUNNING = re.compile(r"Running test case ID (\S+)")
    ENDED = re.compile(r"Updating reports")

    def __init__(self, proc: subprocess.Popen[str], log: Path, label: str) -> None:
        super().__init__(daemon=True)
        self.proc, self.log, self.label = proc, log, label
        self.expected: int | None = None
        self.started = time.monotonic()
        self.group_starts: dict[str, float] = {}
        self.ended: float | None = None

    def group_wall_s(self) -> dict[str, float]:
        marks = [*self.group_starts.items(), ("end", self.ended or time.monotonic())]
        return {g: round(marks[i + 1][1] - t, 1) for i, (g, t) in enumerate(marks[:-1])}

    def run(self) -> None:
        assert self.proc.stdout is not None
        group, done = None, 0
        with self.log.open("w") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                if match := self.PLANNED.search(line):
                    self.expected = int(match.group(1))
                elif self.ENDED.search(line):
                    self.ended = time.monotonic()
                elif match := self.RUNNING.search(line):
                    done += 1
                    case_id = match.group(1)
                    if case_id.split(".")[0] != group:
                        group = case_id.split(".")[0]
                        self.group_starts[group] = time.monotonic()
                        elapsed = self.group_starts[group] - self.started
                        print(
                            f"  [{elapsed:5.0f} s] {self.label}: case {case_id}"
                            f" ({done}/{self.expected or '?'})",
                            flush=True,
                        )
        self.ended = self.ended or time.monotonic()


def testee_command(peer: str, port: int) -> list[str]:
    if peer == ASGI_AGENT:
        return [sys.executable, str(CONFORMANCE / "peers" / "asgi_echo.py"), "--port", str(port)]
    if peer == "rawws":
        args = ["-m", "rawws", "echo", "--host", "127.0.0.1", "--max-size", "0", "--port"]
        return [sys.executable, *args, str(port)]
    return [sys.executable, str(CONFORMANCE / "peers" / f"{peer}_echo.py"), "--port", str(port)]


def write_spec(mode: str, peer: str, port: int, cases: list[str]) -> tuple[Path, Path]:
    template = "fuzzingclient.json" if mode == "server" else "fuzzingserver.json"
    spec = json.loads((CONFORMANCE / template).read_text())
    outdir = REPORTS / f"{mode}-{peer}"
    spec["outdir"] = str(outdir.relative_to(ROOT))  # relative: also valid inside a Docker wstest
    if mode == "server":
        spec["servers"] = [{"agent": peer, "url": f"ws://127.0.0.1:{port}"}]
    else:
        spec["url"] = f"ws://127.0.0.1:{port}"
    if cases:
        spec["cases"] = cases
    spec_path = REPORTS / f"{mode}-{peer}.spec.json"
    spec_path.write_text(json.dumps(spec, indent=3) + "\n")
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    return spec_path, outdir


def run_mode(mode: str, peer: str, wstest: str, args: argparse.Namespace) -> Summary:
    port = free_port()
    spec_path, outdir = write_spec(mode, peer, port, args.cases)
    spec = str(spec_path.relative_to(ROOT))
    logs = {name: REPORTS / f"{mode}-{peer}.{name}.log" for name in ("wstest", "testee", "driver")}
    errors: list[str] = []
    began = time.monotonic()
    print(f"\n== {mode} mode, agent {peer}: wstest on 127.0.0.1:{port}", flush=True)
    procs: list[subprocess.Popen[str]] = []
    output = None
    try:
        if mode == "server":
            testee = start(testee_command(peer, port), logs["testee"])
            procs.append(testee)
            if error := wait_listening(port, testee, 30):
                errors.append(f"testee: {error} (see {logs['testee'].relative_to(ROOT)})")
                return finish(mode, peer, outdir, errors, began, None)
            wstest_proc = start([wstest, "-m", "fuzzingclient", "-s", spec], None)
            procs.append(wstest_proc)
            output = WstestOutput(wstest_proc, logs["wstest"], f"server/{peer}")
            output.start()
            waited = wstest_proc
        else:
            wstest_proc = start([wstest, "-m", "fuzzingserver", "-s", spec, "--webport", "0"], None)
            procs.append(wstest_proc)
            output = WstestOutput(wstest_proc, logs["wstest"], f"client/{peer}")
            output.start()
            if error := wait_listening(port, wstest_proc, 60):
                errors.append(f"wstest: {error} (see {logs['wstest'].relative_to(ROOT)})")
                return finish(mode, peer, outdir, errors, began, output)
            client_py = str(CONFORMANCE / "client.py")
            driver = [sys.executable, client_py, "--uri", f"ws://127.0.0.1:{port}", "--impl", peer]
            waited = start(driver, logs["driver"])
            procs.append(waited)
        name = "wstest" if mode == "server" else "client.py"
        try:
            status = waited.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            errors.append(f"{name} still running after --timeout {args.timeout:g} s")
        else:
            if status != 0:
                errors.append(f"{name} exited with status {status} (see the logs)")
        if mode == "server" and procs[0].poll() is not None:
            errors.append(
                f"the testee exited during the run with status {procs[0].returncode}"
                f" (see {logs['testee'].relative_to(ROOT)})"
            )
    finally:
        for proc in reversed(procs):
            stop(proc)
    return finish(mode, peer, outdir, errors, began, output)


def finish(
    mode: str, peer: str, outdir: Path, errors: list[str], began: float, output: WstestOutput | None
) -> Summary:
    if output is not None:
        output.join(timeout=15)
    summary = summarize(mode, outdir, peer)[0]
    summary.wall_s = time.monotonic() - began
    summary.harness_errors[:0] = errors
    summary.expected = output.expected if output else None
    summary.wall_by_group = output.group_wall_s() if output else {}
    if summary.expected is not None and summary.total != summary.expected:
        summary.harness_errors.append(
            f"{summary.total} results for {summary.expected} planned cases (see the logs)"
        )
    (REPORTS / f"{mode}-{peer}.summary.json").write_text(json.dumps(summary.to_json(), indent=2))
    return summary


def find_wstest(explicit: str | None) -> str | None:
    """--wstest or $RAWWS_WSTEST when given (nothing else then), else the install, else PATH."""
    if chosen := explicit or os.environ.get("RAWWS_WSTEST"):
        return shutil.which(chosen)
    home = Path(os.environ.get("RAWWS_WSTEST_HOME", "/opt/rawws-wstest"))
    return shutil.which(str(home / "bin" / "wstest")) or shutil.which("wstest")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]),
    )
    parser.add_argument("--mode", choices=["server", "client", "asgi", "both", "all"],
                        default="both")
    parser.add_argument(
        "--peer",
        default="rawws",
        help="agent(s) under test, comma-separated: rawws (default), websockets, aiohttp",
    )
    parser.add_argument("--cases", default="", help="case filter, e.g. '1.*,6.4.*' (default: all)")
    parser.add_argument(
        "--require-deflate",
        action="store_true",
        help="UNIMPLEMENTED fails the gate (once rawws has permessage-deflate)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600,
        help="seconds allowed for one mode of one agent (default 3600)",
    )
    parser.add_argument("--wstest", help="wstest command (default: /opt/rawws-wstest/bin/wstest)")
    parser.add_argument(
        "--details", action="store_true", help="print wstest's account of every case that is not OK"
    )
    parser.add_argument(
        "--summarize",
        nargs="+",
        type=Path,
        metavar="OUTDIR",
        help="only summarize existing report directories (no run)",
    )
    args = parser.parse_args()
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]

    if args.summarize:
        summaries = []
        for outdir in args.summarize:
            mode = outdir.resolve().name.split("-")[0]
            summaries += summarize(mode, outdir.resolve())
    else:
        peers = [p.strip() for p in args.peer.split(",") if p.strip()]
        if unknown := set(peers) - set(AGENTS):
            parser.error(f"unknown --peer {', '.join(sorted(unknown))}; choose from {AGENTS}")
        wstest = find_wstest(args.wstest)
        if wstest is None:
            print(
                "run.py: no runnable wstest (looked at --wstest, else $RAWWS_WSTEST,"
                " $RAWWS_WSTEST_HOME/bin/wstest, PATH).\n"
                "Install it with conformance/install_wstest.sh (make conformance does).",
                file=sys.stderr,
            )
            return EXIT_HARNESS
        REPORTS.mkdir(exist_ok=True)
        modes = {"both": ["server", "client"], "all": ["server", "client", "asgi"]}.get(
            args.mode, [args.mode])
        runs = [(mode, peer) for mode in modes if mode != "asgi" for peer in peers]
        if "asgi" in modes:
            runs.append(("server", ASGI_AGENT))
        summaries = [run_mode(mode, peer, wstest, args) for mode, peer in runs]

    status = EXIT_OK
    for summary in summaries:
        print_summary(summary, args.require_deflate)
        if args.details and not summary.harness_errors:
            print_details(summary)
        if summary.harness_errors:
            status = EXIT_HARNESS
        elif summary.gate_failures(args.require_deflate) and status == EXIT_OK:
            status = EXIT_GATE
    if len(summaries) > 1:
        print("\nagent/mode            OK  NON-STRICT  FAILED  INFO  UNIMPL  9.x total (s)")
        for s in summaries:
            n = {b: len(s.behaviors.get(b, [])) for b in BEHAVIORS}
            print(
                f"{s.agent + '/' + s.mode:<20}{n['OK']:>4}{n['NON-STRICT']:>12}{n['FAILED']:>8}"
                f"{n['INFORMATIONAL']:>6}{n['UNIMPLEMENTED']:>8}{s.nine_ms / 1000:>15.1f}"
            )
    verdict = {EXIT_OK: "PASSED", EXIT_GATE: "FAILED", EXIT_HARNESS: "HARNESS ERROR"}[status]
    print(f"\nconformance gate: {verdict}")
    return status


if __name__ == "__main__":
    sys.exit(main())
