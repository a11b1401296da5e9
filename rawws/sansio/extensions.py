"""The extension interface (RFC 6455 §9): what a negotiated extension must provide.

Owns: the typing protocols that :mod:`rawws.sansio.handshake` negotiates with and that
:mod:`rawws.sansio.protocol` calls per data frame. permessage-deflate (:mod:`.deflate`) is the
one implementation rawws ships.

Control frames never reach an extension (RFC 7692 §6.1: control frames are not compressed).
The protocol checks that the RSV bits of a received frame are owned by a negotiated extension
(``rsv_bits``) before calling :meth:`Extension.decode` (RFC 6455 §5.2).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol

from .frames import Frame

__all__ = ["ClientExtensionFactory", "Extension", "ExtensionParams", "ServerExtensionFactory"]

#: Parameters of one extension offer or response: ``[(name, value or None), ...]``.
ExtensionParams = list[tuple[str, str | None]]


class Extension(Protocol):
    """A negotiated extension, attached to one connection."""

    name: str
    #: RSV bits this extension owns, in header position (``frames.RSV1`` is ``0x40``).
    rsv_bits: int

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        """Decode one received data frame (first, continuation or final).

        The decoded payload must not exceed ``max_size`` bytes (``None``: unlimited); raise
        :class:`~rawws.errors.PayloadTooBig` as soon as it would. Raise
        :class:`~rawws.errors.ProtocolError` (with its ``close_code``) for bad data.
        """
        ...

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        """Encode one outgoing data frame. ``compress=False`` forces the frame through unchanged;
        ``None`` lets the extension decide (a size threshold, for example)."""
        ...

    @property
    def broadcast_key(self) -> Hashable | None:
        """Equal keys mean equal output: two connections whose extensions have the same key
        encode any message to identical bytes. ``None`` when the output depends on this
        connection's history (context takeover), so the message must be encoded per connection.
        """
        ...


class ServerExtensionFactory(Protocol):
    """Server side of a negotiation: accepts or declines one offer from the client."""

    name: str

    def process_request_params(
        self, params: Sequence[tuple[str, str | None]], accepted: Sequence[Extension]
    ) -> tuple[ExtensionParams, Extension]:
        """Accept an offer: return the response parameters and the extension object.

        Raise :class:`~rawws.errors.NegotiationError` to decline this offer; the next offer in
        the header is then tried (RFC 6455 §9.1).
        """
        ...


class ClientExtensionFactory(Protocol):
    """Client side of a negotiation: makes the offer, then checks the server's response."""

    name: str

    def get_request_params(self) -> ExtensionParams:
        """The parameters to offer in ``Sec-WebSocket-Extensions``."""
        ...

    def process_response_params(
        self, params: Sequence[tuple[str, str | None]], accepted: Sequence[Extension]
    ) -> Extension:
        """Check the server's response; raise :class:`~rawws.errors.NegotiationError` to fail
        the handshake (RFC 6455 §4.1: the client MUST fail the connection if the response
        includes an extension it did not ask for or parameters it cannot accept)."""
        ...
