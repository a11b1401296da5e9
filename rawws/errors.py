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

The names and constructors follow ``websockets`` 13+ (``websockets.exceptions``) where rawws has
the same error, so code written for websockets catches the same classes: ``WebSocketException``
is the base (:class:`RawwsError` is the same class), ``InvalidStatus(response)`` carries the
``response``, ``ConnectionClosed(rcvd, sent, rcvd_then_sent)`` carries the close frames as
:class:`~rawws.sansio.frames.Close` values. ``docs/websockets-compat.md`` lists every name and
which of them rawws raises.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = [
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DuplicateParameter",
    "HeadTooLarge",
    "HeaderLineTooLong",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidMessage",
    "InvalidMethod",
    "InvalidOrigin",
    "InvalidParameterName",
    "InvalidParameterValue",
    "InvalidProtocol",
    "InvalidProxy",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUTF8",
    "InvalidUpgrade",
    "InvalidVersion",
    "MultipleValuesError",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "RawwsError",
    "RequestLineTooLong",
    "SecurityError",
    "StatusLineTooLong",
    "TooManyFragments",
    "TooManyHeaders",
    "UsageError",
    "WebSocketException",
]


class RawwsError(Exception):
    """Base class of every exception raised by rawws (``WebSocketException`` is this class)."""


#: websockets' name for the base class: ``except websockets.WebSocketException`` catches every
#: rawws error.
WebSocketException = RawwsError


# --- peer errors -------------------------------------------------------------------------------


