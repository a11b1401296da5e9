"""Reports in wstest's layout: ``index.json``, one JSON and one HTML file per case, ``index.html``.

``index.json`` is ``{agent: {case id: {behavior, behaviorClose, duration, remoteCloseCode,
reportfile}}}`` exactly as wstest writes it, so tools that read wstest's reports (for example
``conformance/run.py --summarize``) read ours. Each case's JSON file carries the same keys as
wstest's (description, expectation, expected and received events, the close flags, the wire
log, octet and frame statistics, the opening handshake); file names are made the same way
(``<agent>_case_<id>.json``, the agent lower-cased with every other character turned into
``_``).

The HTML is our own: one page with a row per case and a column per agent, and a page per case
that reads top to bottom — verdict, what was sent and expected, what came back, how the
connection ended, the wire log.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .cases import CATEGORIES, id_key

__all__ = ["case_filename", "write_reports"]

_STYLE = """
body { font-family: system-ui, sans-serif; color: #222; margin: 2em; max-width: 75em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; } td, th { padding: .2em .6em; border: 1px solid #ddd; }
th { background: #f3f3f3; text-align: left; } tr.group td { background: #e9eef5; font-weight: 600; }
.OK { background: #cfc; } .NON-STRICT { background: #ffd98a; } .FAILED, .UNCLEAN,
.WRONG-CODE, .FAILED-BY-CLIENT { background: #f99; } .INFORMATIONAL { background: #cde; }
.UNIMPLEMENTED, .MISSING { background: #ddd; color: #555; }
a { color: inherit; } .code { font-size: .85em; color: #444; }
pre { background: #f7f7f7; padding: .5em; overflow-x: auto; white-space: pre-wrap; }
.log .rx { color: #064; } .log .tx { color: #036; } .log .note { color: #777; }
.legend span { padding: .1em .5em; margin-right: .5em; }
"""


def _clean(agent: str) -> str:
    keep = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(c if c in keep else " " for c in agent.strip().lower()).strip().replace(" ", "_")


def case_filename(agent: str, case_id: str, ext: str) -> str:
    return f"{_clean(agent)}_case_{case_id.replace('.', '_')}.{ext}"


def _css(verdict: str) -> str:
    return verdict.replace(" ", "-")


def write_reports(outdir: Path, results: dict[str, dict[str, dict[str, Any]]],
                  *, title: str = "rawws.conformance") -> None:
    """Write every report for ``results`` ({agent: {case id: case result}}) into ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    index: dict[str, dict[str, dict[str, Any]]] = {}
    for agent, cases in results.items():
        index[agent] = {}
        for case_id, result in cases.items():
            name = case_filename(agent, case_id, "json")
            index[agent][case_id] = {
                "behavior": result["behavior"], "behaviorClose": result["behaviorClose"],
                "duration": result["duration"], "remoteCloseCode": result["remoteCloseCode"],
                "reportfile": name,
            }
            (outdir / name).write_text(json.dumps(result, sort_keys=True, indent=3,
                                                  separators=(",", ": ")))
            (outdir / case_filename(agent, case_id, "html")).write_text(_case_page(result))
    (outdir / "index.json").write_text(json.dumps(index, sort_keys=True, indent=3,
                                                  separators=(",", ": ")))
    (outdir / "index.html").write_text(_index_page(results, title))


def _index_page(results: dict[str, dict[str, dict[str, Any]]], title: str) -> str:
    agents = sorted(results)
    ids = sorted({case_id for cases in results.values() for case_id in cases}, key=id_key)
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
           f"</title><style>{_STYLE}</style></head><body>",
           f"<h1>WebSocket conformance: {html.escape(', '.join(agents))}</h1>",
           "<p class='legend'>Behaviour: <span class='OK'>OK</span>"
           "<span class='NON-STRICT'>NON-STRICT</span><span class='FAILED'>FAILED</span>"
           "<span class='INFORMATIONAL'>INFORMATIONAL</span>"
           "<span class='UNIMPLEMENTED'>UNIMPLEMENTED</span>. The small figure is the close"
           " code the testee sent; its colour is the closing behaviour.</p>"]
    totals = []
    for agent in agents:
        counts: dict[str, int] = {}
        for result in results[agent].values():
            counts[result["behavior"]] = counts.get(result["behavior"], 0) + 1
        summary = ", ".join(f"{n} {b}" for b, n in sorted(counts.items()))
        totals.append(f"<li><b>{html.escape(agent)}</b>: {len(results[agent])} cases: "
                      f"{html.escape(summary)}</li>")
    out.append("<ul>" + "".join(totals) + "</ul><table><tr><th>Case</th>"
               + "".join(f"<th>{html.escape(a)}</th>" for a in agents) + "</tr>")
    group = None
    for case_id in ids:
        parts = case_id.split(".")
        key = ".".join(parts[:2]) if ".".join(parts[:2]) in CATEGORIES else parts[0]
        if key != group:
            group = key
            name = CATEGORIES.get(key, "")
            if key != parts[0] and parts[0] in CATEGORIES:
                name = f"{CATEGORIES[parts[0]]}: {name}"
            out.append(f"<tr class='group'><td colspan='{len(agents) + 1}'>{key}"
                       f" {html.escape(name)}</td></tr>")
        row = [f"<tr><td>{case_id}</td>"]
        for agent in agents:
            found = results[agent].get(case_id)
            if found is None:
                row.append("<td class='MISSING'>missing</td>")
                continue
            result = found
            behavior, close = result["behavior"], result["behaviorClose"]
            detail = f" {result['duration']} ms" if result.get("reportTime") else ""
            code = result["remoteCloseCode"]
            row.append(f"<td class='{_css(behavior)}'><a href='"
                       f"{case_filename(agent, case_id, 'html')}'>{behavior}</a>{detail} "
                       f"<span class='code {_css(close)}'>{'' if code is None else code}"
                       f"</span></td>")
        out.append("".join(row) + "</tr>")
    out.append("</table></body></html>")
    return "\n".join(out)


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in pairs)


def _wirelog_line(entry: list[Any]) -> tuple[str, str]:
    kind = entry[0]
    if kind == "RO":
        return "rx", f"RX OCTETS ({entry[1][0]}): {entry[1][1]}"
    if kind == "TO":
        return "tx", f"TX OCTETS ({entry[1][0]}){' sync' if entry[2] else ''}: {entry[1][1]}"
    if kind == "RF":
        return "rx", (f"RX FRAME opcode={entry[2]} fin={entry[3]} rsv={entry[4]} "
                      f"masked={entry[5]} mask={entry[6]} length={entry[1][0]}: {entry[1][1]}")
    if kind == "TF":
        return "tx", (f"TX FRAME opcode={entry[2]} fin={entry[3]} rsv={entry[4]} mask={entry[5]}"
                      f" length={entry[1][0]} repeat={entry[6]} chop={entry[7]} sync={entry[8]}"
                      f": {entry[1][1]}")
    notes = {"CT": "wait {1} s ({2})", "CTE": "wait over ({1})", "KL": "fail after {1} s",
             "KLE": "failing the connection", "TI": "close after {1} s",
             "TIE": "closing the connection", "WLM": "wire log enabled: {1}"}
    return "note", notes.get(kind, "{0}").format(*entry, *[""] * 3)


def _case_page(r: dict[str, Any]) -> str:
    behavior, close = r["behavior"], r["behaviorClose"]
    log = "\n".join(f"<span class='{css}'>{i:03d} {html.escape(text)}</span>"
                    for i, (css, text) in enumerate(map(_wirelog_line, r["wirelog"])))
    end = "TCP DROPPED BY ME" if r["droppedByMe"] else "TCP DROPPED BY PEER"
    facts = [(k, r[k]) for k in ("isServer", "closedByMe", "failedByMe", "droppedByMe",
                                 "wasClean", "wasNotCleanReason",
                                 "wasServerConnectionDropTimeout", "wasOpenHandshakeTimeout",
                                 "wasCloseHandshakeTimeout", "localCloseCode",
                                 "localCloseReason", "remoteCloseCode", "remoteCloseReason")]
    stats = [(f"received octets in reads of {n}", c) for n, c in
             sorted(r["rxOctetStats"].items(), key=lambda kv: int(kv[0]))][:20]
    stats += [(f"frames received, opcode {op}", c) for op, c in sorted(r["rxFrameStats"].items())]
    stats += [(f"frames sent, opcode {op}", c) for op, c in sorted(r["txFrameStats"].items())]
    return "\n".join([
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Case {r['id']}</title>"
        f"<style>{_STYLE}</style></head><body>",
        f"<p><a href='index.html'>all cases</a></p><h1>{html.escape(r['agent'])} — case"
        f" {r['id']}: <span class='{_css(behavior)}'>{behavior}</span>, closing"
        f" <span class='{_css(close)}'>{close}</span></h1>",
        f"<p>{r['duration']} ms, started {r['started']}</p>",
        f"<h2>Case</h2><p>{html.escape(r['description'])}</p>"
        f"<p><b>Expected:</b> {html.escape(r['expectation'])}</p>",
        f"<h2>Outcome</h2><p>{html.escape(r['result'])}</p>",
        f"<p><b>Expected events</b></p><pre>{html.escape(json.dumps(r['expected']))[:2000]}</pre>",
        f"<p><b>Received events</b></p><pre>{html.escape(json.dumps(r['received']))[:2000]}</pre>",
        f"<h2>Closing</h2><p>{html.escape(r['resultClose'])} ({close})</p>"
        f"<table>{_rows(facts)}</table>",
        f"<h2>Opening handshake</h2><pre>{html.escape(r['httpRequest'].strip())}</pre>"
        f"<pre>{html.escape(r['httpResponse'].strip())}</pre>",
        f"<h2>Statistics</h2><table>{_rows(stats)}</table>",
        f"<h2>Wire log</h2><pre class='log'>{log}\n{end}</pre>",
        "</body></html>"])
