"""UTF-8 text that fails at the first invalid byte (RFC 6455 §8.1).

Owns: turning text messages into ``str``, whole (:func:`decode_text`, which raises
:class:`~rawws.errors.InvalidUTF8`, 1007) or in pieces while they arrive (:class:`Utf8Decoder`,
which raises :class:`UnicodeDecodeError`, as a codec does: :func:`invalid` turns it into the
same InvalidUTF8), and deciding as early as possible that the bytes can never become valid
UTF-8.

RFC 6455 §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte
stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
Connection_." Autobahn 6.4.x checks that this happens *before* the rest of the message arrives
(fail fast), so validation runs on every fragment and on every part of a frame as it is read.

CPython's incremental decoder (in C) already rejects most invalid sequences at the first byte that
makes them invalid. One case it leaves pending: a three-byte sequence that starts
``ED A0``-``ED BF`` (a UTF-16 surrogate, never valid in UTF-8) is only rejected when its third
byte arrives. We check that case on the pending bytes so the failure is as early as the
encoding allows.
"""

from __future__ import annotations

import codecs

from ..errors import InvalidUTF8

__all__ = ["Utf8Decoder", "decode_text", "invalid"]

_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")


def invalid(exc: UnicodeDecodeError) -> InvalidUTF8:
    """The peer error (1007, §8.1) for a decoding error."""
    return InvalidUTF8(f"text message is not valid UTF-8: {exc.reason}", section="8.1")


def decode_text(data: bytes | bytearray) -> str:
    """A whole text message as ``str``; :class:`~rawws.errors.InvalidUTF8` if it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(exc) from None


class Utf8Decoder:
    """Decode UTF-8 in pieces; raise :class:`UnicodeDecodeError` as soon as the input cannot
    become valid."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = _IncrementalDecoder("strict")

    def decode(self, data: bytes | bytearray | memoryview, final: bool = False) -> str:
        """Return the text decoded from ``data`` (bytes of an incomplete character are held;
        with ``final``, an incomplete character is an error)."""
        text: str = self._decoder.decode(data, final)
        if not final:
            pending = self._decoder.getstate()[0]
            # A surrogate (U+D800-U+DFFF) encoded as ED A0..BF xx: invalid from its second byte.
            if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                raise UnicodeDecodeError(
                    "utf-8", pending, 0, 2, "encoded surrogate (invalid in UTF-8)")
        return text
