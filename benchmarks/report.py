"""Turn ``benchmarks/results.json`` into ``RESULTS.md``, PNG charts and the PASS/SHORT summary.

    python -m benchmarks.report            # re-render from the last results.json

Statistics: a figure is the median of the measured rounds, shown with its min-max spread; a ratio
subject/peer is computed per round (same round, same configuration) and shown the same way.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from .disturb import disturbed

HERE = Path(__file__).resolve().parent

# Scenario -> (unit, label of the measured rate, higher is better)
UNITS = {
    "echo": ("round trips/s", True),
    "deflate": ("round trips/s", True),
    "handshake": ("handshakes/s", True),
    "fanout": ("deliveries/s", True),
    "idle": ("bytes/connection", False),
    "asgi": ("round trips/s", True),
}
TITLES = {
    "echo": "Echo, request/response, binary (one message in flight per connection)",
    "deflate": "Echo of 1 KiB JSON-like text with permessage-deflate",
    "handshake": "Handshakes (connect, one 64-byte message and its echo, close handshake)",
    "fanout": "Fan-out: one publisher, every subscriber gets every message",
    "idle": "Idle memory: server RSS growth per open connection",
    "asgi": "ASGI: a FastAPI echo endpoint under uvicorn, by --ws class (binary, one message in "
            "flight per connection)",
}
#: Whose ratios a scenario's tables show when it is not the run's subject.
SCENARIO_SUBJECT = {"asgi": "asgi-rawws"}

# (label, scenario, configuration key or None for the first one, peer, threshold (None: reported,
# no target), higher is better[, subject when not the run's subject])
TARGETS = [
    # Issue 12 (the sans-I/O core; the C accelerator built, as `make venv` builds it).
    ("64 B echo, 32 conns, vs websockets", "echo", "64 B x32", "websockets", 2.0, True),
    ("64 B echo, 32 conns, vs picows", "echo", "64 B x32", "picows", 0.80, True),
    ("64 B echo, 32 conns, vs the pure-Python floor", "echo", "64 B x32", "floor", 0.92, True),
    ("1 KiB echo, 32 conns, vs picows", "echo", "1 KiB x32", "picows", 0.75, True),
    ("64 KiB echo, 8 conns, vs websockets", "echo", "64 KiB x8", "websockets", 1.0, True),
    ("1 MiB echo, 1 conn, vs websockets", "echo", "1 MiB x1", "websockets", 1.0, True),
    # The same without the accelerator (RAWWS_PURE_PYTHON=1): reported beside, no target.
    ("64 KiB echo, 8 conns, pure Python, vs websockets", "echo", "64 KiB x8", "websockets", None,
     True, "rawws-pure"),
    ("1 MiB echo, 1 conn, pure Python, vs websockets", "echo", "1 MiB x1", "websockets", None,
     True, "rawws-pure"),
    ("64 B echo, 32 conns, pure Python, vs picows", "echo", "64 B x32", "picows", None, True,
     "rawws-pure"),
    # Issue 6.
    ("64 B echo, 32 conns, vs aiohttp", "echo", "64 B x32", "aiohttp", 1.15, True),
    ("1 MiB echo, 32 conns, vs websockets", "echo", "1 MiB x32", "websockets", 1.0, True),
    ("fan-out to 10,000 vs websockets broadcast()", "fanout", "10000 subscribers", "websockets",
     3.0, True),
    ("fan-out to 10,000, chat hub (rawws-chat), vs websockets", "fanout", "10000 subscribers",
     "websockets", 3.0, True, "rawws-chat"),
    ("idle memory/conn, no compression, vs websockets", "idle", "no compression", "websockets",
     0.3, False),
    ("handshakes/s vs websockets", "handshake", None, "websockets", 1.5, True),
    ("FastAPI 64 B echo, 32 conns, rawws.asgi vs --ws websockets-sansio", "asgi", "64 B x32",
     "asgi-websockets-sansio", 1.0, True, "asgi-rawws"),
    ("FastAPI 64 B echo, 32 conns, rawws.asgi vs --ws wsproto", "asgi", "64 B x32",
     "asgi-wsproto", 1.0, True, "asgi-rawws"),
    ("FastAPI 64 KiB echo, 32 conns, rawws.asgi vs --ws websockets-sansio", "asgi", "64 KiB x32",
     "asgi-websockets-sansio", 1.0, True, "asgi-rawws"),
    ("FastAPI 64 KiB echo, 32 conns, rawws.asgi vs --ws wsproto", "asgi", "64 KiB x32",
     "asgi-wsproto", 1.0, True, "asgi-rawws"),
]

ORDER = ["null", "rawws", "rawws-pure", "rawws-chat", "websockets", "aiohttp", "picows", "floor",
         "floor-dr", "asgi-rawws", "asgi-websockets-sansio", "asgi-wsproto"]


# -- statistics ---------------------------------------------------------------------------------


def _get(r: dict[str, Any], key: str) -> float | None:
    """A recorded field, or a derived one: ``per_cpu`` (rate per second of server CPU, the
    figure least moved by other tenants of the machine), ``lg_capacity`` (what the load
    generator would reach with a whole core to itself: rate per second of its own CPU)."""
    if "error" in r:
        return None
    if key == "per_cpu":
        cpu = r.get("server_cpu", -1)
        return r["rate"] / cpu if cpu and cpu > 0.02 else None
    if key == "lg_capacity":
        cpu = r.get("loadgen_cpu", -1)
        return r["rate"] / cpu if cpu and cpu > 0.02 else None
    v = r.get(key)
    return v if isinstance(v, (int, float)) and v >= 0 else None


def values(rows: list[dict[str, Any]], key: str = "rate") -> list[float]:
    return [v for r in rows if (v := _get(r, key)) is not None]


def stat(vals: list[float]) -> tuple[float, float, float] | None:
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def ratios(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str = "rate") -> list[float]:
    """Round-by-round ratios a/b over the rounds where both succeeded."""
    out = []
    for x, y in zip(a, b, strict=False):
        vx, vy = _get(x, key), _get(y, key)
        if vx is None or not vy:
            continue
        out.append(vx / vy)
    return out


def _servers(config: dict[str, list[dict[str, Any]]]) -> list[str]:
    known = [s for s in ORDER if s in config]
    return known + sorted(s for s in config if s not in ORDER)


# -- formatting ---------------------------------------------------------------------------------


def fmt(v: float, scenario: str = "") -> str:
    if scenario == "idle":
        return f"{v / 1024:.1f} KiB"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.1f}k"
    if v >= 1e3:
        return f"{v / 1e3:.2f}k"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def fmt_stat(s: tuple[float, float, float] | None, scenario: str = "") -> str:
    if s is None:
        return "—"
    med, lo, hi = s
    if scenario == "idle":
        return f"{med / 1024:.1f} [{lo / 1024:.1f}–{hi / 1024:.1f}] KiB"
    return f"{fmt(med)} [{fmt(lo)}–{fmt(hi)}]"


def fmt_ratio(s: tuple[float, float, float] | None) -> str:
    if s is None:
        return "—"
    med, lo, hi = s
    return f"{med:.2f}x [{lo:.2f}–{hi:.2f}]"


def _size_of(key: str) -> int:
    number, unit = key.split()[:2]
    return int(number) * {"B": 1, "KiB": 1024, "MiB": 1024 * 1024}[unit]


# -- targets and ceiling ------------------------------------------------------------------------


def _config(results: dict[str, Any], scenario: str, key: str | None) -> Any:
    configs = results.get(scenario) or {}
    if key is None:
        return next(iter(configs.values()), None)
    return configs.get(key)


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for label, scenario, key, peer, threshold, higher, *who in TARGETS:
        subject = who[0] if who else data.get("subject", "rawws")
        config = _config(data.get("results", {}), scenario, key)
        row: dict[str, Any] = {"label": label, "threshold": threshold, "higher": higher,
                               "peer": peer, "verdict": "n/a", "ratio": None}
        row["cpu_ratio"] = None
        row["cpu_verdict"] = "n/a"
        if config and subject in config and peer in config:
            s = stat(ratios(config[subject], config[peer]))
            row["ratio"] = s
            if s is not None and threshold is not None:
                ok = s[0] >= threshold if higher else s[0] <= threshold
                row["verdict"] = "PASS" if ok else "SHORT"
            elif s is not None:
                row["verdict"] = "shown"
            if scenario != "idle":
                c = row["cpu_ratio"] = stat(ratios(config[subject], config[peer], "per_cpu"))
                if c is not None and threshold is not None:
                    row["cpu_verdict"] = "PASS" if c[0] >= threshold else "SHORT"
                elif c is not None:
                    row["cpu_verdict"] = "shown"
            else:
                row["cpu_verdict"] = row["verdict"]  # memory: no CPU involved
        out.append(row)
    return out


def _wanted(target: dict[str, Any], sign: str) -> str:
    if target["threshold"] is None:
        return "no target"
    return f"{sign} {target['threshold']}x"


def ceiling(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Per configuration: the load generator against the null server; its capacity (rate per
    second of its own CPU, over every measurement of the configuration); the fastest server."""
    out = []
    for scenario in ("echo", "deflate", "handshake", "fanout", "asgi"):
        for key, config in (data.get("results", {}).get(scenario) or {}).items():
            null = stat(values(config.get("null", [])))
            capacity = stat(values(config.get("null", []), "lg_capacity"))
            best = max(
                ((stat(values(rows)), name) for name, rows in config.items()
                 if name != "null" and values(rows)),
                key=lambda t: t[0][0] if t[0] else 0, default=(None, ""),
            )
            if best[0] is None:
                continue
            limit = max(null[0] if null else 0, capacity[0] if capacity else 0)
            out.append({"scenario": scenario, "key": key, "null": null, "capacity": capacity,
                        "best": best[0], "best_name": best[1],
                        "headroom": limit / best[0][0]})
    return out


