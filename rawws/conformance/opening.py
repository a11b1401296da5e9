"""The opening handshake of the fuzzer's endpoint, both sides (RFC 6455 §4).

Owns: the upgrade request the fuzzer sends as a client (``fuzzingclient`` mode) and how it
checks the server's answer; how it reads a client's upgrade request as a server
(``fuzzingserver`` mode) and answers it. Lenient where Autobahn's endpoint is lenient (header
parsing, repeated headers joined with ``", "``), strict where it is strict (the 101 status,
``Upgrade``, ``Connection``, ``Sec-WebSocket-Accept``, the key's form, the version), so that a
testee fails the opening handshake in the cases where it fails under wstest. A handshake that
fails ends the case before it opened: its closing verdict is ``FAILED``.

Everything after the handshake is :class:`rawws.conformance.endpoint.Endpoint`'s.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .endpoint import Endpoint
from .pmce import Deflate

__all__ = ["ClientEndpoint", "HandshakeRejected", "ServerEndpoint", "UpgradeRequest"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeRejected(Exception):
    """Raised by a server's ``on_connect`` to refuse the upgrade with an HTTP status."""

    def __init__(self, reason: str, status: int = 500) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass
class UpgradeRequest:
    """An upgrade request as the fuzzing server read it."""

    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    peer: str
    extensions: str | None = None
    #: Set by ``on_connect``: what to answer (a ``DeflateAccept`` picks permessage-deflate).
    accept: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def _parse_head(head: bytes) -> tuple[str, dict[str, str], dict[str, int]]:
    """The start line and the headers (names lower-cased, repeats joined with ``, ``)."""
    lines = head.decode("utf-8", "replace").splitlines()
    headers: dict[str, str] = {}
    counts: dict[str, int] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            continue
        key = name.strip().lower()
        if key in headers:
            headers[key] += ", " + value.strip()
            counts[key] += 1
        else:
            headers[key] = value.strip()
            counts[key] = 1
    return (lines[0].strip() if lines else ""), headers, counts


def _has_token(value: str, token: str) -> bool:
    return any(part.strip().lower() == token for part in value.split(","))


class ClientEndpoint(Endpoint):
    """The fuzzer as a client (``fuzzingclient`` mode): tests a server."""

    is_server = False

    def __init__(self, *, host: str, port: int, resource: str, user_agent: str,
                 offers: list[str], random: Callable[[int], bytes] = os.urandom,
                 on_response: Callable[[dict[str, str], str | None], None] | None = None,
                 accept_response: Callable[[str], Deflate | None] | None = None) -> None:
        super().__init__(random=random)
        self.host, self.port, self.resource = host, port, resource
        self.user_agent, self.offers = user_agent, offers
        self.on_response = on_response
        self.accept_response = accept_response
        self._key = base64.b64encode(self.random(16))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        lines = [f"GET {self.resource} HTTP/1.1", f"User-Agent: {self.user_agent}",
                 f"Host: {self.host}:{self.port}", "Upgrade: WebSocket", "Connection: Upgrade",
                 "Pragma: no-cache", "Cache-Control: no-cache",
                 f"Sec-WebSocket-Key: {self._key.decode()}"]
        if self.offers:
            lines.append("Sec-WebSocket-Extensions: " + ", ".join(self.offers))
        lines.append("Sec-WebSocket-Version: 13")
        request = "\r\n".join(lines) + "\r\n\r\n"
        self.http_request = request
        self._write(request.encode())

    def _fail_handshake(self, reason: str) -> None:
        self.was_not_clean_reason = reason
        self.drop_connection(abort=True)

    def _receive_handshake(self) -> None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[: end + 4])
        del self._buffer[: end + 4]
        self.http_response = head.decode("utf-8", "replace")
        status_line, headers, counts = _parse_head(head)
        parts = status_line.split()
        if len(parts) < 2 or parts[0] != "HTTP/1.1":
            return self._fail_handshake(f"bad HTTP response status line {status_line!r}")
        if parts[1] != "101":
            return self._fail_handshake(f"WebSocket connection upgrade failed ({status_line})")
        if headers.get("upgrade", "").strip().lower() != "websocket":
            return self._fail_handshake("HTTP Upgrade header missing or not 'websocket'")
        if not _has_token(headers.get("connection", ""), "upgrade"):
            return self._fail_handshake("HTTP Connection header does not include 'upgrade'")
        expected = base64.b64encode(hashlib.sha1(self._key + _GUID).digest()).decode()
        if counts.get("sec-websocket-accept", 0) != 1:
            return self._fail_handshake("Sec-WebSocket-Accept missing or repeated")
        if headers["sec-websocket-accept"] != expected:
            return self._fail_handshake("HTTP Sec-WebSocket-Accept bogus value")
        extensions = headers.get("sec-websocket-extensions")
        if extensions is not None:
            if counts["sec-websocket-extensions"] > 1:
                return self._fail_handshake("Sec-WebSocket-Extensions appears more than once")
            if self.accept_response is None:
                return self._fail_handshake(f"server wants extensions we did not offer: "
                                            f"{extensions}")
            try:
                self.pmce = self.accept_response(extensions)
            except ValueError as exc:
                return self._fail_handshake(str(exc))
            if self.pmce is None:
                return self._fail_handshake(f"extension response refused: {extensions}")
        if self.on_response is not None:
            self.on_response(headers, extensions)
        self._opened()