class ProtocolError(RawwsError):
    """The peer violated the WebSocket protocol: fail the connection with ``close_code``.

    RFC 6455 §7.4.1: 1002 indicates that an endpoint is terminating the connection due to a
    protocol error.
    """

    close_code: int = 1002
    #: The RFC 6455 section the peer broke (``"5.2"``), when the reader knows it.
    section: str | None = None

    def __init__(self, message: str, close_code: int | None = None, *,
                 section: str | None = None) -> None:
        super().__init__(message)
        if close_code is not None:
            self.close_code = close_code
        if section is not None:
            self.section = section


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

    def __init__(self, message: str = "", status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidMessage(InvalidHandshake):
    """The HTTP request or response could not be parsed (bad request line, bad header line)."""


class SecurityError(InvalidHandshake):
    """A request or response breaks a limit that protects the server (websockets' name)."""


class HeadTooLarge(SecurityError):
    """The HTTP head exceeds a limit: a header line, the header count or the total size.

    RFC 6585 §5: 431 Request Header Fields Too Large.
    """

    status = 431


class RequestLineTooLong(HeadTooLarge):
    """The request line exceeds ``max_line``: RFC 9112 §3, 414 URI Too Long."""

    status = 414


class StatusLineTooLong(HeadTooLarge):
    """Client side: the status line of the response exceeds ``max_line``."""


class HeaderLineTooLong(HeadTooLarge):
    """A header line exceeds ``max_line``: 431."""


class TooManyHeaders(HeadTooLarge):
    """More header lines than ``max_headers``: 431."""


class InvalidMethod(InvalidHandshake):
    """The upgrade request does not use GET (RFC 6455 §4.1): 405 Method Not Allowed."""

    status = 405

    def __init__(self, method: str, message: str = "") -> None:
        self.method = method
        super().__init__(message or f"WebSocket handshake requires GET, got {method}")


class InvalidProtocol(InvalidHandshake):
    """The upgrade request is not HTTP/1.1 (RFC 6455 §4.1): 505 for a later version, else 400."""

    def __init__(self, protocol: str, message: str = "") -> None:
        self.protocol = protocol
        super().__init__(message or f"WebSocket handshake requires HTTP/1.1, got {protocol}",
                         505 if protocol > "HTTP/1.1" else 400)


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


class InvalidHeaderFormat(InvalidHeader):
    """A header cannot be parsed by its grammar (websockets' name; rawws raises
    :class:`InvalidHeader`, of which this is a subclass, for the same cases)."""

    def __init__(self, name: str, error: str, header: str, pos: int) -> None:
        super().__init__(name, f"{error} at {pos} in {header}")


class InvalidHeaderValue(InvalidHeader):
    """A header parses but its value is not acceptable (websockets' name)."""


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


class DuplicateParameter(NegotiationError):
    """A parameter is repeated in an extension offer (websockets' name)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"duplicate parameter: {name}")


class InvalidParameterName(NegotiationError):
    """An extension parameter name is not known (websockets' name)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"invalid parameter name: {name}")


class InvalidParameterValue(NegotiationError):
    """An extension parameter has a value that is not allowed (websockets' name)."""

    def __init__(self, name: str, value: str | None) -> None:
        self.name = name
        self.value = value
        super().__init__(f"invalid value for parameter {name}: {value}")


class _ResponseLike(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> Any: ...


class InvalidStatus(InvalidHandshake):
    """Client side: the server answered with something other than ``101 Switching Protocols``.

    ``response`` is the :class:`~rawws.sansio.http11.Response` (``response.status_code``,
    ``response.headers``, ``response.body``: the body as far as it arrived with the head).
    ``status_code``, ``reason`` and ``body`` are shortcuts to it.
    """

    def __init__(self, response: _ResponseLike) -> None:
        self.response = response
        detail = f"HTTP {response.status} {response.reason}".rstrip()
        super().__init__(f"server rejected WebSocket connection: {detail}")

    @property
    def status_code(self) -> int:
        return self.response.status

    @property
    def reason(self) -> str:
        return self.response.reason

    @property
    def body(self) -> bytes:
        return self.response.body


class ProxyError(InvalidHandshake):
    """websockets' error for a failed proxy connection. Never raised: rawws does not connect
    through proxies (``docs/websockets-compat.md``)."""


class InvalidProxyMessage(ProxyError):
    """websockets' name; never raised by rawws (no proxy support)."""


class InvalidProxyStatus(ProxyError):
    """websockets' name; never raised by rawws (no proxy support)."""


class InvalidURI(RawwsError):
    """A ``ws://`` or ``wss://`` URI could not be parsed. ``uri`` is the URI, ``msg`` why."""

    def __init__(self, uri: str, msg: str = "") -> None:
        self.uri = uri
        self.msg = msg
        super().__init__(f"{uri} isn't a valid URI: {msg}" if msg else uri)


class InvalidProxy(RawwsError):
    """websockets' error for a bad proxy URL; never raised by rawws (no proxy support)."""


class TooManyFragments(RawwsError):
    """websockets' limit on the fragments of one message. Never raised: rawws bounds a
    message by its size in bytes (``max_size``), however many fragments carry it."""


class MultipleValuesError(RawwsError, LookupError, ValueError):
    """``headers[name]`` when the header appears more than once: use ``get_all(name)``.

    A ``LookupError`` as in websockets, and a ``ValueError`` as rawws raised before."""


# --- usage errors ------------------------------------------------------------------------------


class UsageError(RawwsError):
    """The application misused the API. Never sent to the peer."""


class InvalidState(UsageError, AssertionError):
    """The operation is not allowed in the connection's current state (an ``AssertionError``
    too, as in websockets)."""


class ConcurrencyError(UsageError, RuntimeError):
    """Two coroutines called an API that allows one caller at a time (e.g. ``recv()``); a
    ``RuntimeError`` too, as in websockets."""


# --- closed connections ------------------------------------------------------------------------


class _CloseLike(Protocol):
    @property
    def code(self) -> int: ...
    @property
    def reason(self) -> str: ...


class ConnectionClosed(RawwsError):
    """The connection is closed; raised by ``recv()``, ``send()`` and friends after the close.

    ``rcvd`` and ``sent`` are the close frames received and sent, as
    :class:`~rawws.sansio.frames.Close` values (``.code``, ``.reason``), or ``None`` when there
    was none; ``rcvd_then_sent`` tells their order when both exist. ``code`` and ``reason`` are
    those of the frame received, or 1006 and an empty reason when the TCP connection ended
    without one (RFC 6455 §7.1.5); ``sent_code`` is the code rawws sent, if any. (websockets
    deprecates ``code`` and ``reason``; rawws keeps them, without a warning.)
    """

    def __init__(self, rcvd: _CloseLike | None, sent: _CloseLike | None,
                 rcvd_then_sent: bool | None = None) -> None:
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent
        super().__init__(self._describe())

    def _describe(self) -> str:
        rcvd, sent = self.rcvd, self.sent
        if rcvd is None:
            return f"sent {sent}; no close frame received" if sent else (
                "no close frame received or sent")
        if sent is None:
            return f"received {rcvd}; no close frame sent"
        if self.rcvd_then_sent:
            return f"received {rcvd}; then sent {sent}"
        return f"sent {sent}; then received {rcvd}"

    def __str__(self) -> str:
        return self._describe()

    @property
    def code(self) -> int:
        return self.rcvd.code if self.rcvd is not None else 1006

    @property
    def reason(self) -> str:
        return self.rcvd.reason if self.rcvd is not None else ""

    @property
    def sent_code(self) -> int | None:
        return self.sent.code if self.sent is not None else None


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally: code 1000 or 1001 received and the handshake completed."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code or without a closing handshake."""
