"""The benchmark driver: every server run the same way, rounds interleaved, ratios round by round.

    python -m benchmarks.run --quick            # make bench       (under 5 minutes)
    python -m benchmarks.run --full             # make bench-full
    python -m benchmarks.run --quick --scenarios echo,handshake --servers rawws,websockets

How a figure is made:

* Each server runs in its own process, pinned to the first CPU; the load generator
  (``benchmarks/loadgen.py``: picows clients on uvloop) runs in one long-lived process pinned to
  the second CPU, and this driver waits beside it. Servers print ``READY <port>`` when listening.
* For one configuration (say 64 B over 32 connections) every server is measured once per round, in
  the same order (A B C D E A B C D E ...). Round 0 is a warm-up and is dropped; each figure is the
  median of the rounds that follow, printed with its min-max spread.
* The ratio subject/peer (subject = rawws) is computed round by round, from the two measurements
  of the same round, and reported as the median ratio with its min-max spread.
* The ``null`` server (``servers/null.py``, uvloop, no unmasking) is the load generator's ceiling:
  whatever the load generator reaches against it is more than any server can be measured at.
* Server and load generator CPU use during each window are recorded: a server that is not near
  one full core while the load generator is, was not the bottleneck.

Results go to ``benchmarks/results.json`` (every round) and are rendered by
:mod:`benchmarks.report` to ``benchmarks/RESULTS.md`` and ``benchmarks/charts/*.png``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import report
from .disturb import RETRIES, disturbance, disturbed
from .servers._common import raise_nofile_limit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
KiB = 1024
MiB = 1024 * 1024

# name -> (module under benchmarks.servers, extra arguments)
SERVERS: dict[str, tuple[str, list[str]]] = {
    "null": ("null", ["--uvloop"]),
    "rawws": ("rawws_server", []),
    # The same server with the optional C accelerator switched off (RAWWS_PURE_PYTHON=1).
    "rawws-pure": ("rawws_server", []),
    "rawws-chat": ("rawws_chat_server", []),
    "websockets": ("websockets_server", []),
    "aiohttp": ("aiohttp_server", []),
    "picows": ("picows_server", []),
    "floor": ("floor", []),
    "floor-dr": ("floor", ["--data-received"]),
    # A FastAPI echo endpoint under uvicorn, one per --ws choice (the "asgi" scenario).
    "asgi-rawws": ("asgi_server", ["--ws", "rawws"]),
    "asgi-websockets-sansio": ("asgi_server", ["--ws", "websockets-sansio"]),
    "asgi-wsproto": ("asgi_server", ["--ws", "wsproto"]),
}
#: Environment added for a server (the rest is inherited).
SERVER_ENV: dict[str, dict[str, str]] = {"rawws-pure": {"RAWWS_PURE_PYTHON": "1"}}
REFERENCE = "null"  # the load generator's ceiling, not a contender
PEERS = ("websockets", "aiohttp", "picows", "floor")

# -- processes ----------------------------------------------------------------------------------

_CHILDREN: list[subprocess.Popen[bytes]] = []


def _cleanup() -> None:
    for proc in _CHILDREN:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 3
    for proc in _CHILDREN:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _CHILDREN.clear()


def _on_signal(signum: int, frame: Any) -> None:
    _cleanup()
    sys.exit(128 + signum)


def _pinned(core: int) -> Any:
    def preexec() -> None:
        os.sched_setaffinity(0, {core})

    return preexec


def _readline(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """One line of the child's stdout within ``timeout`` seconds ('' on timeout or exit)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return ""
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return ""
        chunk = os.read(fd, 1)
        if not chunk:
            return ""
        buf += chunk
    return buf.decode()