class ServerEndpoint(Endpoint):
    """The fuzzer as a server (``fuzzingserver`` mode): tests a client."""

    is_server = True

    def __init__(self, *, on_connect: Callable[[ServerEndpoint, UpgradeRequest], None],
                 server_name: str, random: Callable[[int], bytes] = os.urandom) -> None:
        super().__init__(random=random)
        self.on_connect = on_connect
        self.server_name = server_name
        self.request: UpgradeRequest | None = None

    def _fail_handshake(self, reason: str, status: int = 400) -> None:
        self.was_not_clean_reason = reason
        phrase = reason.replace("\r", " ").replace("\n", " ")
        self._write(f"HTTP/1.1 {status} {phrase}\r\n\r\n".encode())
        self.drop_connection(abort=False)

    def _receive_handshake(self) -> None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[: end + 4])
        del self._buffer[: end + 4]
        self.http_request = head.decode("utf-8", "replace")
        request_line, headers, counts = _parse_head(head)
        parts = request_line.split()
        if len(parts) != 3:
            return self._fail_handshake(f"Bad HTTP request status line {request_line!r}")
        if parts[0] != "GET":
            return self._fail_handshake(f"HTTP method {parts[0]!r} not allowed", 405)
        if parts[2] != "HTTP/1.1":
            return self._fail_handshake(f"Unsupported HTTP version {parts[2]!r}", 505)
        url = urlsplit(parts[1])
        if url.fragment:
            return self._fail_handshake("HTTP requested resource contains a fragment")
        if counts.get("host", 0) != 1:
            return self._fail_handshake("HTTP Host header missing or repeated")
        if not _has_token(headers.get("upgrade", ""), "websocket"):
            return self._fail_handshake("HTTP Upgrade header missing or not 'websocket'", 426)
        if not _has_token(headers.get("connection", ""), "upgrade"):
            return self._fail_handshake("HTTP Connection header does not include 'upgrade'")
        version = headers.get("sec-websocket-version")
        if version is None or counts["sec-websocket-version"] > 1 or version.strip() not in (
                "8", "13"):
            self.was_not_clean_reason = f"WebSocket version {version} not supported"
            self._write(b"HTTP/1.1 400 WebSocket version not supported\r\n"
                        b"Sec-WebSocket-Version: 13,8\r\n\r\n")
            return self.drop_connection(abort=False)
        key = headers.get("sec-websocket-key", "")
        if counts.get("sec-websocket-key", 0) != 1 or not _valid_key(key):
            return self._fail_handshake(f"bad Sec-WebSocket-Key {key!r}")
        if counts.get("sec-websocket-extensions", 0) > 1:
            return self._fail_handshake("Sec-WebSocket-Extensions appears more than once")
        request = UpgradeRequest(url.path, parse_qs(url.query), headers, self.peer,
                                 headers.get("sec-websocket-extensions"))
        self.request = request
        try:
            self.on_connect(self, request)
        except HandshakeRejected as exc:
            return self._fail_handshake(exc.reason, exc.status)
        except ValueError as exc:
            return self._fail_handshake(str(exc))
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        lines = ["HTTP/1.1 101 Switching Protocols", f"Server: {self.server_name}",
                 "Upgrade: WebSocket", "Connection: Upgrade", f"Sec-WebSocket-Accept: {accept}"]
        if self.pmce is not None:
            lines.append(f"Sec-WebSocket-Extensions: {self.pmce.params['accepted']}")
        response = "\r\n".join(lines) + "\r\n\r\n"
        self.http_response = response
        self._write(response.encode())
        self._opened()


def _valid_key(key: str) -> bool:
    """§4.1: a base64-encoded 16-byte value: 24 characters ending in ``==``."""
    body = key[:-2]
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
    return len(key) == 24 and key.endswith("==") and all(c in alphabet for c in body)
