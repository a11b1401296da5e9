"""The server side of a connection (RFC 6455 §4.2): the opening handshake as the server reads
and answers it, then the state machine of :mod:`rawws.sansio.protocol`.

Owns: reading the request head (bounded, :class:`~rawws.sansio.http11.HeadParser`), telling an
upgrade from a plain HTTP request (whose body is read, bounded, before it becomes an event),
building the answer (:meth:`ServerProtocol.accept`: a 101 or the error the request deserves,
with the rules of :mod:`rawws.sansio.handshake`; :meth:`ServerProtocol.reject`), and sending it.

Does not own: the policy hooks (``process_request``, origins given by the application...), which
the adapter (:mod:`rawws.aio.server`) runs between the :class:`~rawws.sansio.http11.Request`
event and :meth:`ServerProtocol.send_response`.

Frames a client sends right after its request, before our 101, are kept and read once the 101
is sent (a client may pipeline them, RFC 6455 §4.1 does not forbid it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

from ..errors import InvalidHandshake, InvalidState, NegotiationError
from ..redact import redact_target, redact_text
from . import handshake
from .extensions import Extension, ServerExtensionFactory
from .http11 import BodyReader, Headers, HeadParser, Request, Response, parse_request_line
from .options import DEFAULT_OPTIONS, Options
from .protocol import Protocol, Side, State, Trigger
from .reader import Tracer

__all__ = ["ServerProtocol"]

#: The headers of every error response the protocol layer builds (see ServerProtocol.reject).
_REJECTION_HEADERS = (
    ("Content-Type", "text/plain; charset=utf-8"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
)


class ServerProtocol(Protocol):
    """The server side: reads the upgrade request (or a plain HTTP request), then frames.

    During the handshake, :meth:`receive_data` produces one :class:`Request` event; the caller
    answers with :meth:`send_response` of :meth:`accept` (101) or :meth:`reject` (an error).
    A request that is not an upgrade (no ``Upgrade: websocket``, no ``Sec-WebSocket-Key``) is a
    plain HTTP request: its body (``Content-Length``, at most ``options.max_body_size``) is read
    first.
    """

    __slots__ = (
        "_body",
        "_early",
        "_head",
        "_pending_extensions",
        "_plain",
        "extension_factories",
        "extra_headers",
        "origins",
        "request",
        "response",
        "select_subprotocol",
        "server_header",
        "subprotocol",
        "subprotocols",
    )

    side = Side.SERVER

    def __init__(
        self,
        *,
        options: Options = DEFAULT_OPTIONS,
        origins: handshake.OriginPolicy | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: Callable[[Sequence[str]], str | None] | None = None,
        extensions: Sequence[ServerExtensionFactory] = (),
        extra_headers: Headers | Sequence[tuple[str, str]] | None = None,
        server_header: str | None = "rawws",
        state: State = State.CONNECTING,
        random: Callable[[int], bytes] = os.urandom,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        super().__init__(options=options, state=state, random=random, logger=logger,
                         tracer=tracer)
        self.origins = origins
        self.subprotocols = subprotocols
        self.select_subprotocol = select_subprotocol
        self.extension_factories = extensions  # shared by every connection of a server
        self.extra_headers = extra_headers
        self.server_header = server_header
        self._head: HeadParser | None = HeadParser(
            max_line=options.max_line, max_headers=options.max_headers,
            max_head=options.max_head)
        self._plain: Request | None = None  # a plain request whose body is arriving
        self._body: BodyReader | None = None
        self._early = b""  # bytes that followed the head (pipelined frames)
        #: The request, once read, and the subprotocol chosen for it.
        self.request: Request | None = None
        self.subprotocol: str | None = None
        self.response: Response | None = None
        self._pending_extensions: list[Extension] = []

    @property
    def max_body_size(self) -> int:
        return self.options.max_body_size

    def _receive_handshake(self, data: bytes) -> None:
        if self.response is not None:
            return  # a response is decided: ignore anything else the client sends
        try:
            if self._body is not None:
                self._receive_body(data)
                return
            if self.request is not None:
                self._early += data  # frames sent before our 101: keep them for later
                return
            assert self._head is not None
            head = self._head.feed(data)
            if head is None:
                return
            rest = self._head.rest
            self._head = None  # the parser and its buffer are not needed any more
            start, header_items = head
            method, target, version = parse_request_line(start)
            request = Request(method, target, Headers(header_items), version=version)
            if request.is_upgrade:
                handshake.check_no_body(request.headers)  # before any hook sees it
                self.request = request
                self._early = rest
                self._events.append(request)
            else:
                self._body = BodyReader(request.headers, max_body_size=self.max_body_size)
                self._plain = request
                self._receive_body(rest)
        except InvalidHandshake as exc:
            self.failure = exc
            response = self.reject(exc.status, str(exc))
            self.send_response(response)
            # The request could not be read: there is no Request event to answer; the
            # response sent is the event (the caller may count or log it).
            self._events.append(response)

    def _receive_body(self, data: bytes) -> None:
        assert self._body is not None and self._plain is not None
        body = self._body.feed(data)
        if body is not None:
            request, self._plain, self._body = self._plain, None, None
            request.body = body
            self.request = request
            self._events.append(request)

    def accept(self, request: Request) -> Response:
        """Validate ``request`` and build the response: 101, or the error it deserves."""
        try:
            table = request.headers.table()
            key = handshake.check_request(request, origins=self.origins, table=table)
            offered = handshake.parse_tokens(table.get("sec-websocket-protocol", ()))
            if self.select_subprotocol is not None:
                subprotocol = self.select_subprotocol(offered)
                if subprotocol is not None and subprotocol not in offered:
                    raise NegotiationError(f"selected subprotocol {subprotocol!r} not offered")
            else:
                subprotocol = handshake.negotiate_subprotocol(offered, self.subprotocols)
            ext_header, extensions = handshake.negotiate_server_extensions(
                table.get("sec-websocket-extensions", ()), self.extension_factories
            )
        except InvalidHandshake as exc:
            self.failure = exc
            if self.debug:
                self.logger.debug("! invalid handshake: %s", redact_text(str(exc)))
            return self.reject(exc.status, str(exc),
                               [("Sec-WebSocket-Version", "13")] if exc.status == 426 else ())
        response = handshake.build_accept_response(key, subprotocol=subprotocol,
                                                   extensions_header=ext_header)
        self._add_common_headers(response.headers)
        self.subprotocol = subprotocol
        self._pending_extensions = extensions
        return response

    def reject(self, status: int, text: str = "",
               headers: Sequence[tuple[str, str]] | Headers = ()) -> Response:
        """Build an error response with a plain-text body.

        Every answer the protocol layer makes on its own (400, 403, 405, 408, 411, 413, 414,
        426, 431, 503...) is built here, and carries ``X-Content-Type-Options: nosniff`` (the
        body is text, never to be sniffed as HTML: the text may quote the request) and
        ``Cache-Control: no-store`` (a refusal is about this request, not a resource).
        """
        body = (text + "\n").encode() if text else b""
        hdrs = Headers(headers)
        for name, value in _REJECTION_HEADERS:
            if name not in hdrs:
                hdrs[name] = value
        return Response(status, hdrs, body)

    def _add_common_headers(self, headers: Headers) -> None:
        if self.extra_headers is not None:
            headers.extend(self.extra_headers)
        if self.server_header and "Server" not in headers:
            headers["Server"] = self.server_header

    def send_response(self, response: Response) -> None:
        """Send the handshake response (or the answer to a plain request).

        A 101 opens the connection; anything else ends it: the server closes TCP after writing.
        """
        if self.state is not State.CONNECTING or self.response is not None:
            raise InvalidState("a response was already sent")
        self.response = response
        out = self._writer.out
        if response.status == 101:
            self._use_extensions(self._pending_extensions)
            self._pending_extensions = []
            out.append(response.serialize())
            if self.debug:
                self.logger.debug("> HTTP 101 to %s",
                                  redact_target(self.request.target) if self.request else "")
            self._transition(Trigger.HANDSHAKE_DONE)
            early, self._early = self._early, b""
            if early:
                self.receive_data(early)
            return
        headers = response.headers
        if response.status >= 400 and self.failure is None:
            self.failure = InvalidHandshake(f"rejected with HTTP {response.status}",
                                            response.status)
        if "Content-Length" not in headers:
            headers["Content-Length"] = str(len(response.body))
        if "Connection" not in headers:
            headers["Connection"] = "close"
        self._add_common_headers(headers)
        out.append(response.serialize())
        if self.debug:
            self.logger.debug("> HTTP %d %s", response.status, response.reason)
        self._reader.stop()
        self._transition(Trigger.HANDSHAKE_FAILED)
