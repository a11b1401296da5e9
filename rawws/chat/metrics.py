"""Counters and gauges of the chat server, rendered in the Prometheus text format (version 0.0.4).

Owns: the names, help texts and rendering. Counting is done by whoever sees the event (router,
hub, HTTP API) with plain attribute increments (``metrics.messages_received += 1``): the hot path
pays one integer add, no lookup, no lock (everything runs on one event loop thread).

Gauges are read at scrape time from callables registered with :meth:`Metrics.gauge`, so they never
drift from the state they describe.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Final

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
PREFIX: Final = "rawws_"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return repr(value)


class Metrics:
    """All counters of one server. Attributes are public and incremented in place."""

    def __init__(self) -> None:
        self.connections_opened = 0
        self.messages_received = 0
        self.bytes_received = 0
        self.messages_sent = 0  # one per recipient per message
        self.bytes_sent = 0
        self.closes: Counter[int] = Counter()  # close code sent by the server -> count
        self.aborts: Counter[str] = Counter()  # reason -> TCP connections dropped by the server
        self.handshake_rejections: Counter[str] = Counter()  # reason -> count
        self.dropped: Counter[str] = Counter()  # reason -> outbound or stored items dropped
        self.errors: Counter[str] = Counter()  # error reply code -> count
        self.http_requests: Counter[int] = Counter()  # HTTP status -> count
        self.http_rate_limited = 0  # HTTP API requests refused with 429 (per-address limit)
        self.idempotent_replays = 0  # requests answered from an idempotency record
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self._counters: dict[str, tuple[str, Callable[[], float]]] = {}
        self._dropped_sources: list[Callable[[], Mapping[str, int]]] = []

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Register a gauge read at scrape time (``name`` without the ``rawws_`` prefix)."""
        self._gauges[name] = (help_text, read)

    def counter(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Register a counter kept elsewhere (the broker), read at scrape time (``name``
        without the ``rawws_`` prefix, ending in ``_total``)."""
        self._counters[name] = (help_text, read)

    def dropped_source(self, read: Callable[[], Mapping[str, int]]) -> None:
        """Register drop counters kept elsewhere (the store), merged into ``dropped_total``."""
        self._dropped_sources.append(read)

    def render(self) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> str:
            full = PREFIX + name
            lines.append(f"# HELP {full} {help_text}")
            lines.append(f"# TYPE {full} {kind}")
            return full

        def scalar(name: str, kind: str, help_text: str, value: float) -> None:
            full = family(name, kind, help_text)
            lines.append(f"{full} {_number(value)}")

        def labelled(name: str, help_text: str, label: str,
                     values: Mapping[str, float] | Mapping[int, float]) -> None:
            full = family(name, "counter", help_text)
            for key in sorted(values, key=str):
                count = values[key]  # type: ignore[index]
                lines.append(f'{full}{{{label}="{_escape(str(key))}"}} {_number(count)}')

        scalar("connections_opened_total", "counter", "WebSocket connections accepted.",
               self.connections_opened)
        for name, (help_text, read) in self._gauges.items():
            scalar(name, "gauge", help_text, read())
        for name, (help_text, read) in self._counters.items():
            scalar(name, "counter", help_text, read())
        scalar("messages_received_total", "counter", "WebSocket messages received.",
               self.messages_received)
        scalar("bytes_received_total", "counter",
               "Payload bytes of WebSocket messages received (after decompression).",
               self.bytes_received)
        scalar("messages_sent_total", "counter",
               "WebSocket messages sent (one per recipient).", self.messages_sent)
        scalar("bytes_sent_total", "counter",
               "Payload bytes of WebSocket messages sent (per recipient, before compression).",
               self.bytes_sent)
        labelled("closes_total", "Connections closed by the server, by close code.", "code",
                 self.closes)
        labelled("aborts_total", "TCP connections dropped without a closing handshake, by "
                 "reason.", "reason", self.aborts)
        labelled("handshake_rejections_total", "Opening handshakes refused, by reason.",
                 "reason", self.handshake_rejections)
        dropped = Counter(self.dropped)
        for source in self._dropped_sources:
            dropped.update(source())
        labelled("dropped_total", "Queued or stored items dropped, by reason.", "reason",
                 dropped)
        labelled("errors_total", "Error replies sent, by error code.", "code", self.errors)
        labelled("http_requests_total", "HTTP requests answered, by status.", "status",
                 self.http_requests)
        scalar("http_rate_limited_total", "counter",
               "HTTP API requests refused with 429 (per-address rate limit).",
               self.http_rate_limited)
        scalar("idempotent_replays_total", "counter",
               "Requests answered from the record of their idempotency key (not run again).",
               self.idempotent_replays)
        return "\n".join(lines) + "\n"
