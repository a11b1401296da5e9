"""The bare minimum of the WebSocket opening handshake, shared by the floor and null servers.

Only what a well-behaved benchmark client sends is handled: no validation beyond finding the key.
"""

from __future__ import annotations

import base64
import hashlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def parse_request(head: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """Return the request path and the headers (lower-cased names) of a request head."""
    lines = head.split(b"\r\n")
    path = lines[0].split(b" ")[1]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return path, headers


def response(key: bytes, extensions: bytes | None = None) -> bytes:
    ext = b"Sec-WebSocket-Extensions: " + extensions + b"\r\n" if extensions else b""
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n" + ext + b"\r\n"
    )


def header(b0: int, n: int) -> bytes:
    """An unmasked (server) frame header for a payload of n bytes."""
    if n < 126:
        return bytes((b0, n))
    if n < 65536:
        return bytes((b0, 126)) + n.to_bytes(2, "big")
    return bytes((b0, 127)) + n.to_bytes(8, "big")


def frame_span(buf: bytes, pos: int) -> tuple[int, int] | None:
    """Where the payload of the unmasked (server) frame at ``pos`` starts and how long it is;
    ``None`` while its header is incomplete."""
    size = len(buf)
    if size - pos < 2:
        return None
    n = buf[pos + 1] & 0x7F
    if n < 126:
        return pos + 2, n
    if n == 126:
        if size - pos < 4:
            return None
        return pos + 4, int.from_bytes(buf[pos + 2 : pos + 4], "big")
    if size - pos < 10:
        return None
    return pos + 10, int.from_bytes(buf[pos + 2 : pos + 10], "big")
