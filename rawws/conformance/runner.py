"""Running cases: against a server (``fuzzingclient``) or for clients (``fuzzingserver``).

Owns: the order cases run in, how many at once, the progress line, collecting results and
writing the reports; the fuzzing server's endpoints, which are wstest's, so that an existing
Autobahn client driver works unchanged:

* ``/getCaseCount`` — one text message: the number of cases (JSON), then a close;
* ``/runCase?case=N&agent=A`` — run the N-th case (1-based) with the client of agent A;
* ``/updateReports?agent=A`` — write the reports, then close (``&shutdownOnComplete=true``
  stops the server afterwards);
* ``/getCaseInfo?case=N`` — ``{"id", "description"}`` of case N;
* ``/getCaseStatus?case=N&agent=A`` — ``{"behavior"}`` once case N has run for A;
* ``/stopServer`` — stop the fuzzing server.

Parallel cases (``--jobs N``, client mode): every case runs on its own connection, so cases
are independent of each other; the 9.x cases, whose durations are their result, still run
one at a time with nothing else beside them.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from . import cases as catalogue
from .case import FAILED, INFORMATIONAL, OK, Case, Event
from .endpoint import Endpoint
from .opening import ClientEndpoint, HandshakeRejected, ServerEndpoint, UpgradeRequest
from .pmce import Deflate, DeflateOffer, parse_extensions
from .records import text_log
from .report import write_reports

__all__ = ["FuzzingServer", "Progress", "Results", "run_fuzzing_client"]

VERSION = "rawws.conformance/0.1"
#: A case is abandoned (TCP aborted) if it is still running after this long: every case ends
#: on its own timers well before (the longest wait is 480 s).
CASE_DEADLINE = 1200.0


def _utcnow() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _clean_events(events: list[Event]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for event in events:
        if event[0] == "message":
            out.append([event[0], text_log(event[1]), event[2]])
        elif event[0] in ("ping", "pong"):
            out.append([event[0], text_log(event[1])])
        else:
            out.append(list(event))
    return out


def case_result(case: Case, index: int, agent: str, started: str,
                duration_ms: int) -> dict[str, Any]:
    """The report of one case run, with wstest's keys."""
    p: Endpoint = case.peer
    local_reason: str | None = None
    if p.local_close_reason is not None:
        try:
            local_reason = p.local_close_reason.decode("utf-8")
        except UnicodeDecodeError:
            local_reason = p.local_close_reason.hex()
    return {
        "case": index, "id": case.id, "description": case.description,
        "expectation": case.expectation, "agent": agent, "started": started,
        "duration": duration_ms, "reportTime": case.report_time,
        "reportCompressionRatio": case.report_compression_ratio,
        "behavior": case.behavior, "behaviorClose": case.behavior_close,
        "expected": {k: _clean_events(v) for k, v in case.expected.items()},
        "expectedClose": case.expected_close.to_json(),
        "received": _clean_events(case.received),
        "result": case.result, "resultClose": case.result_close,
        "wirelog": p.wirelog, "createWirelog": p.create_wirelog,
        "closedByMe": p.closed_by_me, "failedByMe": p.failed_by_me,
        "droppedByMe": p.dropped_by_me, "wasClean": p.was_clean,
        "wasNotCleanReason": p.was_not_clean_reason,
        "wasServerConnectionDropTimeout": p.was_server_connection_drop_timeout,
        "wasOpenHandshakeTimeout": p.was_open_handshake_timeout,
        "wasCloseHandshakeTimeout": p.was_close_handshake_timeout,
        "localCloseCode": p.local_close_code, "localCloseReason": local_reason,
        "remoteCloseCode": p.remote_close_code, "remoteCloseReason": p.remote_close_reason,
        "isServer": p.is_server, "createStats": True,
        "rxOctetStats": p.rx_octet_stats, "rxFrameStats": p.rx_frame_stats,
        "txOctetStats": p.tx_octet_stats, "txFrameStats": p.tx_frame_stats,
        "httpRequest": p.http_request, "httpResponse": p.http_response,
        "trafficStats": case.traffic_stats,
        "permessageDeflate": p.pmce.params if p.pmce is not None else None,
    }