# -- text outputs -------------------------------------------------------------------------------


def summary(data: dict[str, Any]) -> str:
    subject = data.get("subject", "rawws")
    lines = [f"Targets ({subject}/peer, median of per-round ratios [min–max]; then the same "
             "ratio per second of server CPU):"]
    for t in targets(data):
        sign = ">=" if t["higher"] else "<="
        lines.append(f"  {t['verdict']:5}  {t['label']:48} {fmt_ratio(t['ratio']):22} "
                     f"({_wanted(t, sign)})  per CPU: {fmt_ratio(t['cpu_ratio'])} "
                     f"{t['cpu_verdict']}")
    lines.append("Load generator: against null / its capacity (rate per own CPU-second) / "
                 "fastest server:")
    for c in ceiling(data):
        flag = "  <- little headroom" if c["headroom"] < 1.25 else ""
        null = fmt(c["null"][0]) if c["null"] else "—"
        cap = fmt(c["capacity"][0]) if c["capacity"] else "—"
        lines.append(f"  {c['scenario']:9} {c['key']:20} null {null:>7}  capacity {cap:>7}  "
                     f"best {c['best_name']:10} {fmt(c['best'][0]):>7}  "
                     f"headroom {c['headroom']:.2f}x{flag}")
    return "\n".join(lines)


