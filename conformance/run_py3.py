"""Run the Python 3 suite (rawws.conformance) against rawws or a peer; gate; compare with wstest.

    .venv/bin/python conformance/run_py3.py                      # CI subset, both modes, rawws
    .venv/bin/python conformance/run_py3.py --subset full        # all 517 cases
    .venv/bin/python conformance/run_py3.py --mode server --cases '6.*' --compare
    .venv/bin/python conformance/run_py3.py --peer rawws,websockets,aiohttp --subset full --compare

Modes, as in run.py (whose process helpers this script reuses):
  server  `python -m rawws.conformance fuzzingclient` tests `python -m rawws echo --max-size 0`
          (or conformance/peers/<peer>_echo.py) on a free port of 127.0.0.1.
  client  `python -m rawws.conformance fuzzingserver` listens on a free port; conformance/client.py
          drives the client under test, unchanged from the wstest runs.

Subsets: `ci` (the default, what `make conformance-py3` runs) is every case of 1.x-10.x and the
12.x/13.x cases with messages up to 32 KiB (sizes 1-8 and 11-13 of each group; 132 of the 216):
about 1.5 min per mode here. `full` is all 517 cases (about 6 min per mode). --cases overrides.

--compare also runs wstest on the same cases, mode and peer (conformance/reports/<mode>-<peer>/,
exactly as run.py does; --reuse-wstest takes an existing run instead) and prints every case
where the two suites disagree, on the case verdict or on the closing verdict. Disagreements
listed in EXPLAINED (conformance/README.md, "Python 3 suite against wstest") are reported as
such; any other makes the exit status 1.

Reports: conformance/reports/py3-<mode>-<peer>/ (wstest's layout), the logs next to it, and
compare-<mode>-<peer>.json for --compare.

Exit status: 0 gate passed (and no unexplained disagreement); 1 gate failed or an unexplained
disagreement; 2 the harness could not do its job.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as wstest_run

ROOT = wstest_run.ROOT
REPORTS = wstest_run.REPORTS
EXIT_OK, EXIT_GATE, EXIT_HARNESS = 0, 1, 2

_BIG = (9, 10, 14, 15, 16, 17, 18)  # 64 KiB and 128 KiB messages, 1000 of them per case
SUBSETS: dict[str, tuple[list[str], list[str]]] = {
    "ci": (["*"], [f"{family}.*.{n}" for family in (12, 13) for n in _BIG]),
    "full": (["*"], []),
}

_READ_BOUNDARIES = ("timing: the verdict depends on how the testee's reads split the bytes;"
                    " wstest itself gives both verdicts from run to run (conformance/README.md)")
#: Cases where the two suites may disagree, and why (conformance/README.md, "Python 3 suite
#: against wstest", has the measurements): (agent, mode or "*", case ids) -> reason.
EXPLAINED: list[tuple[str, str, frozenset[str], str]] = [
    # A valid message, then a bad frame, sent byte by byte or frame by frame: websockets
    # echoes the message only when the bad frame arrives in a later read.
    ("websockets", "*", frozenset({"3.2", "3.3", "3.4", "4.1.3", "4.1.4", "4.1.5", "4.2.3",
                                   "4.2.4", "4.2.5", "5.15"}), _READ_BOUNDARIES),
]


def _explained(agent: str, mode: str, case_id: str) -> str | None:
    for who, where, ids, reason in EXPLAINED:
        if who in (agent, "*") and where in (mode, "*") and case_id in ids:
            return reason
    return None


def run_py3(mode: str, peer: str, args: argparse.Namespace) -> wstest_run.Summary:
    port = wstest_run.free_port()
    outdir = REPORTS / f"py3-{mode}-{peer}"
    logs = {name: REPORTS / f"py3-{mode}-{peer}.{name}.log"
            for name in ("suite", "testee", "driver")}
    errors: list[str] = []
    began = time.monotonic()
    print(f"\n== rawws.conformance, {mode} mode, agent {peer}: 127.0.0.1:{port}", flush=True)
    suite = [sys.executable, "-m", "rawws.conformance"]
    cases = ["--cases", ",".join(args.cases_list)]
    if args.exclude_list:
        cases += ["--exclude", ",".join(args.exclude_list)]
    procs = []
    try:
        if mode == "server":
            testee = wstest_run.start(wstest_run.testee_command(peer, port), logs["testee"])
            procs.append(testee)
            if error := wstest_run.wait_listening(port, testee, 30):
                errors.append(f"testee: {error}")
                return _finish(mode, peer, outdir, errors, began)
            cmd = [*suite, "fuzzingclient", "--url", f"ws://127.0.0.1:{port}", "--agent", peer,
                   "--outdir", str(outdir), "--jobs", str(args.jobs), *cases]
            waited = wstest_run.start(cmd, logs["suite"])
            procs.append(waited)
        else:
            cmd = [*suite, "fuzzingserver", "--port", str(port), "--outdir", str(outdir),
                   *cases]
            fuzzer = wstest_run.start(cmd, logs["suite"])
            procs.append(fuzzer)
            if error := wstest_run.wait_listening(port, fuzzer, 30):
                errors.append(f"fuzzing server: {error}")
                return _finish(mode, peer, outdir, errors, began)
            driver = [sys.executable, str(wstest_run.CONFORMANCE / "client.py"), "--uri",
                      f"ws://127.0.0.1:{port}", "--impl", peer]
            waited = wstest_run.start(driver, logs["driver"])
            procs.append(waited)
        try:
            status = waited.wait(timeout=args.timeout)
        except Exception:
            errors.append(f"still running after --timeout {args.timeout:g} s")
        else:
            # The suite's own status is its gate (1) or a harness error (2); run.py's gate
            # below reads index.json, so only 2 counts here.
            if (mode == "server" and status == 2) or (mode == "client" and status != 0):
                errors.append(f"{waited.args[1]} exited with status {status} (see the logs)")
    finally:
        for proc in reversed(procs):
            wstest_run.stop(proc)
    return _finish(mode, peer, outdir, errors, began)


def _finish(mode: str, peer: str, outdir: Path, errors: list[str],
            began: float) -> wstest_run.Summary:
    summary = wstest_run.summarize(mode, outdir, peer)[0]
    summary.wall_s = time.monotonic() - began
    summary.wall_by_group = {}  # run.py reads wstest's per-group timings; none here
    summary.harness_errors[:0] = errors
    summary.expected = len(expected_ids(_ARGS))
    if summary.total != summary.expected and not summary.harness_errors:
        summary.harness_errors.append(f"{summary.total} results for {summary.expected} cases")
    return summary


def expected_ids(args: argparse.Namespace) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from rawws.conformance import cases

    return cases.select(args.cases_list, args.exclude_list)


def verdicts(outdir: Path, agent: str) -> dict[str, tuple[str, str]]:
    path = outdir / "index.json"
    if not path.exists():
        return {}
    index = json.loads(path.read_text()).get(agent, {})
    return {case_id: (r["behavior"], r["behaviorClose"]) for case_id, r in index.items()}


def compare(mode: str, peer: str, args: argparse.Namespace) -> tuple[int, int]:
    """Print the disagreements; return (unexplained, explained) counts."""
    ours = verdicts(REPORTS / f"py3-{mode}-{peer}", peer)
    theirs = verdicts(REPORTS / f"{mode}-{peer}", peer)
    wanted = expected_ids(args)
    rows, unexplained, explained = [], 0, 0
    for case_id in wanted:
        a, b = theirs.get(case_id), ours.get(case_id)
        if a == b:
            continue
        reason = _explained(peer, mode, case_id)
        if reason:
            explained += 1
        else:
            unexplained += 1
        rows.append({"case": case_id, "wstest": a, "py3": b, "explained": reason})
    same = sum(1 for c in wanted if c in ours and theirs.get(c) == ours.get(c))
    print(f"\n{mode} mode, agent {peer}: {same} of {len(wanted)} cases agree"
          f" ({unexplained} unexplained, {explained} explained disagreements)")
    for row in rows:
        def show(v: tuple[str, str] | None) -> str:
            return "missing" if v is None else f"{v[0]} / closing {v[1]}"

        note = f"  [{row['explained']}]" if row["explained"] else ""
        print(f"  {row['case']:<9} wstest {show(row['wstest'])}; py3 {show(row['py3'])}{note}")
    (REPORTS / f"compare-{mode}-{peer}.json").write_text(json.dumps(
        {"mode": mode, "agent": peer, "cases": len(wanted), "agree": same,
         "disagreements": rows}, indent=2))
    return unexplained, explained


def report_variation(history: dict[tuple[str, str], dict[str, dict[str, list[tuple[str, str]]]]],
                     *, compared: bool) -> int:
    """After --repeat: every case whose verdict changed between runs or between the suites.
    Returns the number of *stable* disagreements (each suite constant, the two different) that
    EXPLAINED does not cover: those are the ones that need a fix or an explanation."""
    from collections import Counter

    unexplained = 0
    for (mode, peer), suites in history.items():
        print(f"\nvariation over runs, {mode} mode, agent {peer}:")
        ids = sorted({c for by_case in suites.values() for c in by_case}, key=wstest_run.case_key)
        shown = 0
        for case_id in ids:
            seen = {name: Counter(by_case.get(case_id, [])) for name, by_case in suites.items()}
            kinds = {name: set(c) for name, c in seen.items()}
            varies = any(len(k) > 1 for k in kinds.values())
            differs = compared and len(kinds) == 2 and kinds["py3"] != kinds["wstest"]
            if not (varies or differs):
                continue
            shown += 1
            label = "timing-dependent" if varies and (not compared or kinds["py3"] & kinds[
                "wstest"]) else "DISAGREE"
            if label == "DISAGREE":
                reason = _explained(peer, mode, case_id)
                label = f"explained: {reason}" if reason else "DISAGREE (stable)"
                unexplained += reason is None
            counts = "; ".join(
                f"{name} " + ", ".join(f"{b}/{c} x{n}" for (b, c), n in sorted(count.items()))
                for name, count in seen.items())
            print(f"  {case_id:<9} {counts}  [{label}]")
        if not shown:
            print("  every case gave the same verdict in every run" +
                  (" of both suites" if compared else ""))
    return unexplained


_ARGS: argparse.Namespace


def main() -> int:
    global _ARGS
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--mode", choices=["server", "client", "both"], default="both")
    parser.add_argument("--peer", default="rawws",
                        help="agent(s) under test, comma-separated: rawws, websockets, aiohttp")
    parser.add_argument("--subset", choices=sorted(SUBSETS), default="ci")
    parser.add_argument("--cases", default="", help="case patterns (overrides --subset)")
    parser.add_argument("--exclude", default="", help="case patterns to leave out")
    parser.add_argument("--jobs", type=int, default=2, help="cases at once, server mode")
    parser.add_argument("--require-deflate", action="store_true")
    parser.add_argument("--compare", action="store_true",
                        help="also run wstest on the same cases and list the disagreements")
    parser.add_argument("--reuse-wstest", action="store_true",
                        help="with --compare: use the existing wstest reports, do not rerun")
    parser.add_argument("--wstest", help="wstest command (default: /opt/rawws-wstest/bin/wstest)")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run everything N times and report how each case's verdicts vary"
                             " (with --compare: in each suite)")
    args = parser.parse_args()
    patterns, exclude = SUBSETS[args.subset]
    args.cases_list = [c.strip() for c in args.cases.split(",") if c.strip()] or patterns
    args.exclude_list = [c.strip() for c in args.exclude.split(",") if c.strip()] or (
        exclude if not args.cases else [])
    _ARGS = args
    peers = [p.strip() for p in args.peer.split(",") if p.strip()]
    if unknown := set(peers) - set(wstest_run.AGENTS):
        parser.error(f"unknown --peer {', '.join(sorted(unknown))}")
    modes = ["server", "client"] if args.mode == "both" else [args.mode]
    REPORTS.mkdir(exist_ok=True)

    wstest = None
    if args.compare and not args.reuse_wstest:
        wstest = wstest_run.find_wstest(args.wstest)
        if wstest is None:
            print("run_py3.py: --compare needs wstest (conformance/install_wstest.sh)",
                  file=sys.stderr)
            return EXIT_HARNESS

    status = EXIT_OK
    table = []
    history: dict[tuple[str, str], dict[str, dict[str, list[tuple[str, str]]]]] = {}
    runs = [(mode, peer) for _ in range(max(1, args.repeat)) for mode in modes for peer in peers]
    for mode, peer in runs:
        summary = run_py3(mode, peer, args)
        wstest_run.print_summary(summary, args.require_deflate)
        row = {"py3": summary}
        if summary.harness_errors:
            status = EXIT_HARNESS
        elif summary.gate_failures(args.require_deflate) and status == EXIT_OK:
            status = EXIT_GATE
        if args.compare:
            if wstest is not None:
                spec = SimpleNamespace(cases=list(expected_ids(args)), timeout=args.timeout)
                row["wstest"] = wstest_run.run_mode(mode, peer, wstest, spec)
                wstest_run.print_summary(row["wstest"], args.require_deflate)
            else:
                row["wstest"] = wstest_run.summarize(mode, REPORTS / f"{mode}-{peer}", peer)[0]
            unexplained, _ = compare(mode, peer, args)
            if unexplained and status == EXIT_OK and args.repeat == 1:
                status = EXIT_GATE
        table.append((mode, peer, row))
        record = history.setdefault((mode, peer), {})
        for name, outdir in (("py3", f"py3-{mode}-{peer}"), ("wstest", f"{mode}-{peer}")):
            if name in row:
                for case_id, v in verdicts(REPORTS / outdir, peer).items():
                    record.setdefault(name, {}).setdefault(case_id, []).append(v)
    if args.repeat > 1:
        stable = report_variation(history, compared=args.compare)
        status = EXIT_GATE if stable and status == EXIT_OK else status
    print("\nsuite   agent/mode            OK  NON-STRICT  FAILED  INFO  UNIMPL   wall (s)")
    for mode, peer, row in table:
        for name, s in row.items():
            n = {b: len(s.behaviors.get(b, [])) for b in wstest_run.BEHAVIORS}
            wall = "" if s.wall_s is None else f"{s.wall_s:>10.0f}"
            print(f"{name:<8}{peer + '/' + mode:<20}{n['OK']:>4}{n['NON-STRICT']:>12}"
                  f"{n['FAILED']:>8}{n['INFORMATIONAL']:>6}{n['UNIMPLEMENTED']:>8}{wall}")
    verdict = {EXIT_OK: "PASSED", EXIT_GATE: "FAILED", EXIT_HARNESS: "HARNESS ERROR"}[status]
    print(f"\nPython 3 conformance gate: {verdict}")
    return status


if __name__ == "__main__":
    sys.exit(main())
