"""The ``websocket.http.response`` extension: an HTTP response instead of the 101.

Owns: checking ``websocket.http.response.start`` (a final status, safe headers) and
``websocket.http.response.body`` messages, and assembling the response. With a
``Content-Length`` from the application, its head may go out at once and the body as it comes
(the application framed it, as wsproto streams it); without one, the body is buffered and
counted, and sent whole with its ``Content-Length``.

Does not own: writing (the shell sends the head through the core's ``send_response``, which
adds ``Connection: close``), or what happens to the connection after it.
"""

from __future__ import annotations

from typing import Any

from ..sansio.http11 import Headers, Response
from .scope import response_headers

__all__ = ["INTERNAL_ERROR_BODY", "Denial", "check_status", "internal_error"]

#: The body of the 500 sent when the application fails before deciding (uvicorn's, byte for
#: byte: clients and tests compare it).
INTERNAL_ERROR_BODY = b"Internal Server Error"


def check_status(status: object) -> int:
    """The status of a ``websocket.http.response.start``: a final status, 200-599.

    uvicorn's message for an out-of-range status, so that logs read the same; 1xx statuses are
    refused too (they are not final responses, and a 101 would claim an upgrade that did not
    happen).
    """
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
    return status


def internal_error(headers: Headers) -> Response:
    """The 500 for an application that failed before deciding; ``headers``: the server's."""
    headers.extend([("Content-Type", "text/plain; charset=utf-8")])
    return Response(500, headers, INTERNAL_ERROR_BODY)


class Denial:
    """A denial response being built from ``start`` (and the server's ``headers`` first)."""

    __slots__ = ("_chunks", "response", "streaming")

    def __init__(self, start: dict[str, Any], headers: Headers) -> None:
        status = check_status(start.get("status"))
        headers.extend(response_headers(start.get("headers") or (),
                                        what="websocket.http.response.start"))
        self.response = Response(status, headers)
        #: The application framed the body: send the head now, the body as it comes.
        self.streaming = "Content-Length" in headers
        self._chunks: list[bytes] = []

    def body(self, message: dict[str, Any]) -> tuple[bytes, bool]:
        """Check a body message: ``(bytes, whether the body is finished)``. When not
        streaming, the bytes are kept for :meth:`complete` and ``b""`` is returned."""
        body = message.get("body", b"")
        if not isinstance(body, bytes | bytearray):
            raise RuntimeError("websocket.http.response.body: 'body' must be bytes")
        finished = not message.get("more_body", False)
        if self.streaming:
            return bytes(body), finished
        self._chunks.append(bytes(body))
        return b"", finished

    def complete(self) -> Response:
        """The whole response (not streaming), with the body received so far."""
        self.response.body = b"".join(self._chunks)
        self._chunks = []
        return self.response
