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
* ``topics``: bystanders' round-trip latency (p50/p99 of ``ping`` requests, 10 connections, 10
  per second each) without attack, then while 240 connections subscribe every pattern
  ``{a,*}.{a,*}....b`` (15 levels) the server accepts and 5 others publish ``a.a....a.b`` at
  their rate limit (100 publishes/s). The issue's goal: p99 < 50 ms during the attack.
* ``ping``: the same bystanders while one peer sends WebSocket pings as fast as its socket
  takes them and never reads (the core owes it at most one pong); the server's RSS growth.

Attackers run in a child process (``python -m benchmarks.attack --attacker KIND``), from
other loopback addresses than the bystanders (127.0.0.1 against 127.0.0.2), so that per-address
limits apply to them as they would to a real attacker, and their work never delays the
bystanders' own measuring loop. ``--server-root DIR`` runs the server from another checkout
(for "before" figures: ``git archive REV | tar -x -C DIR``).

Results are printed and written to ``benchmarks/ATTACK.md`` (``--no-write`` to skip), with the
machine's load before and after: the machine is shared, and latency figures move with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chat.hostile import RawClient, scrape_metrics, text_frame
from tests.processes import ServerProcess, serve

from .run import _busiest_others, _git_commit, _machine

HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024
EMOJI = "\U0001F600"  # one character, 4 bytes of UTF-8
FAST = ("--rate", "1e9", "--burst", "1e9", "--no-compression")


@dataclass
class Report:
    quick: bool
    server_root: Path | None = None
    label: str = ""  # "before (...)" / "now" when both are measured
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def section(self, title: str, lines: list[str]) -> None:
        if self.label:
            title = f"{title}: {self.label}"
        self.sections.append((title, lines))
        print(f"\n## {title}\n")
        print("\n".join(lines), flush=True)


async def stop(server: ServerProcess) -> None:
    server.kill()
    await server.wait()


# --- memory: the budgets against many small entries ------------------------------------------


def _private(target: str, n: int) -> dict[str, Any]:
    return {"type": "private", "target": target, "content": EMOJI * (1 + n % 4)}


_LAUNCH = """\
import asyncio, json, sys
from rawws.chat.limits import Limits
from rawws.chat.server import ChatConfig, ChatServer
async def main():
    config = ChatConfig(port=0, limits=Limits(**json.loads(sys.argv[1])), compression=None)
    async with ChatServer(config) as server:
        print(f"rawws chat server on http://127.0.0.1:{server.port}", flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
"""


async def _budget_server(report: Report, **limits: int) -> tuple[ServerProcess, int]:
    """A server with these limits: through the flags, or, for another checkout (which may
    predate the flags), through the library's Limits in a small launcher."""
    if report.server_root is None:
        flags = [item for name, value in limits.items()
                 for item in (f"--{name.replace('_', '-')}", str(value))]
        return await serve(*flags, *FAST)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _LAUNCH, json.dumps({**limits, "rate": 1e9, "burst": 1e9}),
        cwd=report.server_root, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    server = ServerProcess(process)
    port = await server.port()
    server.keep_reading()
    return server, port


def _mib(found: dict[str, float], name: str) -> str:
    return f"{found[name] / MiB:.1f} MiB" if name in found else "(not counted)"


async def _inbox_case(report: Report, budget: int, per_user: int, total: int) -> list[str]:
    server, port = await _budget_server(report, inbox_max_bytes=budget)
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
            f"{_mib(found, 'rawws_inbox_bytes')} | {grown / MiB:.1f} MiB | "
            f"**{grown / budget:.2f}x** | {took:.1f} s |"]


async def _history_case(report: Report, budget: int, rooms_per_client: int, clients: int,
                        per_client: int, history_size: int) -> list[str]:
    server, port = await _budget_server(report, history_max_bytes=budget,
                                        history_size=history_size)
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
    return [f"| room history | {budget // MiB} MiB | {clients * per_client:,} room messages in "
            f"{clients * rooms_per_client:,} rooms (`--history-size {history_size}`) | — | "
            f"{_mib(found, 'rawws_history_bytes')} | {grown / MiB:.1f} MiB | "
            f"**{grown / budget:.2f}x** | {took:.1f} s |"]