def micro_text(micro: dict[str, Any]) -> str:
    lines = []
    for section in micro.get("sections", []):
        lines.append(f"-- micro: {section['title']} ({section['unit']})")
        cols = section["columns"]
        widths = [max(12, len(c) + 2) for c in cols]
        lines.append("  " + f"{'':18}" + "".join(f"{c:>{w}}" for c, w in zip(cols, widths,
                                                                            strict=True)))
        for row in section["rows"]:
            cells = "".join(f"{_num(v):>{w}}" for v, w in zip(row[1:], widths, strict=True))
            lines.append(f"  {row[0]:18}{cells}")
    return "\n".join(lines)


def _num(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}" if v >= 1 else f"{v:.3f}"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def with_asgi_run(data: dict[str, Any], path: Path = HERE / "results-asgi.json") -> dict[str, Any]:
    """``data`` with the asgi scenario of a separate run (``make bench-asgi`` writes
    results-asgi.json) when ``data`` has none of its own; the other run is noted as such."""
    if (data.get("results") or {}).get("asgi") or not path.exists():
        return data
    other = json.loads(path.read_text())
    asgi = (other.get("results") or {}).get("asgi")
    if not asgi:
        return data
    note = (f"The asgi scenario comes from a separate {other.get('mode')} run "
            f"(`make bench-asgi`, results-asgi.json): {other.get('started')}, commit "
            f"`{other.get('commit')}`, load average before {_load(other.get('load_before'))}, "
            f"after {_load(other.get('load_after'))}.")
    return {**data, "results": {**data.get("results", {}), "asgi": asgi},
            "notes": [*data.get("notes", []), note]}