@dataclass
class Results:
    """Case results by agent, written as reports on demand."""

    outdir: Path
    by_agent: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    listeners: dict[tuple[str, str], list[Callable[[dict[str, Any]], None]]] = field(
        default_factory=dict)

    def add(self, result: dict[str, Any]) -> None:
        self.by_agent.setdefault(result["agent"], {})[result["id"]] = result
        for listener in self.listeners.pop((result["agent"], result["id"]), []):
            listener(result)

    def when_done(self, agent: str, case_id: str,
                  callback: Callable[[dict[str, Any]], None]) -> None:
        if case_id in self.by_agent.get(agent, {}):
            callback(self.by_agent[agent][case_id])
        else:
            self.listeners.setdefault((agent, case_id), []).append(callback)

    def write(self) -> None:
        write_reports(self.outdir, self.by_agent)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for cases in self.by_agent.values():
            for result in cases.values():
                counts[result["behavior"]] = counts.get(result["behavior"], 0) + 1
        return counts


class Progress:
    """``[n/N] case id ... OK a, FAILED b``: one line rewritten on a terminal, otherwise a line
    per group of cases (and every 30 s) and one per case that is not OK."""

    #: Without a terminal, a line at least this often (seconds) besides one per case group.
    EVERY = 30.0

    def __init__(self, total: int, stream: TextIO | None = None, *, label: str = "") -> None:
        self.total, self.label = total, label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.done = 0
        self.counts: dict[str, int] = {}
        self.running: list[str] = []
        self.group: str | None = None
        self.started = self.last_line = time.monotonic()

    def _summary(self) -> str:
        order = ["OK", "NON-STRICT", "FAILED", "INFORMATIONAL", "UNIMPLEMENTED"]
        return ", ".join(f"{k} {self.counts[k]}" for k in order if self.counts.get(k))

    def _line(self) -> str:
        now = ", ".join(self.running[:3]) + (" ..." if len(self.running) > 3 else "")
        return (f"{self.label}[{self.done}/{self.total}] {now or '-'}  {self._summary()}"
                f"  ({time.monotonic() - self.started:.0f} s)")

    def _emit(self, text: str, *, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, case_id: str) -> None:
        self.running.append(case_id)
        group = case_id.split(".")[0]
        now = time.monotonic()
        if self.tty or group != self.group or now - self.last_line >= self.EVERY:
            self.group, self.last_line = group, now
            self._emit(self._line())

    def finish(self, case_id: str, behavior: str, behavior_close: str) -> None:
        if case_id in self.running:
            self.running.remove(case_id)
        self.done += 1
        self.counts[behavior] = self.counts.get(behavior, 0) + 1
        if behavior not in (OK, INFORMATIONAL) or behavior_close not in (OK, INFORMATIONAL):
            note = f"  case {case_id}: {behavior}, closing {behavior_close}"
            if self.tty:
                self._emit(note, final=True)
            else:
                self.stream.write(note + "\n")
        if self.tty:
            self._emit(self._line())

    def close(self) -> None:
        elapsed = time.monotonic() - self.started
        self._emit(f"{self.label}{self.done}/{self.total} cases in {elapsed:.0f} s: "
                   f"{self._summary() or 'nothing run'}", final=True)