class Server:
    """One server process, pinned, started and stopped by the driver."""

    def __init__(self, name: str, core: int, logdir: Path) -> None:
        self.name = name
        module, extra = SERVERS[name]
        self.log = logdir / f"{name}.log"
        self.proc = subprocess.Popen(
            [PY, "-m", f"benchmarks.servers.{module}", "--port", "0", *extra],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self.log.open("ab"), preexec_fn=_pinned(core),
            env={**os.environ, **SERVER_ENV.get(name, {})},
        )
        _CHILDREN.append(self.proc)
        line = _readline(self.proc, 20)
        if not line.startswith("READY "):
            self.stop()
            tail = self.log.read_text(errors="replace")[-600:]
            raise RuntimeError(f"server {name} did not start: {line!r}\n{tail}")
        self.port = int(line.split()[1])
        self.pid = self.proc.pid

    def rss(self) -> int:
        """Resident set size in bytes (from /proc)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc in _CHILDREN:
            _CHILDREN.remove(self.proc)


class LoadGen:
    """The long-lived load generator process, spoken to in JSON lines."""

    def __init__(self, core: int, logdir: Path) -> None:
        self.core = core
        self.logdir = logdir
        self.proc: subprocess.Popen[bytes] | None = None
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "benchmarks.loadgen"], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=(self.logdir / "loadgen.log").open("ab"),
            preexec_fn=_pinned(self.core),
        )
        _CHILDREN.append(self.proc)
        if _readline(self.proc, 20).strip() != "READY":
            raise RuntimeError("the load generator did not start; see loadgen.log")

    def call(self, timeout: float = 120, **cmd: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        line = _readline(self.proc, timeout)
        if not line:  # stuck or dead: replace it, report the round as failed
            self.proc.kill()
            self.proc.wait()
            _CHILDREN.remove(self.proc)
            self._start()
            return {"error": f"load generator gave no answer in {timeout} s"}
        return json.loads(line)  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc in _CHILDREN:
            _CHILDREN.remove(self.proc)


# -- plan ---------------------------------------------------------------------------------------


@dataclass
class Plan:
    mode: str
    rounds: int  # measured rounds, after one warm-up round
    echo_configs: list[tuple[int, int]]
    echo_warmup: float
    echo_duration: float
    # subscribers, visits, phases of (messages per burst, bursts per visit, paced)
    fanout_configs: list[tuple[int, int, list[tuple[int, int, bool]]]]
    idle_conns: int
    idle_rounds: int
    handshake_concurrency: int
    handshake_duration: float
    deflate_conns: list[int]
    micro_scale: float
    scenarios: list[str] = field(default_factory=list)


def make_plan(mode: str) -> Plan:
    sizes = [64, 1 * KiB, 64 * KiB, 1 * MiB]
    # Every size over 1 and 32 connections, and 64 KiB over 8 (issue 12's large-message target).
    echo = [(s, c) for s in sizes for c in (1, 32)] + [(64 * KiB, 8)]
    if mode == "quick":
        return Plan(
            mode, rounds=5, echo_configs=echo,
            echo_warmup=0.05, echo_duration=0.15,
            fanout_configs=[(1000, 3, [(20, 2, False)]),
                            (10000, 1, [(4, 5, False), (2, 5, True)])],
            idle_conns=10000, idle_rounds=1,
            handshake_concurrency=16, handshake_duration=0.3,
            deflate_conns=[32], micro_scale=0.2,
        )
    return Plan(
        mode, rounds=9, echo_configs=echo,
        echo_warmup=0.2, echo_duration=0.6,
        fanout_configs=[(1000, 9, [(100, 1, False), (20, 1, True)]),
                        (10000, 3, [(20, 3, False), (5, 3, True)])],
        idle_conns=10000, idle_rounds=5,
        handshake_concurrency=16, handshake_duration=1.0,
        deflate_conns=[1, 32], micro_scale=1.0,
    )


SCENARIOS = ("micro", "echo", "deflate", "handshake", "fanout", "idle", "asgi")
#: The asgi scenario: FastAPI echo under uvicorn, rawws.asgi against uvicorn's two classes.
ASGI_CONFIGS = [(64, 32), (64 * KiB, 32)]
SERVERS_FOR = {
    "echo": ["null", "rawws", "rawws-pure", "websockets", "aiohttp", "picows", "floor",
             "floor-dr"],
    "deflate": ["null", "rawws", "websockets", "aiohttp", "floor"],  # picows: no permessage-deflate
    "handshake": ["null", "rawws", "websockets", "aiohttp", "picows", "floor"],
    "fanout": ["null", "rawws", "rawws-chat", "websockets", "aiohttp", "picows", "floor"],
    "idle": ["rawws", "websockets", "aiohttp", "picows", "floor"],
    "asgi": ["null", "asgi-rawws", "asgi-websockets-sansio", "asgi-wsproto"],
}


# -- the run ------------------------------------------------------------------------------------


class Runner:
    def __init__(self, plan: Plan, servers: list[str], logdir: Path) -> None:
        self.plan = plan
        self.servers = servers
        self.logdir = logdir
        cpus = sorted(os.sched_getaffinity(0))
        self.server_core = cpus[0]
        self.load_core = cpus[1] if len(cpus) > 1 else cpus[0]
        os.sched_setaffinity(0, {self.load_core})  # the driver mostly waits; keep it off the server
        self.loadgen = LoadGen(self.load_core, logdir)
        self.results: dict[str, Any] = {}

    def among(self, scenario: str) -> list[str]:
        return [s for s in SERVERS_FOR[scenario] if s in self.servers]

    def start(self, name: str) -> Server | None:
        try:
            return Server(name, self.server_core, self.logdir)
        except RuntimeError as exc:
            print(f"  ! {exc}", flush=True)
            return None

    def interleaved(
        self, scenario: str, key: str, names: list[str], measure: Any, rounds: int
    ) -> dict[str, list[dict[str, Any]]]:
        """Measure every server once per round, in order; round 0 is the warm-up (dropped).
        ``measure(server, warm_up)`` may run a shorter window when ``warm_up`` is true."""
        servers = {n: s for n in names if (s := self.start(n)) is not None}
        rows: dict[str, list[dict[str, Any]]] = {n: [] for n in servers}
        try:
            for r in range(rounds + 1):
                for name, server in servers.items():
                    if not server.alive():
                        result: dict[str, Any] = {"error": "server died"}
                    else:
                        result = self._measure_unstalled(measure, server, r == 0)
                    if r > 0:
                        rows[name].append(result)
                line = "  ".join(
                    f"{n}={_short(rows[n][-1]) if r > 0 else 'warm-up'}" for n in servers
                )
                print(f"  {key} round {r}: {line}", flush=True)
        finally:
            for server in servers.values():
                server.stop()
        self.results.setdefault(scenario, {})[key] = rows
        return rows

    @staticmethod
    def _measure_unstalled(measure: Any, server: Server, warm: bool) -> dict[str, Any]:
        """One measurement, and up to RETRIES more if the window was disturbed (see
        benchmarks/disturb.py); the least disturbed attempt is kept, with how many were made."""
        best = measure(server, warm)
        tries = 1
        while not warm and disturbed(best) and tries <= RETRIES:
            again = measure(server, warm)
            tries += 1
            if "error" not in again and disturbance(again) <= disturbance(best):
                best = again
        best["tries"] = tries
        return best

    # -- scenarios --

    def echo(self) -> None:
        p = self.plan
        names = self.among("echo")
        for size, conns in p.echo_configs:
            these = [n for n in names if n != "floor-dr" or size == 64]
            budget = 60 + size * conns / (20 * MiB)

            def measure(server: Server, warm: bool, size: int = size, conns: int = conns,
                        budget: float = budget) -> dict[str, Any]:
                return self.loadgen.call(
                    op="echo", port=server.port, server_pid=server.pid, size=size, conns=conns,
                    warmup=p.echo_warmup, duration=0.05 if warm else p.echo_duration,
                    timeout=budget,
                )

            self.interleaved("echo", f"{_size(size)} x{conns}", these, measure, p.rounds)

    def asgi(self) -> None:
        """The echo scenario's measurement, for a FastAPI endpoint under uvicorn with each
        WebSocket class (rawws.asgi, websockets-sansio, wsproto)."""
        p = self.plan
        for size, conns in ASGI_CONFIGS:
            budget = 60 + size * conns / (20 * MiB)

            def measure(server: Server, warm: bool, size: int = size, conns: int = conns,
                        budget: float = budget) -> dict[str, Any]:
                return self.loadgen.call(
                    op="echo", port=server.port, server_pid=server.pid, size=size, conns=conns,
                    warmup=p.echo_warmup, duration=0.05 if warm else p.echo_duration,
                    timeout=budget,
                )

            self.interleaved("asgi", f"{_size(size)} x{conns}", self.among("asgi"), measure,
                             p.rounds)

    def deflate(self) -> None:
        p = self.plan
        for conns in p.deflate_conns:
            def measure(server: Server, warm: bool, conns: int = conns) -> dict[str, Any]:
                return self.loadgen.call(
                    op="echo_deflate", port=server.port, server_pid=server.pid, conns=conns,
                    warmup=p.echo_warmup, duration=0.05 if warm else p.echo_duration,
                )

            self.interleaved("deflate", f"1 KiB JSON x{conns}", self.among("deflate"), measure,
                             p.rounds)

    def handshake(self) -> None:
        p = self.plan

        def measure(server: Server, warm: bool) -> dict[str, Any]:
            return self.loadgen.call(
                op="handshake", port=server.port, server_pid=server.pid,
                concurrency=p.handshake_concurrency, warmup=0.1,
                duration=0.1 if warm else p.handshake_duration,
            )

        self.interleaved("handshake", f"x{p.handshake_concurrency} concurrent",
                         self.among("handshake"), measure, p.rounds)

    def fanout(self) -> None:
        """Every server is started once per subscriber count. A visit: ``subs`` subscribers
        connect to one server, one synchronising message (every subscriber registered and warm),
        then for each phase (messages, bursts, paced) its timed bursts, and the subscribers
        leave. Visits are interleaved across servers (A B C A B C ...); a round is one burst."""
        names = self.among("fanout")
        for subs, visits, phases in self.plan.fanout_configs:
            keys = [f"{subs} subscribers" + (", paced" if paced else "") for _, _, paced in phases]
            t0 = time.monotonic()
            servers = {n: s for n in names if (s := self.start(n)) is not None}
            print(f"  ({len(servers)} servers started in {time.monotonic() - t0:.1f} s)")
            rows: dict[str, dict[str, list[dict[str, Any]]]] = {k: {n: [] for n in servers}
                                                                for k in keys}
            try:
                for v in range(visits):
                    for name, server in servers.items():
                        t0 = time.monotonic()
                        result = self.loadgen.call(
                            op="fanout", port=server.port, server_pid=server.pid, subs=subs,
                            phases=phases, timeout=300, chat=name == "rawws-chat",
                        ) if server.alive() else {"error": "server died"}
                        for i, (key, (_, bursts, _)) in enumerate(zip(keys, phases, strict=True)):
                            if "error" in result:
                                samples = [result] * bursts
                            else:
                                samples = [{**b, "setup_secs": result["setup_secs"]}
                                           for b in result["phases"][i]]
                            rows[key][name].extend(samples)
                            shown = " ".join(_short(s) for s in samples)
                            print(f"  {key} visit {v + 1}: {name}={shown} "
                                  f"({time.monotonic() - t0:.1f} s)", flush=True)
            finally:
                t0 = time.monotonic()
                for server in servers.values():
                    server.stop()
                print(f"  (servers stopped in {time.monotonic() - t0:.1f} s)")
            for key in keys:
                self.results.setdefault("fanout", {})[key] = rows[key]

    def idle(self) -> None:
        """RSS growth per connection, measured on a fresh server per round: the slope between
        one tenth of the connections and all of them (lazy imports and first-use caches fall
        in the first tenth)."""
        p = self.plan
        n = p.idle_conns
        for deflate in (False, True):
            key = "permessage-deflate offered" if deflate else "no compression"
            names = [s for s in self.among("idle") if not (deflate and s == "picows")]
            rows: dict[str, list[dict[str, Any]]] = {s: [] for s in names}
            for r in range(p.idle_rounds):
                for name in names:
                    server = self.start(name)
                    if server is None:
                        continue
                    try:
                        rows[name].append(self._idle_once(server, n, deflate))
                    finally:
                        self.loadgen.call(op="idle_close")
                        server.stop()
                    print(f"  idle {key} round {r + 1}: {name}={_short(rows[name][-1])}",
                          flush=True)
            self.results.setdefault("idle", {})[key] = rows

    def _idle_once(self, server: Server, n: int, deflate: bool) -> dict[str, Any]:
        time.sleep(0.2)
        rss0 = server.rss()
        first = self.loadgen.call(op="idle_open", port=server.port, conns=n // 10,
                                  deflate=deflate, timeout=120)
        if "error" in first:
            return first
        time.sleep(0.3)
        rss1 = server.rss()
        rest = self.loadgen.call(op="idle_open", port=server.port, conns=n - n // 10,
                                 deflate=deflate, timeout=300)
        if "error" in rest:
            return rest
        time.sleep(0.5)
        rss2 = server.rss()
        per_conn = (rss2 - rss1) / (n - n // 10)
        return {
            "rate": per_conn, "rss0": rss0, "rss_tenth": rss1, "rss_all": rss2,
            "total_per_conn": (rss2 - rss0) / n, "conns": n,
            "negotiated": first["deflate"] + rest["deflate"],
            "open_secs": first["secs"] + rest["secs"],
        }

    def micro(self) -> None:
        out = subprocess.run(
            [PY, "-m", "benchmarks.micro", "--json", "--scale", str(self.plan.micro_scale)],
            cwd=ROOT, capture_output=True, timeout=600, preexec_fn=_pinned(self.server_core),
        )
        if out.returncode != 0:
            print(out.stderr.decode()[-2000:], flush=True)
            self.results["micro"] = {"error": out.stderr.decode()[-2000:]}
            return
        self.results["micro"] = json.loads(out.stdout)
        print(report.micro_text(self.results["micro"]), flush=True)


def _size(n: int) -> str:
    if n >= MiB:
        return f"{n // MiB} MiB"
    if n >= KiB:
        return f"{n // KiB} KiB"
    return f"{n} B"


def _short(result: dict[str, Any]) -> str:
    if "error" in result:
        return "ERROR"
    rate = result["rate"]
    return f"{rate / 1000:.1f}k" if rate >= 1000 else f"{rate:.0f}"


# -- environment --------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("rawws", "websockets", "aiohttp", "picows", "uvloop", "matplotlib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": model, "cpus": os.cpu_count(), "memory_gib": round(mem / 2**30, 1),
        "kernel": platform.release(), "platform": platform.platform(),
    }


def _busiest_others(limit: int = 4) -> list[str]:
    """The processes (not ours) using CPU right now, sampled over 0.5 s: noise on a shared box."""
    ours = {os.getpid(), *(p.pid for p in _CHILDREN)}

    def sample() -> dict[int, tuple[float, str]]:
        out = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in ours:
                continue
            try:
                stat = (entry / "stat").read_bytes()
                name = stat[stat.index(b"(") + 1 : stat.rindex(b")")].decode()
                fields = stat.rpartition(b")")[2].split()
                out[int(entry.name)] = (int(fields[11]) + int(fields[12]), name)
            except (OSError, ValueError, IndexError):
                continue
        return out

    a = sample()
    time.sleep(0.5)
    b = sample()
    tick = os.sysconf("SC_CLK_TCK")
    busy = sorted(
        ((b[p][0] - a[p][0]) / tick / 0.5, b[p][1]) for p in b if p in a and b[p][0] > a[p][0]
    )[::-1]
    return [f"{name} {share:.0%}" for share, name in busy[:limit]]


def _git_commit() -> str:
    """HEAD, and whether rawws/ had uncommitted changes (what was measured is the work tree)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "rawws"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"{head} + uncommitted changes in rawws/" if dirty else head