def render(data: dict[str, Any], charts_dir: Path, md_dir: Path) -> str:
    """The whole of RESULTS.md; writes the charts as a side effect."""
    data = with_asgi_run(data)
    subject = data.get("subject", "rawws")
    results = data.get("results", {})
    charts = draw_charts(data, charts_dir)
    m = data.get("machine", {})
    v = data.get("versions", {})
    lines = [
        "# rawws benchmark results",
        "",
        "Generated by `python -m benchmarks.run` (`make bench` quick pass, `make bench-full`); "
        "re-render with `python -m benchmarks.report`. How it is measured: "
        "[README.md](README.md).",
        "",
        f"* Run: **{data.get('mode')}** pass, {data.get('started')}, commit `{data.get('commit')}`,"
        f" {data.get('elapsed')} s; {data.get('rounds')} measured rounds after one warm-up round "
        "(idle memory and fan-out: see their sections).",
        f"* Machine: {m.get('cpu')}, {m.get('cpus')} CPUs, {m.get('memory_gib')} GiB, "
        f"Linux {m.get('kernel')}. Servers pinned to CPU {data.get('cores', {}).get('server')}, "
        f"load generator to CPU {data.get('cores', {}).get('loadgen')}.",
        "* Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "* Conditions: a shared machine (other engineers' tests and conformance runs on the same "
        f"two CPUs). Load average before {_load(data.get('load_before'))}, after "
        f"{_load(data.get('load_after'))}; busiest other processes before: "
        f"{', '.join(data.get('busy_before') or ['none'])}; after: "
        f"{', '.join(data.get('busy_after') or ['none'])}. Absolute figures move with that noise; "
        "the round-by-round ratios much less.",
    ]
    windows = retried = still = 0
    for scenario in ("echo", "deflate", "handshake", "fanout", "asgi"):
        for config in (results.get(scenario) or {}).values():
            for rows in config.values():
                for r in rows:
                    windows += 1
                    retried += r.get("tries", 1) > 1
                    still += disturbed(r)
    if windows:
        lines.append(
            f"* Disturbed windows ([disturb.py](disturb.py)): {retried} of {windows} measurement "
            "windows (fan-out: bursts) were measured again, up to twice more, keeping the least "
            "disturbed attempt: the server or the load generator waited for a CPU most of the "
            "window, or the kernel dropped loopback packets / hit a TCP retransmission timeout, "
            "or both sides slept through it with bytes in flight (softirq work starved). "
            f"{still} were still disturbed in the attempt kept.")
    lines += [f"* Note: {n}" for n in data.get("notes", [])]
    lines += ["", "## Targets", ""]
    rows = []
    for t in targets(data):
        sign = "≥" if t["higher"] else "≤"
        rows.append([t["label"], _wanted(t, sign), fmt_ratio(t["ratio"]),
                     f"**{t['verdict']}**", fmt_ratio(t["cpu_ratio"]), t["cpu_verdict"]])
    lines += _md_table([f"target ({subject}/peer)", "wanted", "measured: median [min–max]",
                        "verdict", "per server CPU-second", "verdict per CPU"], rows)
    lines += ["", "The verdict uses the wall-clock ratio, as the issue asks. The last two "
              "columns are the same ratio computed from throughput per second of server CPU (from "
              "/proc/PID/schedstat), and its verdict: it is what each server costs per "
              "operation, and moves much less with the machine's other tenants.", ""]
    lines += ["## Load generator ceiling", "",
              "The load generator against the `null` server (uvloop, reads frame headers only, "
              "answers from a cache); its capacity, the rate it reaches against null per second "
              "of its own CPU (what it would do with its core to itself); and the fastest real "
              "server of the same configuration. Headroom ="
              " max(null, capacity) / fastest; well above 1 means the load generator was not what "
              "limited the servers. With one connection, a round trip is latency-bound on both "
              "sides and the null figure is the floor of that latency.", ""]
    rows = [[c["scenario"], c["key"], fmt(c["null"][0]) if c["null"] else "—",
             fmt(c["capacity"][0]) if c["capacity"] else "—",
             f"{c['best_name']} {fmt(c['best'][0])}", f"{c['headroom']:.2f}x"]
            for c in ceiling(data)]
    lines += _md_table(["scenario", "configuration", "null (measured)", "load generator capacity",
                        "fastest server", "headroom"], rows)
    run_subject = subject
    for scenario in ("echo", "deflate", "handshake", "fanout", "idle", "asgi"):
        configs = results.get(scenario)
        if not configs:
            continue
        subject = SCENARIO_SUBJECT.get(scenario, run_subject)
        unit, _higher = UNITS[scenario]
        lines += ["", f"## {TITLES[scenario]}", ""]
        lines += _scenario_notes(scenario, data)
        names = sorted({n for c in configs.values() for n in c}, key=_order)
        peers = [n for n in names if n not in (subject, "null")]
        header = ["configuration", *[_label(n) for n in names]]
        if any(subject in c for c in configs.values()):
            header += [f"{subject}/{p}" for p in peers]
        rows = []
        for key, config in configs.items():
            row = [key] + [fmt_stat(stat(values(config.get(n, []))), scenario) for n in names]
            if any(subject in c for c in configs.values()):
                row += [fmt_ratio(stat(ratios(config.get(subject, []), config.get(p, []))))
                        for p in peers]
            rows.append(row)
        lines += [f"Median [min–max] of {unit}:", ""]
        lines += _md_table(header, rows)
        if scenario in ("echo", "asgi"):
            rows = []
            for key, config in configs.items():
                size = _size_of(key)
                rows.append([key] + [
                    fmt_stat(_scaled(stat(values(config.get(n, []))), size / 1e6))
                    for n in names])
            lines += ["", "The same in MB/s of payload echoed (each byte crosses twice):", ""]
            lines += _md_table(["configuration", *[_label(n) for n in names]], rows)
        if scenario != "idle":
            rows = []
            for key, config in configs.items():
                row = [key] + [fmt_stat(stat(values(config.get(n, []), "per_cpu")))
                               for n in names]
                if any(subject in c for c in configs.values()):
                    row += [fmt_ratio(stat(ratios(config.get(subject, []), config.get(p, []),
                                                  "per_cpu"))) for p in peers]
                rows.append(row)
            lines += ["", f"The same per second of server CPU ({unit} ÷ server CPU share): "
                      "the cost of one operation, least moved by the machine's noise:", ""]
            lines += _md_table(header, rows)
            rows = []
            for key, config in configs.items():
                rows.append([key] + [
                    _cpu(config.get(n, []), "server_cpu") + " / " +
                    _cpu(config.get(n, []), "server_wait") + " / " +
                    _cpu(config.get(n, []), "loadgen_cpu") for n in names])
            lines += ["", "Median CPU share during the window: server on CPU / server ready but "
                      "waiting for a CPU (taken by other tenants) / load generator on CPU "
                      "(1.00 = a whole core):", ""]
            lines += _md_table(["configuration", *[_label(n) for n in names]], rows)
        else:
            rows = []
            for key, config in configs.items():
                rows.append([key] + [_idle_detail(config.get(n, [])) for n in names])
            lines += ["", "Detail (medians): RSS at start → with all connections open; "
                      "growth per connection including the first tenth; connections that "
                      "negotiated permessage-deflate:", ""]
            lines += _md_table(["configuration", *[_label(n) for n in names]], rows)
    micro = results.get("micro")
    if micro and "sections" in micro:
        lines += ["", "## Micro-benchmarks (in-process, `benchmarks/micro.py`)", ""]
        lines += [micro.get("note", ""), ""]
        for section in micro["sections"]:
            lines += [f"### {section['title']} ({section['unit']})", ""]
            if section.get("note"):
                lines += [section["note"], ""]
            lines += _md_table(["", *section["columns"]],
                               [[str(r[0]), *(_num(x) for x in r[1:])] for r in section["rows"]])
            lines.append("")
    if charts:
        lines += ["", "## Charts", ""]
        for path in charts:
            lines.append(f"![{path.stem}]({path.relative_to(md_dir).as_posix()})")
    lines += ["", "## Where rawws stands and why", "", *_standing(data), ""]
    return "\n".join(lines)


def _standing(data: dict[str, Any]) -> list[str]:
    """Filled by hand after a run (kept across re-renders): see STANDING.md."""
    path = HERE / "STANDING.md"
    if path.exists():
        return path.read_text().strip().splitlines()
    return ["(no analysis written yet)"]


def _scenario_notes(scenario: str, data: dict[str, Any]) -> list[str]:
    plan = data.get("plan", {})
    notes = {
        "echo": f"Each window {plan.get('echo_duration')} s after {plan.get('echo_warmup')} s of "
                "warm-up traffic; `floor-dr` is the floor reading through `data_received` (only "
                "at 64 B).",
        "asgi": "`uvicorn` with `--ws rawws.asgi:WebSocketProtocol`, `--ws websockets-sansio` "
                "and `--ws wsproto` (benchmarks/servers/asgi_server.py): the same FastAPI "
                "endpoint (`receive_bytes` / `send_bytes`), uvicorn's defaults otherwise "
                "(uvloop, httptools, permessage-deflate offered, keepalive pings); the echo "
                f"scenario's windows ({plan.get('echo_duration')} s after "
                f"{plan.get('echo_warmup')} s of warm-up).",
        "deflate": "The client offers `permessage-deflate; client_max_window_bits`; every server "
                   "keeps its defaults. picows has no permessage-deflate and sits this out.",
        "handshake": f"{plan.get('handshake_concurrency')} clients in parallel, each looping; "
                     f"windows of {plan.get('handshake_duration')} s.",
        "fanout": "Configurations as (subscribers, visits, phases of (messages per burst, "
                  f"bursts per visit, paced)): {plan.get('fanout_configs')}. A visit is the "
                  "subscribers connecting to a running server, one synchronising message (all "
                  "registered and warm), then the timed bursts of each phase; visits are "
                  "interleaved across servers; a round is one burst. "
                  "The publisher sends a burst's 64-byte text messages back to back, so they "
                  "reach the server in few reads: a server that writes the frames of one read "
                  "to each subscriber in one write (the floor, null) makes one send() per "
                  "subscriber per read, the others one per subscriber per message. In the "
                  "*paced* configurations the publisher sends each message only when every "
                  "subscriber has the previous one, so no server can merge messages: that is "
                  "the cost of one delivery. websockets "
                  "uses `broadcast()`, rawws `rawws.broadcast()`, aiohttp and picows a loop over "
                  "their connections.",
        "idle": f"{plan.get('idle_conns')} connections, a fresh server per round "
                f"({plan.get('idle_rounds')} rounds); the figure is the RSS slope between one "
                "tenth and all of the connections (lower is better, ratios below 1 favour rawws).",
    }
    return [notes[scenario], ""]


def _scaled(s: tuple[float, float, float] | None, k: float) -> tuple[float, float, float] | None:
    return None if s is None else (s[0] * k, s[1] * k, s[2] * k)


def _cpu(rows: list[dict[str, Any]], key: str) -> str:
    s = stat(values(rows, key))
    return "—" if s is None else f"{s[0]:.2f}"


def _idle_detail(rows: list[dict[str, Any]]) -> str:
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return "—"
    rss0 = statistics.median(r["rss0"] for r in ok) / 2**20
    rss2 = statistics.median(r["rss_all"] for r in ok) / 2**20
    total = statistics.median(r["total_per_conn"] for r in ok) / 1024
    neg = statistics.median(r["negotiated"] for r in ok)
    return f"{rss0:.0f} → {rss2:.0f} MiB; {total:.1f} KiB; {neg:.0f}"


def _label(name: str) -> str:
    return "null (ceiling)" if name == "null" else name


def _order(name: str) -> int:
    return ORDER.index(name) if name in ORDER else len(ORDER)


def _load(load: Any) -> str:
    return "?" if not load else "/".join(f"{x:.2f}" for x in load)


# -- charts -------------------------------------------------------------------------------------


def draw_charts(data: dict[str, Any], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out.mkdir(parents=True, exist_ok=True)
    results = data.get("results", {})
    paths = []

    def bars(ax: Any, configs: dict[str, Any], keys: list[str], scenario: str, k: float = 1.0,
             log: bool = False) -> None:
        names = sorted({n for key in keys for n in configs[key]}, key=_order)
        width = 0.8 / max(1, len(names))
        for i, name in enumerate(names):
            meds, los, his, xs = [], [], [], []
            for j, key in enumerate(keys):
                s = stat(values(configs[key].get(name, [])))
                if s is None:
                    continue
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                meds.append(s[0] * k)
                los.append((s[0] - s[1]) * k)
                his.append((s[2] - s[0]) * k)
            hatch = "//" if name in ("null", "floor-dr") else None
            ax.bar(xs, meds, width, yerr=[los, his], label=_label(name), capsize=2, hatch=hatch)
        ax.set_xticks(range(len(keys)), keys)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)

    echo = results.get("echo")
    if echo:
        fig, axes = plt.subplots(2, 2, figsize=(13, 8))
        for col, conns in enumerate(("x1", "x32")):
            keys = [k for k in echo if k.endswith(conns)]
            if not keys:
                continue
            bars(axes[0][col], echo, keys, "echo", log=True)
            axes[0][col].set_title(f"echo, {conns[1:]} connection(s): round trips/s")
            _bars_mbps(axes[1][col], {k: echo[k] for k in keys}, keys)
            axes[1][col].set_title(f"echo, {conns[1:]} connection(s): MB/s of payload")
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        paths.append(_save(fig, out / "echo.png"))
    for scenario, log in (("deflate", False), ("handshake", False), ("fanout", True),
                          ("idle", False)):
        configs = results.get(scenario)
        if not configs:
            continue
        fig, ax = plt.subplots(figsize=(9, 4.5))
        k = 1 / 1024 if scenario == "idle" else 1.0
        bars(ax, configs, list(configs), scenario, k=k, log=log)
        unit = "KiB per connection (lower is better)" if scenario == "idle" else UNITS[scenario][0]
        ax.set_title(f"{TITLES[scenario]}\n{unit}", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(_save(fig, out / f"{scenario}.png"))
    rows = [t for t in targets(data) if t["ratio"] is not None]
    if rows:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        ys = range(len(rows))
        meds = [t["ratio"][0] for t in rows]
        err = [[t["ratio"][0] - t["ratio"][1] for t in rows],
               [t["ratio"][2] - t["ratio"][0] for t in rows]]
        colors = ["tab:green" if t["verdict"] == "PASS" else "tab:gray" if t["verdict"] == "shown"
                  else "tab:red" for t in rows]
        ax.barh(list(ys), meds, xerr=err, color=colors, capsize=3)
        ax.scatter([t["threshold"] if t["threshold"] is not None else float("nan")
                    for t in rows], list(ys), marker="|", s=400, color="black",
                   label="target", zorder=3)
        ax.set_yticks(list(ys), [t["label"] for t in rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{data.get('subject', 'rawws')}/peer ratio per target (median, min-max)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(_save(fig, out / "targets.png"))
    micro = results.get("micro") or {}
    for section in micro.get("sections", []):
        if section.get("chart") != "sizes":
            continue
        fig, ax = plt.subplots(figsize=(9, 4.5))
        sizes = [_size_of(r[0]) for r in section["rows"]]
        for i, name in enumerate(section["columns"]):
            pts = [(s, r[i + 1]) for s, r in zip(sizes, section["rows"], strict=True)
                   if isinstance(r[i + 1], (int, float))]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("payload bytes")
        ax.set_ylabel(section["unit"])
        ax.set_title(f"micro: {section['title']}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(_save(fig, out / f"micro_{section['id']}.png"))
    return paths


def _bars_mbps(ax: Any, configs: dict[str, Any], keys: list[str]) -> None:
    names = sorted({n for key in keys for n in configs[key]}, key=_order)
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        xs, meds, los, his = [], [], [], []
        for j, key in enumerate(keys):
            s = stat(values(configs[key].get(name, [])))
            if s is None:
                continue
            k = _size_of(key) / 1e6
            xs.append(j + (i - (len(names) - 1) / 2) * width)
            meds.append(s[0] * k)
            los.append((s[0] - s[1]) * k)
            his.append((s[2] - s[0]) * k)
        hatch = "//" if name in ("null", "floor-dr") else None
        ax.bar(xs, meds, width, yerr=[los, his], label=_label(name), capsize=2, hatch=hatch)
    ax.set_xticks(range(len(keys)), keys)
    ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> int:
    path = HERE / "results.json"
    data = json.loads(path.read_text())
    (HERE / "RESULTS.md").write_text(render(data, HERE / "charts", HERE))
    print(summary(with_asgi_run(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