class CaseRun:
    """Drives one case on one endpoint (the endpoint's handler); records its result."""

    def __init__(self, case: Case, index: int, agent: str | None,
                 on_done: Callable[[dict[str, Any]], None]) -> None:
        self.case, self.index, self.agent, self.on_done = case, index, agent, on_done
        self.started = _utcnow()
        self.began: float | None = None

    def on_open(self) -> None:
        self.began = time.time()
        self.case.on_open()

    def on_message(self, payload: bytes, binary: bool) -> None:
        self.case.on_message(payload, binary)

    def on_pong(self, payload: bytes) -> None:
        self.case.on_pong(payload)

    def on_close(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        self.case.on_close(was_clean, code, reason)

    def on_connection_lost(self) -> None:
        self.case.on_connection_lost()
        began = self.began if self.began is not None else self.case.peer.connected_at
        duration = round(1000 * (time.time() - began))
        agent = self.agent or "UnknownServer"
        self.on_done(case_result(self.case, self.index, agent, self.started, duration))


# --- fuzzingclient: testing a server ---------------------------------------------------------


class HarnessError(Exception):
    """The suite could not do its job (the server is unreachable, ...)."""


async def run_fuzzing_client(url: str, case_ids: list[str], results: Results, *,
                             agent: str | None = None, jobs: int = 1,
                             exclude_agent: dict[str, list[str]] | None = None,
                             progress: Progress | None = None) -> None:
    """Run ``case_ids`` against the server at ``url``, one connection per case."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname:
        raise ValueError(f"expected a ws:// URL, not {url!r}")
    host, port = parts.hostname, parts.port or 80
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    loop = asyncio.get_running_loop()
    rules = exclude_agent or {}

    async def run_one(index: int, case_id: str) -> None:
        cls = catalogue.get(case_id)
        if agent is not None and catalogue.agent_excluded(rules, agent, case_id):
            return
        run: CaseRun | None = None

        def on_response(headers: dict[str, str], extensions: str | None) -> None:
            assert run is not None
            if run.agent is None:
                run.agent = headers.get("server", "UnknownServer")

        endpoint = ClientEndpoint(host=host, port=port, resource=resource, user_agent=VERSION,
                                  offers=[offer.header() for offer in cls.client_offers],
                                  on_response=on_response)
        case = cls(endpoint)
        endpoint.accept_response = case.accept_response if cls.client_offers else None
        run = CaseRun(case, index, agent, results.add)
        endpoint.handler = run
        if progress is not None:
            progress.start(case_id)
        try:
            await loop.create_connection(lambda: endpoint, host, port)
        except OSError as exc:
            raise HarnessError(f"could not connect to {url}: {exc}") from exc
        try:
            await asyncio.wait_for(asyncio.shield(endpoint.done), CASE_DEADLINE)
        except TimeoutError:
            if endpoint.transport is not None:
                endpoint.transport.abort()
            await endpoint.done
        if progress is not None:
            result = results.by_agent.get(run.agent or "UnknownServer", {}).get(case_id, {})
            progress.finish(case_id, result.get("behavior", FAILED),
                            result.get("behaviorClose", FAILED))

    pending: set[asyncio.Task[None]] = set()
    try:
        for index, case_id in enumerate(case_ids, 1):
            exclusive = case_id.startswith("9.") and jobs > 1
            if exclusive and pending:
                await asyncio.gather(*pending)
            while len(pending) >= max(1, jobs):
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            task = asyncio.create_task(run_one(index, case_id))
            pending.add(task)
            task.add_done_callback(pending.discard)
            if exclusive:
                await task
        if pending:
            await asyncio.gather(*pending)
    finally:
        for task in pending:
            task.cancel()


# --- fuzzingserver: testing clients ----------------------------------------------------------


class _Command:
    """A fuzzing-server endpoint that is not a case (``/getCaseCount`` and the others)."""

    def __init__(self, on_open: Callable[[], None]) -> None:
        self._on_open = on_open

    def on_open(self) -> None:
        self._on_open()

    def on_message(self, payload: bytes, binary: bool) -> None:
        pass

    def on_pong(self, payload: bytes) -> None:
        pass

    def on_close(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        pass

    def on_connection_lost(self) -> None:
        pass


class FuzzingServer:
    """wstest's fuzzing server: clients under test connect, run cases, ask for reports."""

    def __init__(self, case_ids: list[str], results: Results, *,
                 exclude_agent: dict[str, list[str]] | None = None,
                 progress: Progress | None = None,
                 stream: TextIO | None = None) -> None:
        self.case_ids, self.results = case_ids, results
        self.exclude_agent = exclude_agent or {}
        self.progress = progress
        self.stream = stream if stream is not None else sys.stdout
        self.stopped = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: ServerEndpoint(on_connect=self.on_connect, server_name=VERSION), host, port)
        return int(self.server.sockets[0].getsockname()[1])

    async def serve_until_stopped(self) -> None:
        await self.stopped.wait()
        if self.server is not None:
            self.server.close()

    def _say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    @staticmethod
    def _one(params: dict[str, list[str]], name: str) -> str | None:
        values = params.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise HandshakeRejected(f"multiple values for {name}")
        return values[0]

    def on_connect(self, endpoint: ServerEndpoint, request: UpgradeRequest) -> None:
        offers: list[DeflateOffer] = []
        if request.extensions:
            for name, params in parse_extensions(request.extensions):
                if name == "permessage-deflate":
                    offers.append(DeflateOffer.parse(params))  # ValueError: 400
        agent = self._one(request.params, "agent")
        case_text = self._one(request.params, "case")
        index: int | None = None
        if case_text is not None:
            try:
                index = int(case_text)
            except ValueError:
                raise HandshakeRejected(f"invalid test case ID {case_text}") from None
            if not 1 <= index <= len(self.case_ids):
                raise HandshakeRejected(f"case {index} not found")
        path = request.path
        if path == "/runCase":
            if index is None or agent is None:
                raise HandshakeRejected("need case and agent to run a case")
            self._run_case(endpoint, index, agent, offers)
        elif path == "/getCaseCount":
            endpoint.handler = _Command(lambda: self._reply(endpoint, len(self.case_ids)))
        elif path == "/updateReports":
            if agent is None:
                raise HandshakeRejected("need agent to update reports for")
            self._say(f"Updating reports, requested by peer {endpoint.peer}")
            shutdown = (self._one(request.params, "shutdownOnComplete") or "").lower()
            endpoint.handler = _Command(lambda: self._update_reports(
                endpoint, stop=shutdown in ("true", "yes")))
        elif path == "/getCaseInfo":
            if index is None:
                raise HandshakeRejected("need case to get info")
            cls = catalogue.get(self.case_ids[index - 1])
            endpoint.handler = _Command(lambda: self._reply(
                endpoint, {"id": cls.id, "description": cls.description}))
        elif path == "/getCaseStatus":
            if index is None or agent is None:
                raise HandshakeRejected("need case and agent to get status")
            case_id = self.case_ids[index - 1]
            endpoint.handler = _Command(lambda: self.results.when_done(
                agent, case_id, lambda r: self._reply(endpoint, {"behavior": r["behavior"]})))
        elif path == "/stopServer":
            endpoint.handler = _Command(self.stopped.set)
        else:
            raise HandshakeRejected(f"unknown resource {path}", 404)

    def _reply(self, endpoint: Endpoint, value: object) -> None:
        endpoint.send_message(json.dumps(value).encode())
        endpoint.send_close()

    def _update_reports(self, endpoint: Endpoint, *, stop: bool = False) -> None:
        self.results.write()
        endpoint.send_close()
        self._say("Report generation complete.")
        if stop:
            self.stopped.set()

    def _run_case(self, endpoint: ServerEndpoint, index: int, agent: str,
                  offers: list[DeflateOffer]) -> None:
        case_id = self.case_ids[index - 1]
        case = catalogue.get(case_id)(endpoint)
        accepted = case.server_accept(offers) if offers else None
        if accepted is not None:
            endpoint.pmce = Deflate.for_server(accepted)
        progress = self.progress

        def done(result: dict[str, Any]) -> None:
            self.results.add(result)
            if progress is not None:
                progress.finish(case_id, result["behavior"], result["behaviorClose"])

        run = CaseRun(case, index, agent, done)
        if catalogue.agent_excluded(self.exclude_agent, agent, case_id):
            self._say(f"Skipping test case {case_id} for agent {agent} by test configuration!")
            endpoint.handler = _Command(endpoint.send_close)
            return
        endpoint.handler = run
        if progress is not None:
            progress.start(case_id)
