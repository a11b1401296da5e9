"""What the fuzzer records about a connection for its report: wire-log renderings and the
traffic counters (data-message octets and frames at three levels, as Autobahn counts them)."""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any

__all__ = ["LOG_BYTES", "TrafficStats", "bin_log", "text_log"]

#: The wire log keeps this many bytes of each payload.
LOG_BYTES = 64


def bin_log(data: bytes, limit: int = LOG_BYTES) -> str:
    """Hex of the first ``limit`` bytes, `` ...`` when cut (the wire log's octet rows)."""
    if len(data) > limit - 4:
        return binascii.hexlify(data[:limit]).decode() + " ..."
    return binascii.hexlify(data).decode()


def text_log(data: bytes, limit: int = LOG_BYTES) -> str:
    """The first ``limit`` bytes as UTF-8 when they decode, else ``0x`` and hex."""
    cut = data[:limit] + b" ..." if len(data) > limit - 4 else data
    try:
        return cut.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + bin_log(data, limit)


@dataclass
class TrafficStats:
    """Data-message octets and frames both ways, at three levels (Autobahn's counters)."""

    outgoing_wire: int = 0
    outgoing_websocket: int = 0
    outgoing_app: int = 0
    outgoing_frames: int = 0
    outgoing_messages: int = 0
    incoming_wire: int = 0
    incoming_websocket: int = 0
    incoming_app: int = 0
    incoming_frames: int = 0
    incoming_messages: int = 0
    preopen_outgoing_wire: int = 0
    preopen_incoming_wire: int = 0

    def to_json(self) -> dict[str, Any]:
        def ratio(a: int, b: int) -> float | None:
            return a / b if b > 0 else None

        return {
            "outgoingOctetsWireLevel": self.outgoing_wire,
            "outgoingOctetsWebSocketLevel": self.outgoing_websocket,
            "outgoingOctetsAppLevel": self.outgoing_app,
            "outgoingCompressionRatio": ratio(self.outgoing_websocket, self.outgoing_app),
            "outgoingWebSocketOverhead": ratio(self.outgoing_wire - self.outgoing_websocket,
                                               self.outgoing_websocket),
            "outgoingWebSocketFrames": self.outgoing_frames,
            "outgoingWebSocketMessages": self.outgoing_messages,
            "preopenOutgoingOctetsWireLevel": self.preopen_outgoing_wire,
            "incomingOctetsWireLevel": self.incoming_wire,
            "incomingOctetsWebSocketLevel": self.incoming_websocket,
            "incomingOctetsAppLevel": self.incoming_app,
            "incomingCompressionRatio": ratio(self.incoming_websocket, self.incoming_app),
            "incomingWebSocketOverhead": ratio(self.incoming_wire - self.incoming_websocket,
                                               self.incoming_websocket),
            "incomingWebSocketFrames": self.incoming_frames,
            "incomingWebSocketMessages": self.incoming_messages,
            "preopenIncomingOctetsWireLevel": self.preopen_incoming_wire,
        }
