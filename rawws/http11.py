"""websockets' import path for HTTP messages: ``from rawws.http11 import Request, Response``.

:class:`Request` and :class:`Response` here are rawws' own (:mod:`rawws.sansio.http11`) with
websockets' constructor order, so ``Response(200, "OK", Headers(), b"body")`` and
``Request("/path?x=1", headers)`` build what they build in websockets. The instances are
``rawws.Request`` / ``rawws.Response`` (subclasses that add nothing but the constructor), so
they can be returned from ``process_request`` and read with either set of names
(``status_code`` / ``status``, ``reason_phrase`` / ``reason``, ``path`` / ``target``).
"""

from __future__ import annotations

import http

from .sansio import http11 as _http11
from .sansio.http11 import Headers

__all__ = ["SERVER", "USER_AGENT", "Request", "Response"]

#: The default ``Server`` and ``User-Agent`` header values.
SERVER = "rawws"
USER_AGENT = "rawws"


class Request(_http11.Request):
    """``Request(path, headers, method="GET", protocol="HTTP/1.1")``, as websockets builds it."""

    __slots__ = ()

    def __init__(self, path: str, headers: Headers, method: str = "GET",
                 protocol: str = "HTTP/1.1") -> None:
        super().__init__(method, path, headers, version=protocol)


class Response(_http11.Response):
    """``Response(status_code, reason_phrase, headers, body=b"")``, as websockets builds it."""

    __slots__ = ()

    def __init__(self, status_code: int | http.HTTPStatus, reason_phrase: str,
                 headers: Headers, body: bytes = b"") -> None:
        super().__init__(int(status_code), headers, bytes(body), reason_phrase)
