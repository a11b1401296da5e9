"""The live frame inspector: a connection that asks for it sees its own frames as they happen.

Owns: :class:`Inspector`, which a chat server installs around its ``process_request`` hook, and
:class:`FrameReporter`, one per inspected connection. A WebSocket opened with ``?inspect=1``
(the ``/inspect`` page, or the demo page's "Frames" panel) gets a tracer from the protocol's
tracing hook; every frame the server receives on that connection, and every frame it sends on
it, is reported back to that same connection as ``{"type": "inspect", "frames": [...]}``
messages (``docs/tools.md``, "The inspector").

Does not own: decoding (the sans-I/O core hands over each frame's header, payload and inflated
payload), the page (``static/inspect.html``, ``inspect.js``, ``inspect-panel.js``).

Three rules make it safe:

1. **Only your own frames.** Reports travel on the inspected connection itself and nowhere
   else; there is no name, id or token by which one connection could ask for another's frames.
   A connection without ``?inspect=1`` has no tracer at all (zero cost, the core's fast path).
2. **No endless stream.** The frames that carry reports are not reported: the tracer ignores
   what the connection sends while a report is being sent, and counts it in ``hidden``. A
   report is only ever sent because some other frame happened, so a quiet connection stays
   quiet.
3. **Bounded.** Reports are batched once per loop turn, at most :data:`MAX_BATCH` frames each;
   at most :data:`MAX_PENDING` frames wait (older ones are counted in ``dropped``), and a
   preview holds at most :data:`PREVIEW` characters, redacted (:mod:`rawws.redact`).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import rawws
from rawws.wirelog import Event, FrameEvent, RecordConverter, ViolationEvent, redacted

__all__ = ["MAX_BATCH", "MAX_PENDING", "PREVIEW", "FrameReporter", "Inspector", "wants_inspection"]

#: Frames per report message.
MAX_BATCH = 100
#: Frames waiting to be reported, at most (older ones are dropped and counted).
MAX_PENDING = 1000
#: Characters of payload preview per frame.
PREVIEW = 64

def wants_inspection(target: str) -> bool:
    """Whether an upgrade request's target asks for the inspector (``?inspect=1``)."""
    query = urllib.parse.parse_qs(target.partition("?")[2])
    return query.get("inspect", [""])[-1] in ("1", "true", "yes")


def _preview(event: FrameEvent) -> str:
    if event.code is not None:
        return f"{event.code} {event.reason or ''}".rstrip()[:PREVIEW]
    if event.text is not None:
        return event.text[:PREVIEW]
    data = event.data
    if event.redacted or data is None:
        return "(redacted)" if event.redacted else ""
    return data[: PREVIEW // 3].hex(" ")


def frame_report(event: FrameEvent) -> dict[str, Any]:
    """What the page shows of one frame (redacted: a token in your own auth message is not
    put on your screen either)."""
    shown = redacted(event)
    assert isinstance(shown, FrameEvent)
    data = event.data
    return {
        "dir": event.dir, "opcode": event.opcode, "fin": event.fin,
        "rsv": [event.rsv1, event.rsv2, event.rsv3], "masked": event.masked,
        "mask": event.mask.hex() if event.mask is not None else None,
        "length": event.length, "compressed": event.compressed,
        "size": len(data) if data is not None else event.length,
        "preview": _preview(shown), "violation": None,
    }


class FrameReporter:
    """The tracer of one inspected connection: collects its frames and reports them to it,
    batched once per loop turn."""

    def __init__(self, ws: rawws.Connection) -> None:
        self.ws = ws
        self.pending: list[dict[str, Any]] = []
        self.hidden = 0  # frames that carried reports (never reported themselves)
        self.dropped = 0  # frames over MAX_PENDING
        self.reported = 0
        self._sending = False
        self._scheduled = False
        self._converter = RecordConverter(0, "server", self._events)

    def __call__(self, record: Any) -> None:
        """The tracer (see the tracing hook of the sans-I/O core): one record per frame."""
        if self._sending and record.direction == "sent":
            self.hidden += 1  # a report's own frame: rule 2
            return
        self._converter(record)

    def _events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, FrameEvent):
                self.pending.append(frame_report(event))
            elif isinstance(event, ViolationEvent) and self.pending:
                self.pending[-1]["violation"] = f"{event.message} ({event.section})"
        if len(self.pending) > MAX_PENDING:
            excess = len(self.pending) - MAX_PENDING
            del self.pending[:excess]
            self.dropped += excess
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Send what is pending (one message per :data:`MAX_BATCH` frames)."""
        self._scheduled = False
        ws = self.ws
        if ws.state is not rawws.State.OPEN:
            self.pending.clear()
            return
        while self.pending:
            batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
            message = json.dumps({"type": "inspect", "frames": batch, "hidden": self.hidden,
                                  "dropped": self.dropped}, separators=(",", ":"))
            self._sending = True
            try:
                ws.send_nowait(message)
            except rawws.ConnectionClosed:
                self.pending.clear()
                return
            finally:
                self._sending = False
            self.reported += len(batch)


Hook = Callable[..., Any]


class Inspector:
    """Installs a :class:`FrameReporter` on every connection that asks for one.

    ``wrap(process_request)`` returns a hook that runs the server's own hook first; when it lets
    the upgrade through and the request asks for ``?inspect=1``, the connection's tracer is
    set. Nothing else of the server is touched, and connections that do not ask pay nothing.
    """

    def __init__(self) -> None:
        #: How many connections asked to be inspected.
        self.inspected = 0

    def wrap(self, process_request: Hook | None) -> Hook:
        def hook(ws: rawws.ServerConnection, request: rawws.Request) -> Any:
            result = process_request(ws, request) if process_request is not None else None
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                return self._after(ws, request, result)
            if result is None:
                self._maybe_attach(ws, request)
            return result
        return hook

    async def _after(self, ws: rawws.ServerConnection, request: rawws.Request,
                     pending: Any) -> Any:
        result = await pending
        if result is None:
            self._maybe_attach(ws, request)
        return result

    def _maybe_attach(self, ws: rawws.ServerConnection, request: rawws.Request) -> None:
        if wants_inspection(request.target):
            self.inspected += 1
            ws.set_tracer(FrameReporter(ws))
