"""Attack scenarios: what a hostile client costs the server and everyone else (issue 11).

    python -m benchmarks.attack                             # every scenario -> ATTACK.md
    python -m benchmarks.attack --scenarios memory          # one (memory, topics, ping, ...)
    python -m benchmarks.attack --quick                     # smaller attacks, fewer samples

Not tests: nothing here passes or fails. Each scenario starts a real ``python -m rawws serve``
process on 127.0.0.1 and reports what the attack did to it:

* ``memory``: the offline-inbox and room-history budgets against many small entries of 4-byte
  UTF-8 characters (private messages to offline users; room messages in many rooms): the
  server's RSS growth (/proc/PID/status) beside the configured budget. The attack sends several
  times the budget; what stays is what the budget keeps.

Results are printed and written to ``benchmarks/ATTACK.md`` (``--no-write`` to skip), with the
machine's load before and after: the machine is shared, and latency figures move with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chat.hostile import RawClient, scrape_metrics
from tests.processes import ServerProcess, serve

from .run import _busiest_others, _git_commit, _machine

HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024
EMOJI = "\U0001F600"  # one character, 4 bytes of UTF-8
FAST = ("--rate", "1e9", "--burst", "1e9", "--no-compression")


@dataclass
class Report:
    quick: bool
    sections: list[tuple[str, list[str]]] = field(default_factory=list)

    def section(self, title: str, lines: list[str]) -> None:
        self.sections.append((title, lines))
        print(f"\n## {title}\n")
        print("\n".join(lines), flush=True)


async def stop(server: ServerProcess) -> None:
    server.kill()
    await server.wait()


# --- memory: the budgets against many small entries ------------------------------------------


def _private(target: str, n: int) -> dict[str, Any]:
    return {"type": "private", "target": target, "content": EMOJI * (1 + n % 4)}


async def _inbox_case(budget: int, per_user: int, total: int) -> list[str]:
    server, port = await serve("--inbox-max-bytes", str(budget), *FAST)
    try:
        client = await RawClient.welcomed(port, "attacker")
        await client.request([_private(f"warm{n}", n) for n in range(2000)])
        base = server.rss()
        started = time.monotonic()
        await client.request([_private(f"u{n // per_user}", n) for n in range(total)])
        took = time.monotonic() - started
        grown = server.rss() - base
        found = await scrape_metrics(port)
        client.close()
    finally:
        await stop(server)
    return [f"| offline inbox | {budget // MiB} MiB | {total:,} private messages, {per_user} "
            f"per user | {int(found['rawws_inbox_items']):,} | "
            f"{found['rawws_inbox_bytes'] / MiB:.1f} MiB | {grown / MiB:.1f} MiB | "
            f"**{grown / budget:.2f}x** | {took:.1f} s |"]


async def _history_case(budget: int, rooms_per_client: int, clients: int, per_client: int,
                        history_size: int) -> list[str]:
    server, port = await serve("--history-max-bytes", str(budget),
                               "--history-size", str(history_size), *FAST)
    try:
        attackers = [await RawClient.welcomed(port, f"attacker{c}") for c in range(clients)]

        def posts(c: int, count: int) -> list[dict[str, Any]]:
            return [{"type": "message", "room": f"r{c}-{n % rooms_per_client}",
                     "content": EMOJI * (1 + n % 4)} for n in range(count)]

        await asyncio.gather(*(
            a.request([{"type": "join", "room": f"r{c}-{i}"} for i in range(rooms_per_client)]
                      + posts(c, 200)) for c, a in enumerate(attackers)))
        base = server.rss()
        started = time.monotonic()
        await asyncio.gather(*(a.request(posts(c, per_client)) for c, a in enumerate(attackers)))
        took = time.monotonic() - started
        grown = server.rss() - base
        found = await scrape_metrics(port)
        for a in attackers:
            a.close()
    finally:
        await stop(server)
    kept = found["rawws_history_bytes"]
    return [f"| room history | {budget // MiB} MiB | {clients * per_client:,} room messages in "
            f"{clients * rooms_per_client:,} rooms (`--history-size {history_size}`) | — | "
            f"{kept / MiB:.1f} MiB | {grown / MiB:.1f} MiB | **{grown / budget:.2f}x** | "
            f"{took:.1f} s |"]


async def scenario_memory(report: Report) -> None:
    scale = 4 if report.quick else 1
    rows = ["| budget | configured | attack | items kept | charged | RSS growth | growth / "
            "budget | attack took |", "|---|---|---|---|---|---|---|---|"]
    rows += await _inbox_case(32 * MiB, 1, 250_000 // scale)
    rows += await _inbox_case(32 * MiB, 100, 400_000 // scale)
    rows += await _history_case(64 * MiB, 50, 20, 30_000 // scale, 400)
    report.section("Memory budgets: RSS growth against the configured budget", [
        "Every entry is a few 4-byte characters (`\U0001F600`), the worst case for budgets "
        "that counted string lengths and the dicts around them. The attack sends several times "
        "the budget; RSS (VmRSS) is read before and after it, with the server's own charge "
        "(`rawws_inbox_bytes`, `rawws_history_bytes`) beside it. The issue's goal: growth "
        "within 1.5x the budget.", "", *rows])


SCENARIOS: dict[str, Callable[[Report], Awaitable[None]]] = {
    "memory": scenario_memory,
}


def _write(report: Report, started: dict[str, Any], path: Path) -> None:
    machine = _machine()
    lines = [
        "# rawws attack scenarios",
        "",
        "Generated by `python -m benchmarks.attack` ([attack.py](attack.py)); how each "
        "scenario works is in its docstring and in [README.md](README.md#attack-scenarios). "
        "These are measurements, not tests: the limits they exercise are proven by the tests "
        "named in [docs/security.md](../docs/security.md).",
        "",
        f"* Run: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(started['time']))}, "
        f"commit `{_git_commit()}`, {'quick' if report.quick else 'full'} pass, "
        f"{time.time() - started['time']:.0f} s.",
        f"* Machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['memory_gib']} GiB, "
        f"Linux {machine['kernel']}; Python {platform.python_version()}.",
        "* Load (a shared machine): load average before "
        f"{'/'.join(f'{x:.2f}' for x in started['load'])}, after "
        f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}; busiest other processes before: "
        f"{', '.join(started['busy']) or 'none'}; after: {', '.join(_busiest_others()) or 'none'}"
        ". Latency figures move with that load; re-run on a quiet machine with "
        "`python -m benchmarks.attack`.",
    ]
    for title, body in report.sections:
        lines += ["", f"## {title}", "", *body]
    path.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated, from {', '.join(SCENARIOS)}")
    parser.add_argument("--quick", action="store_true", help="smaller attacks, fewer samples")
    parser.add_argument("--no-write", action="store_true", help="do not write ATTACK.md")
    parser.add_argument("--output", type=Path, default=HERE / "ATTACK.md")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    report = Report(quick=args.quick)
    started = {"time": time.time(), "load": os.getloadavg(), "busy": _busiest_others()}

    async def run_all() -> None:
        for name in names:
            await SCENARIOS[name](report)

    asyncio.run(run_all())
    if not args.no_write:
        _write(report, started, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