def rawws_available() -> bool:
    check = "import rawws; rawws.serve; rawws.Listener; rawws.broadcast"
    return subprocess.run([PY, "-c", check], cwd=ROOT, capture_output=True).returncode == 0


def chat_available() -> bool:
    check = "from rawws.chat.server import ChatConfig, ChatServer"
    return subprocess.run([PY, "-c", check], cwd=ROOT, capture_output=True).returncode == 0


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_const", dest="mode", const="quick")
    group.add_argument("--full", action="store_const", dest="mode", const="full")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated, among {', '.join(SCENARIOS)}")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help=f"comma-separated, among {', '.join(SERVERS)}")
    parser.add_argument("--rounds", type=int, help="measured rounds (after the warm-up)")
    parser.add_argument("--subject", default="rawws",
                        help="whose ratios to the peers are computed (default rawws)")
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    parser.add_argument("--markdown", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--charts", type=Path, default=HERE / "charts")
    args = parser.parse_args(argv)
    plan = make_plan(args.mode or "quick")
    if args.rounds:
        plan.rounds = args.rounds
        plan.idle_rounds = min(plan.idle_rounds, args.rounds)
    plan.scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(plan.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    servers = [s for s in args.servers.split(",") if s]
    unknown = set(servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    notes = []
    if "rawws" in servers and not rawws_available():
        servers.remove("rawws")
        notes.append("rawws could not be imported with serve/Listener/broadcast: not measured.")
        print("! rawws is not available yet: measuring the peers only", flush=True)
    if "rawws-chat" in servers and not chat_available():
        servers.remove("rawws-chat")
        notes.append("rawws.chat could not be imported: its hub was not measured.")
    if len(os.sched_getaffinity(0)) < 2:
        notes.append("Only one CPU: server and load generator share it; figures are not valid.")

    atexit.register(_cleanup)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    raise_nofile_limit()
    logdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"rawws-bench-{os.getpid()}"
    logdir.mkdir(parents=True, exist_ok=True)

    started = time.time()
    data: dict[str, Any] = {
        "mode": plan.mode, "rounds": plan.rounds, "plan": plan.__dict__, "subject": args.subject,
        "servers": servers, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": _git_commit(), "versions": _versions(), "machine": _machine(),
        "load_before": os.getloadavg(), "busy_before": _busiest_others(), "notes": notes,
    }
    print(f"rawws benchmarks, {plan.mode} pass; server logs in {logdir}", flush=True)
    runner = Runner(plan, servers, logdir)
    data["cores"] = {"server": runner.server_core, "loadgen": runner.load_core}
    try:
        for scenario in plan.scenarios:
            t0 = time.monotonic()
            print(f"== {scenario}", flush=True)
            getattr(runner, scenario)()
            data.setdefault("durations", {})[scenario] = round(time.monotonic() - t0, 1)
    finally:
        runner.loadgen.stop()
        _cleanup()
    data["results"] = runner.results
    data["load_after"] = os.getloadavg()
    data["busy_after"] = _busiest_others()
    data["elapsed"] = round(time.time() - started, 1)
    args.results.write_text(json.dumps(data, indent=1))
    text = report.render(data, args.charts, args.markdown.parent)
    args.markdown.write_text(text)
    print(report.summary(data), flush=True)
    print(f"wrote {args.markdown}, {args.results}, {args.charts}/ in {data['elapsed']} s",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
