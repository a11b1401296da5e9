"""The client side of a connection (RFC 6455 §4.1): the upgrade request, the checks of the
server's answer, then the state machine of :mod:`rawws.sansio.protocol`.

Owns: the client's handshake key, sending the request (built by
:func:`rawws.sansio.handshake.build_request`), reading the response head (bounded) and failing
the connection when it is not a valid 101 for our request (§4.1: "the client MUST _Fail the
WebSocket Connection_").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

from ..errors import InvalidHandshake, InvalidStatus
from ..redact import redact_target, redact_text
from . import handshake
from .extensions import ClientExtensionFactory
from .http11 import Headers, HeadParser, Request, Response, parse_status_line
from .options import DEFAULT_OPTIONS, Options
from .protocol import Protocol, Side, State, Trigger
from .reader import Tracer

__all__ = ["ClientProtocol"]


class ClientProtocol(Protocol):
    """The client side: sends the upgrade request, validates the 101, then frames."""

    __slots__ = (
        "_head",
        "extension_factories",
        "extra_headers",
        "host",
        "key",
        "origin",
        "port",
        "request",
        "resource",
        "response",
        "secure",
        "subprotocol",
        "subprotocols",
        "user_agent",
    )

    side = Side.CLIENT

    def __init__(
        self,
        *,
        host: str,
        port: int,
        resource: str = "/",
        secure: bool = False,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        extensions: Sequence[ClientExtensionFactory] = (),
        extra_headers: Headers | Sequence[tuple[str, str]] | None = None,
        user_agent: str | None = "rawws",
        options: Options = DEFAULT_OPTIONS,
        state: State = State.CONNECTING,
        random: Callable[[int], bytes] = os.urandom,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        super().__init__(options=options, state=state, random=random, logger=logger,
                         tracer=tracer)
        self.host = host
        self.port = port
        self.resource = resource
        self.secure = secure
        self.origin = origin
        self.subprotocols = list(subprotocols) if subprotocols else None
        self.extension_factories = list(extensions)
        self.extra_headers = extra_headers
        self.user_agent = user_agent
        self.key = handshake.generate_key(self.random)
        self._head: HeadParser | None = HeadParser(
            max_line=options.max_line, max_headers=options.max_headers,
            max_head=options.max_head)
        self.request: Request | None = None
        self.response: Response | None = None
        self.subprotocol: str | None = None

    def connect(self) -> Request:
        """Build the upgrade request (RFC 6455 §4.1)."""
        return handshake.build_request(
            host=self.host, port=self.port, resource=self.resource, secure=self.secure,
            key=self.key, origin=self.origin, subprotocols=self.subprotocols,
            extension_factories=self.extension_factories, extra_headers=self.extra_headers,
            user_agent=self.user_agent)

    def send_request(self, request: Request) -> None:
        self.request = request
        self._writer.out.append(request.serialize())
        if self.debug:
            self.logger.debug("> GET %s HTTP/1.1", redact_target(request.target))

    def _receive_handshake(self, data: bytes) -> None:
        try:
            assert self._head is not None
            head = self._head.feed(data)
            if head is None:
                return
            rest = self._head.rest
            self._head = None
            start, header_items = head
            _, status, reason = parse_status_line(start)
            headers = Headers(header_items)
            if status != 101:
                raise InvalidStatus(Response(status, headers, rest, reason=reason))
            self.subprotocol = handshake.check_response_headers(
                headers, self.key, self.subprotocols
            )
            extensions = handshake.negotiate_client_extensions(
                headers.get_all("Sec-WebSocket-Extensions"), self.extension_factories
            )
        except InvalidHandshake as exc:
            self.failure = exc
            if self.debug:
                self.logger.debug("! handshake failed: %s", redact_text(str(exc)))
            self._reader.stop()
            self._transition(Trigger.HANDSHAKE_FAILED)
            return
        self.response = Response(status, headers, reason=reason)
        self._use_extensions(extensions)
        self._transition(Trigger.HANDSHAKE_DONE)
        self._events.append(self.response)
        if rest:
            self.receive_data(rest)
