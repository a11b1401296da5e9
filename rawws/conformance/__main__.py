"""``python -m rawws.conformance``: the command line of the Python 3 conformance suite.

Exit status: 0 when every case run is OK or INFORMATIONAL and closed OK (UNIMPLEMENTED, the
compression cases against a testee without permessage-deflate, passes unless
``--require-deflate``); 1 when a case is NON-STRICT or FAILED or closed badly; 2 for usage
errors and when the suite could not do its job (the server is unreachable, a spec file is
invalid).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import cases as catalogue
from .cases import corpora
from .runner import FuzzingServer, HarnessError, Progress, Results, run_fuzzing_client

ACCEPTED = {"OK", "INFORMATIONAL"}


def _patterns(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _load_spec(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"rawws.conformance: cannot read spec {path}: {exc}") from exc
    if not isinstance(spec, dict):
        raise SystemExit(f"rawws.conformance: spec {path} is not a JSON object")
    return spec


def _select(args: argparse.Namespace, spec: dict[str, Any]) -> list[str]:
    patterns = _patterns(args.cases) or list(spec.get("cases", ["*"]))
    exclude = _patterns(args.exclude) or list(spec.get("exclude-cases", []))
    try:
        return catalogue.select(patterns, exclude)
    except KeyError as exc:
        raise SystemExit(f"rawws.conformance: {exc.args[0]}") from exc


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", help="case patterns, comma-separated, as in wstest specs:"
                        " '1.*,6.4.*', '12.1.*', '7.7.1' (default: all)")
    parser.add_argument("--exclude", help="case patterns to leave out")
    parser.add_argument("--outdir", help="where the reports go (default: from --spec, else"
                        " ./reports/servers or ./reports/clients)")
    parser.add_argument("-s", "--spec", help="a wstest spec file (JSON): servers/url, cases,"
                        " exclude-cases, exclude-agent-cases, outdir; options override it")
    parser.add_argument("--testdata", help="Autobahn's testdata directory for the 12.x/13.x"
                        " payloads (default: generated corpora of the same kinds)")
    parser.add_argument("--require-deflate", action="store_true",
                        help="UNIMPLEMENTED (no permessage-deflate) fails the exit status")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rawws.conformance",
        description="The Autobahn testsuite's cases 1.x-13.x in Python 3: test a WebSocket"
                    " server (fuzzingclient) or client (fuzzingserver).")
    commands = parser.add_subparsers(dest="command", required=True)
    client = commands.add_parser("fuzzingclient", help="test a server")
    client.add_argument("--url", help="the server to test, ws://HOST:PORT[/PATH]")
    client.add_argument("--agent", help="its name in the reports (default: its Server header)")
    client.add_argument("--jobs", type=int, default=1,
                        help="cases run at once (9.x always run alone); default 1")
    _add_common(client)
    server = commands.add_parser("fuzzingserver", help="test clients: listen for a driver")
    server.add_argument("--port", type=int, help="port to listen on (0: any free port)")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on")
    _add_common(server)
    listing = commands.add_parser("list", help="list the cases")
    listing.add_argument("--cases", help="case patterns (default: all)")
    listing.add_argument("--exclude", help="case patterns to leave out")
    return parser


def _exit_status(results: Results, require_deflate: bool) -> int:
    accepted = ACCEPTED if require_deflate else ACCEPTED | {"UNIMPLEMENTED"}
    for cases in results.by_agent.values():
        for result in cases.values():
            if result["behavior"] not in accepted:
                return 1
            if result["behavior"] != "UNIMPLEMENTED" and result["behaviorClose"] not in ACCEPTED:
                return 1
    return 0


async def _fuzzingclient(args: argparse.Namespace, spec: dict[str, Any]) -> int:
    servers = spec.get("servers") or [{}]
    if args.url:
        servers = [{"url": args.url, "agent": args.agent}]
    if not servers[0].get("url"):
        print("rawws.conformance: fuzzingclient needs --url (or servers in --spec)",
              file=sys.stderr)
        return 2
    case_ids = _select(args, spec)
    outdir = Path(args.outdir or spec.get("outdir") or "reports/servers")
    results = Results(outdir)
    status = 0
    try:
        for server in servers:
            label = f"{server.get('agent') or server['url']}: "
            progress = None if args.quiet else Progress(len(case_ids), label=label)
            try:
                await run_fuzzing_client(server["url"], case_ids, results,
                                         agent=server.get("agent"), jobs=args.jobs,
                                         exclude_agent=spec.get("exclude-agent-cases"),
                                         progress=progress)
            finally:
                if progress is not None:
                    progress.close()
    except (HarnessError, ValueError) as exc:
        print(f"rawws.conformance: {exc}", file=sys.stderr)
        status = 2
    results.write()
    print(f"reports in {outdir}/index.html")
    return status or _exit_status(results, args.require_deflate)


async def _fuzzingserver(args: argparse.Namespace, spec: dict[str, Any]) -> int:
    case_ids = _select(args, spec)
    port = args.port
    if port is None:
        url = spec.get("url", "")
        port = int(url.rsplit(":", 1)[1].split("/")[0]) if url.count(":") >= 2 else None
    if port is None:
        print("rawws.conformance: fuzzingserver needs --port (or url in --spec)", file=sys.stderr)
        return 2
    outdir = Path(args.outdir or spec.get("outdir") or "reports/clients")
    results = Results(outdir)
    progress = None if args.quiet else Progress(len(case_ids))
    server = FuzzingServer(case_ids, results, exclude_agent=spec.get("exclude-agent-cases"),
                           progress=progress)
    try:
        bound = await server.start(args.host, port)
    except OSError as exc:
        print(f"rawws.conformance: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
        return 2
    print(f"rawws.conformance fuzzing server on ws://{args.host}:{bound}: {len(case_ids)} cases",
          flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, server.stopped.set)
    await server.serve_until_stopped()
    if progress is not None:
        progress.close()
    if results.by_agent:
        results.write()
        print(f"reports in {outdir}/index.html")
    return _exit_status(results, args.require_deflate)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for case_id in _select(args, {}):
            print(f"{case_id:<10} {catalogue.get(case_id).description}")
        return 0
    spec = _load_spec(args.spec)
    if args.testdata:
        corpora.use_directory(args.testdata)
    run = _fuzzingclient if args.command == "fuzzingclient" else _fuzzingserver
    return asyncio.run(run(args, spec))


if __name__ == "__main__":
    sys.exit(main())
