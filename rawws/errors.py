"""The one exception tree of rawws.

Three families, kept apart on purpose (the split follows h11):

* **Peer errors** (:class:`ProtocolError` and subclasses): the other side broke RFC 6455 or
  RFC 7692. Each carries the ``close_code`` that the connection is failed with. The sans-I/O core
  never lets these escape from ``receive_data``; it catches them and fails the connection.
* **Handshake errors** (:class:`InvalidHandshake` and subclasses): the opening handshake cannot
  complete. Each carries the HTTP ``status`` the server answers with (400, 403, 426, 431, ...).
* **Usage errors** (:class:`UsageError` and subclasses): the application misused the API (two
  concurrent ``recv()``, sending before the handshake). They never touch the wire.

:class:`ConnectionClosed` is what an application sees when it uses a connection that has closed.
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HeadTooLarge",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidMessage",
    "InvalidOrigin",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUTF8",
    "InvalidUpgrade",
    "InvalidVersion",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "RawwsError",
    "UsageError",
]


class RawwsError(Exception):
    """Base class of every exception raised by rawws."""


# --- peer errors -------------------------------------------------------------------------------


class ProtocolError(RawwsError):
    """The peer violated the WebSocket protocol: fail the connection with ``close_code``.

    RFC 6455 §7.4.1: 1002 indicates that an endpoint is terminating the connection due to a
    protocol error.
    """

    close_code: int = 1002

    def __init__(self, message: str, close_code: int | None = None) -> None:
        super().__init__(message)
        if close_code is not None:
            self.close_code = close_code


class InvalidUTF8(ProtocolError):
    """A text message or close reason is not valid UTF-8 (RFC 6455 §8.1): close code 1007."""

    close_code = 1007


class PayloadTooBig(ProtocolError):
    """A frame or message exceeds the configured limit: close code 1009 (RFC 6455 §7.4.1)."""

    close_code = 1009


# --- handshake errors --------------------------------------------------------------------------


class InvalidHandshake(RawwsError):
    """The opening handshake (RFC 6455 §4) failed. ``status`` is the HTTP status to answer with."""

    status: int = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidMessage(InvalidHandshake):
    """The HTTP request or response could not be parsed (bad request line, bad header line)."""


class HeadTooLarge(InvalidHandshake):
    """The HTTP head exceeds a limit: a header line, the header count or the total size.

    RFC 6585 §5: 431 Request Header Fields Too Large.
    """

    status = 431


class InvalidHeader(InvalidHandshake):
    """A required header is missing or has an invalid value."""

    def __init__(self, name: str, value: str | None = None, status: int | None = None) -> None:
        self.name = name
        self.value = value
        if value is None:
            message = f"missing {name} header"
        elif value == "":
            message = f"empty {name} header"
        else:
            message = f"invalid {name} header: {value!r}"
        super().__init__(message, status)


class InvalidUpgrade(InvalidHeader):
    """``Upgrade`` or ``Connection`` does not ask for a WebSocket upgrade.

    RFC 6455 §4.2.2 lets the server answer 400; RFC 7231 §6.5.15 suggests 426 with an ``Upgrade``
    header when the client can switch; rawws answers 426 only for a wrong version and 400 here.
    """


class InvalidVersion(InvalidHeader):
    """``Sec-WebSocket-Version`` is not 13: answer 426 with ``Sec-WebSocket-Version: 13``.

    RFC 6455 §4.4: the server MUST ... include a Sec-WebSocket-Version header field containing
    the versions it supports.
    """

    status = 426


class InvalidOrigin(InvalidHeader):
    """The ``Origin`` header is not allowed by the server's origin policy: 403."""

    status = 403


class NegotiationError(InvalidHandshake):
    """An extension or subprotocol negotiation failed."""


class InvalidStatus(InvalidHandshake):
    """Client side: the server answered with something other than ``101 Switching Protocols``."""

    def __init__(self, status_code: int, reason: str = "", body: bytes = b"") -> None:
        self.status_code = status_code
        self.reason = reason
        self.body = body
        super().__init__(f"server rejected WebSocket connection: HTTP {status_code} {reason}")


class InvalidURI(RawwsError):
    """A ``ws://`` or ``wss://`` URI could not be parsed."""


# --- usage errors ------------------------------------------------------------------------------


class UsageError(RawwsError):
    """The application misused the API. Never sent to the peer."""


class InvalidState(UsageError):
    """The operation is not allowed in the connection's current state."""


class ConcurrencyError(UsageError):
    """Two coroutines called an API that allows one caller at a time (e.g. ``recv()``)."""


# --- closed connections ------------------------------------------------------------------------


class ConnectionClosed(RawwsError):
    """The connection is closed; raised by ``recv()``, ``send()`` and friends after the close.

    ``code`` and ``reason`` are those of the close frame received from the peer, or 1006 and an
    empty reason when the TCP connection ended without one (RFC 6455 §7.1.5). ``sent_code`` is the
    code rawws sent, if any.
    """

    def __init__(self, code: int, reason: str = "", sent_code: int | None = None) -> None:
        self.code = code
        self.reason = reason
        self.sent_code = sent_code
        detail = f"{code} ({reason})" if reason else f"{code}"
        super().__init__(f"connection closed: {detail}")


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally: code 1000 or 1001 received and the handshake completed."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code or without a closing handshake."""