async def scenario_memory(report: Report) -> None:
    scale = 4 if report.quick else 1
    rows = ["| budget | configured | attack | items kept | charged | RSS growth | growth / "
            "budget | attack took |", "|---|---|---|---|---|---|---|---|"]
    rows += await _inbox_case(report, 32 * MiB, 1, 250_000 // scale)
    rows += await _inbox_case(report, 32 * MiB, 100, 400_000 // scale)
    rows += await _history_case(report, 64 * MiB, 50, 20, 30_000 // scale, 400)
    report.section("Memory budgets: RSS growth against the configured budget", [
        "Every entry is a few 4-byte characters (`\U0001F600`), the worst case for budgets "
        "that counted string lengths and the dicts around them. The attack sends several times "
        "the budget; RSS (VmRSS) is read before and after it, with the server's own charge "
        "(`rawws_inbox_bytes`, `rawws_history_bytes`) beside it. The issue's goal: growth "
        "within 1.5x the budget.", "", *rows])


# --- bystanders' latency during an attack -----------------------------------------------------

LEVELS = 15
TOPIC = ".".join(["a"] * LEVELS) + ".b"


def topic_attack_patterns() -> list[str]:
    """Every {a,*}^15.b pattern, fewest stars first (those a server's caps let through)."""
    patterns = [".".join("*" if bits >> i & 1 else "a" for i in range(LEVELS)) + ".b"
                for bits in range(2**LEVELS)]
    return sorted(patterns, key=lambda p: p.count("*"))


class Bystanders:
    """``count`` connections from 127.0.0.2, each sending ``{"type": "ping"}`` every
    ``interval`` seconds and timing the reply (a request the server answers at once: what it
    measures is the server's availability)."""

    def __init__(self, port: int, count: int = 10, interval: float = 0.1) -> None:
        self.port = port
        self.count = count
        self.interval = interval
        self.clients: list[RawClient] = []

    async def open(self) -> None:
        self.clients = [await RawClient.welcomed(self.port, f"bystander{i}",
                                                 local_host="127.0.0.2")
                        for i in range(self.count)]

    async def measure(self, seconds: float) -> list[float]:
        """Latencies in seconds (a reply that never came within 10 s counts as 10 s)."""
        samples: list[float] = []
        stop = time.monotonic() + seconds

        async def one(client: RawClient, offset: float) -> None:
            await asyncio.sleep(offset)
            n = 0
            while time.monotonic() < stop:
                started = time.perf_counter()
                await client.send_all([{"type": "ping", "id": n}])
                try:
                    await client.read_frames(client.frames + 1, timeout=NO_ANSWER)
                    samples.append(time.perf_counter() - started)
                except TimeoutError:
                    samples.append(NO_ANSWER)
                    return
                n += 1
                await asyncio.sleep(max(0.0, self.interval - (time.perf_counter() - started)))

        await asyncio.gather(*(one(c, i * self.interval / self.count)
                               for i, c in enumerate(self.clients)))
        return samples

    def close(self) -> None:
        for client in self.clients:
            client.close()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


NO_ANSWER = 10.0  # seconds: a ping unanswered this long counts as this, and ends its loop


def _ms(seconds: float) -> str:
    if seconds >= NO_ANSWER:
        return "no answer in 10 s"
    return f"{seconds * 1000:.2f} ms" if seconds < 0.001 else f"{seconds * 1000:.1f} ms"


def _latency_row(label: str, samples: list[float]) -> str:
    if not samples:
        return f"| {label} | 0 | — | — | — | — |"
    lost = sum(1 for x in samples if x >= NO_ANSWER)
    return (f"| {label} | {len(samples):,} | {_ms(percentile(samples, 0.5))} | "
            f"{_ms(percentile(samples, 0.99))} | {_ms(max(samples))} | {lost} |")


async def _with_attacker(kind: str, port: int, report: Report) -> asyncio.subprocess.Process:
    attacker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.attack", "--attacker", kind, "--port", str(port),
        *(["--quick"] if report.quick else []), cwd=HERE.parent,
        stdout=asyncio.subprocess.PIPE)
    assert attacker.stdout is not None
    line = await asyncio.wait_for(attacker.stdout.readline(), 300)
    if not line.startswith(b"READY"):
        raise RuntimeError(f"the attacker did not start: {line!r}")
    report.notes.append(f"{kind} attacker: {line.decode().strip()[6:]}")
    return attacker


async def _end_attacker(attacker: asyncio.subprocess.Process) -> str:
    attacker.terminate()
    out, _ = await asyncio.wait_for(attacker.communicate(), 60)
    return out.decode().strip()


async def _metrics_if_answered(port: int) -> dict[str, float]:
    """The server's metrics, or {} if a stalled server does not answer within 15 s."""
    try:
        async with asyncio.timeout(15):
            return await scrape_metrics(port)
    except TimeoutError:
        return {}


async def scenario_topics(report: Report) -> None:
    seconds = 4.0 if report.quick else 15.0
    server, port = await serve(cwd=report.server_root)
    try:
        bystanders = Bystanders(port)
        await bystanders.open()
        await bystanders.measure(1.0)  # warm-up
        quiet = await bystanders.measure(seconds)
        attacker = await _with_attacker("topics", port, report)
        try:
            attacked = await bystanders.measure(seconds)
            found = await _metrics_if_answered(port)
        finally:
            done = await _end_attacker(attacker)
        bystanders.close()
    finally:
        await stop(server)
    shapes = found.get("rawws_pattern_shapes")
    count = int(found.get("rawws_subscriptions", found.get("rawws_topics", 0)))
    held = (f"the server had {count:,} subscriptions"
            + (f" in {int(shapes)} wildcard shapes" if shapes is not None else "")
            if found else "the server did not answer GET /metrics within 15 s")
    report.section("Topic-pattern attack: bystanders' latency", [
        "Bystanders: 10 connections, a `ping` request every 100 ms each, round trip timed. "
        "Attack: 240 connections subscribe every `{a,*}.{a,*}....b` pattern (15 levels) the "
        "server accepts (fewest `*` first, 100 per connection) and read what they get; 5 "
        "others publish `a.a....a.b` at their rate limit (20/s each). Goal: p99 < 50 ms "
        f"during the attack. {report.notes[-1]}; {done}; {held}.", "",
        "| bystanders | samples | p50 | p99 | max | unanswered |", "|---|---|---|---|---|---|",
        _latency_row("without attack", quiet), _latency_row("during the attack", attacked)])


async def scenario_ping(report: Report) -> None:
    seconds = 4.0 if report.quick else 15.0
    server, port = await serve(cwd=report.server_root)
    try:
        bystanders = Bystanders(port)
        await bystanders.open()
        await bystanders.measure(1.0)
        quiet = await bystanders.measure(seconds)
        base = server.rss()
        attacker = await _with_attacker("ping", port, report)
        try:
            attacked = await bystanders.measure(seconds)
            grown = server.rss() - base
        finally:
            done = await _end_attacker(attacker)
        bystanders.close()
    finally:
        await stop(server)
    report.section("Ping flood: bystanders' latency", [
        "The same bystanders while one peer (receive buffer 4 KiB) sends WebSocket pings as "
        f"fast as its socket takes them and never reads. {done}. Server RSS growth during "
        f"the flood: {grown / MiB:.1f} MiB.", "",
        "| bystanders | samples | p50 | p99 | max | unanswered |", "|---|---|---|---|---|---|",
        _latency_row("without attack", quiet), _latency_row("during the ping flood", attacked)])


# --- rooms and replies ------------------------------------------------------------------------

FORBIDDEN = 'rawws_errors_total{code="forbidden"}'
CLOSED_1013 = 'rawws_closes_total{code="1013"}'


async def scenario_rooms(report: Report) -> None:
    server, port = await serve(cwd=report.server_root)
    try:
        clients = [await RawClient.welcomed(port, f"m{c}") for c in range(200)]
        started = time.monotonic()
        await asyncio.gather(*(c.request([{"type": "join", "room": f"r{i}-{n}"}
                                          for n in range(50)]) for i, c in enumerate(clients)))
        took = time.monotonic() - started
        found = await scrape_metrics(port)
        for c in clients:
            c.close()
    finally:
        await stop(server)
    report.section("Rooms one address creates", [
        "One address (127.0.0.1) opens 200 connections and joins 50 new rooms on each "
        "(10,000 asked for), with the server's default limits.", "",
        "| rooms asked for | rooms created | refused (`forbidden`) | took |", "|---|---|---|---|",
        f"| 10,000 | {int(found['rawws_rooms']):,} | "
        f"{int(found.get(FORBIDDEN, 0)):,} | {took:.2f} s |"])


async def scenario_replies(report: Report) -> None:
    server, port = await serve("--history-size", "1000", "--slow-consumer-grace", "600",
                               "--rate", "1e6", "--burst", "1e6", "--no-compression",
                               cwd=report.server_root)
    readers = 8
    try:
        filler = await RawClient.welcomed(port, "filler")
        await filler.request([{"type": "join", "room": "big"}] + [
            {"type": "message", "room": "big", "content": EMOJI * 4000} for _ in range(1000)])
        received = (await scrape_metrics(port))["rawws_messages_received_total"]
        base = server.rss()
        stalled = [await RawClient.open(port, f"/ws?user_id=s{i}", receive_buffer=4096)
                   for i in range(readers)]
        for client in stalled:
            await client.send_all([{"type": "join", "room": "big", "since": 0}] + [
                {"type": "history", "room": "big", "since": n} for n in range(0, 1000, 25)])
        received += readers * 41
        async with asyncio.timeout(120):
            while (await scrape_metrics(port))["rawws_messages_received_total"] < received:
                await asyncio.sleep(0.05)
        held = server.rss() - base
        found = await scrape_metrics(port)
        for client in [*stalled, filler]:
            client.close()
    finally:
        await stop(server)
    report.section("Readers that never read: what the server holds", [
        f"{readers} connections that never read (receive buffer 4 KiB) each send a `join` with "
        "`since: 0` to a room keeping 1,000 messages of 16 KB (4-byte characters), then 40 "
        "`history` requests (10 MB of pages). Slow-consumer limit: 64 KiB + 1 MiB per "
        "connection.", "",
        "| readers | RSS held | per reader | closed 1013 |", "|---|---|---|---|",
        f"| {readers} | {held / MiB:.1f} MiB | {held / readers / MiB:.2f} MiB | "
        f"{int(found.get(CLOSED_1013, 0))} |"])


# --- the attackers (child processes) ------------------------------------------------------------


async def _drain(client: RawClient) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while await client.reader.read(1 << 16):
            pass


async def attack_topics(port: int, quick: bool) -> None:
    patterns = topic_attack_patterns()
    subscribers = [await RawClient.welcomed(port, f"m{i}") for i in range(240)]
    accepted = refused = 0
    for i, client in enumerate(subscribers):
        mine = patterns[i * 100:(i + 1) * 100]
        replies = client.keep_all()
        await client.request([{"type": "subscribe", "topics": mine[:50]},
                              {"type": "subscribe", "topics": mine[50:]}])
        for payload in replies:
            if b'"subscribed"' in payload:
                accepted += 50
            else:
                refused += 50
        client.keep = None
    drains = [asyncio.ensure_future(_drain(c)) for c in subscribers]
    publishers = [await RawClient.welcomed(port, f"p{i}", local_host="127.0.0.3")
                  for i in range(5)]
    drains += [asyncio.ensure_future(_drain(c)) for c in publishers]
    print(f"READY {accepted:,} patterns accepted, {refused:,} refused", flush=True)
    published = 0
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    frame = text_frame({"type": "publish", "topic": TOPIC, "message": "x"})
    while not stop.is_set():
        for client in publishers:
            client.writer.write(frame)
        published += len(publishers)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)  # 20 per second each: the rate limit
    print(f"{published:,} publishes sent", flush=True)
    for task in drains:
        task.cancel()


async def attack_ping(port: int, quick: bool) -> None:
    flooder = await RawClient.open(port, "/ws?user_id=flooder", receive_buffer=4096)
    ping = struct.pack("!BB", 0x89, 0x84) + b"\0\0\0\0" + b"ping"
    chunk = ping * 4096
    print("READY one connection, pings of 4 bytes", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    sent = 0
    with contextlib.suppress(ConnectionError, OSError):
        while not stop.is_set():
            flooder.writer.write(chunk)
            sent += 4096
            try:
                await asyncio.wait_for(flooder.writer.drain(), 1.0)
            except TimeoutError:
                pass
            await asyncio.sleep(0)
    print(f"{sent:,} pings sent", flush=True)


ATTACKERS: dict[str, Callable[[int, bool], Awaitable[None]]] = {
    "topics": attack_topics,
    "ping": attack_ping,
}

SCENARIOS: dict[str, Callable[[Report], Awaitable[None]]] = {
    "memory": scenario_memory,
    "topics": scenario_topics,
    "ping": scenario_ping,
    "rooms": scenario_rooms,
    "replies": scenario_replies,
}


def _revision(root: Path) -> str:
    """What a checkout is: the REVISION file ``git archive`` users may leave, else its path."""
    marker = root / "REVISION"
    return marker.read_text().strip() if marker.is_file() else str(root)


def _write(report: Report, started: dict[str, Any], path: Path) -> None:
    machine = _machine()
    root = f" (server from `{_revision(report.server_root)}`)" if report.server_root else ""
    lines = [
        f"# rawws attack scenarios{root}",
        "",
        "Generated by `python -m benchmarks.attack` ([attack.py](attack.py)); how each "
        "scenario works is in its docstring and in [README.md](README.md#attack-scenarios). "
        "These are measurements, not tests: the limits they exercise are proven by the tests "
        "named in [docs/security.md](../docs/security.md).",
        "",
        *([f"* Each scenario was measured first against `{_revision(started['before'])}` "
           "(\"before\"), then against this commit (\"now\"), on the same machine, one "
           "after the other."] if started.get("before") else []),
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
    parser.add_argument("--server-root", type=Path, default=None,
                        help="run the server from this checkout of rawws (before figures)")
    parser.add_argument("--before", type=Path, default=None, metavar="DIR",
                        help="run each scenario against the checkout in DIR too, first")
    parser.add_argument("--attacker", choices=sorted(ATTACKERS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.attacker:
        asyncio.run(ATTACKERS[args.attacker](args.port, args.quick))
        return 0
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    report = Report(quick=args.quick, server_root=args.server_root)
    roots: list[Path | None] = [args.server_root]
    if args.before is not None:
        roots = [args.before.resolve(), args.server_root]
    started = {"time": time.time(), "load": os.getloadavg(), "busy": _busiest_others(),
               "before": args.before}

    async def run_all() -> None:
        for name in names:
            for root in roots:  # with --before: before, then now, one section each
                report.server_root = root
                if len(roots) > 1:
                    report.label = f"before ({_revision(root)})" if root else "now"
                await SCENARIOS[name](report)
        report.server_root = args.server_root
        report.label = ""

    asyncio.run(run_all())
    if not args.no_write:
        _write(report, started, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
