"""Wire values: opcodes (RFC 6455 §5.2, §11.8) and close codes (RFC 6455 §7.4, §11.7).

Owns: the names of the numbers, and which close codes may appear in a close frame on the wire.
Does not own: what to do when a rule is broken (see :mod:`rawws.sansio.protocol`).
"""

from __future__ import annotations

import enum

__all__ = ["CLOSE_CODE_MEANINGS", "CloseCode", "Opcode", "is_valid_close_code"]


class Opcode(enum.IntEnum):
    """Frame opcodes, RFC 6455 §5.2. 3-7 and 11-15 are reserved and fail the connection."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA
    CONT = 0x0  # websockets' name for CONTINUATION (an alias: Opcode.CONT is Opcode.CONTINUATION)

    @property
    def is_control(self) -> bool:
        """RFC 6455 §5.5: control frames are identified by opcodes where the MSB is 1."""
        return self >= 0x8

    @property
    def is_data(self) -> bool:
        return self < 0x8


class CloseCode(enum.IntEnum):
    """Close status codes, with the names of the IANA "WebSocket Close Code Number" registry."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    # 1004 is reserved.
    NO_STATUS_RCVD = 1005  # MUST NOT be sent (§7.4.1): "no status code was actually present".
    ABNORMAL_CLOSURE = 1006  # MUST NOT be sent: the connection closed without a close frame.
    INVALID_FRAME_PAYLOAD_DATA = 1007
    INVALID_DATA = 1007  # websockets' name (an alias of INVALID_FRAME_PAYLOAD_DATA)
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # MUST NOT be sent: TLS handshake failure.


#: A short human meaning for every code rawws may report; the chat page and CLI show these.
CLOSE_CODE_MEANINGS: dict[int, str] = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status code",
    1006: "connection lost (no close frame)",
    1007: "invalid payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension missing",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure",
}

# Codes defined by the RFC and its registry that an endpoint may put in a close frame.
# 1004 (reserved), 1005, 1006 and 1015 (reserved for reporting, never sent) are excluded.
_SENDABLE_REGISTERED = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
                                  1014})


def is_valid_close_code(code: int) -> bool:
    """Return whether ``code`` may appear in a close frame (RFC 6455 §7.4.1, §7.4.2).

    Valid: 1000-1003, 1007-1014 (registered), 3000-3999 (registered with IANA for libraries and
    frameworks) and 4000-4999 (private use). Invalid: below 1000, 1004-1006, 1015, 1016-2999
    (reserved for future revisions of the RFC) and 5000 and above.
    """
    return code in _SENDABLE_REGISTERED or 3000 <= code <= 4999
