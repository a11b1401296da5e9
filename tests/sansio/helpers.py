"""Helpers for the sans-I/O tests: protocols in a known state, feeding strategies, frame reading."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rawws.errors import NegotiationError
from rawws.sansio.client import ClientProtocol
from rawws.sansio.handshake import OriginPolicy
from rawws.sansio.http11 import Request
from rawws.sansio.options import DEFAULT_OPTIONS, Options
from rawws.sansio.protocol import CloseReceived, Protocol, State
from rawws.sansio.server import ServerProtocol

#: The masking key of the RFC 6455 §5.7 examples.
RFC_KEY = bytes.fromhex("37fa213d")


def fixed_random(pattern: bytes = RFC_KEY) -> Callable[[int], bytes]:
    """A deterministic ``random`` that repeats ``pattern`` (so every masking key is the same)."""

    def random(n: int) -> bytes:
        return (pattern * (n // len(pattern) + 1))[:n]

    return random


def open_server(*, max_size: int | None = DEFAULT_OPTIONS.max_size,
                max_frame_size: int | None = None, fast_path: bool = True,
                random: Callable[[int], bytes] | None = None) -> ServerProtocol:
    """A server protocol already OPEN (no handshake), with the limits given."""
    options = Options(max_size=max_size, max_frame_size=max_frame_size)
    server = ServerProtocol(state=State.OPEN, options=options,
                            random=random if random is not None else fixed_random())
    server.fast_path = fast_path
    return server


def open_client(*, max_size: int | None = DEFAULT_OPTIONS.max_size,
                max_frame_size: int | None = None, fast_path: bool = True,
                random: Callable[[int], bytes] | None = None) -> ClientProtocol:
    """A client protocol already OPEN; its masking keys are all :data:`RFC_KEY` by default."""
    options = Options(max_size=max_size, max_frame_size=max_frame_size)
    client = ClientProtocol(host="example.com", port=80, state=State.OPEN, options=options,
                            random=random if random is not None else fixed_random())
    client.fast_path = fast_path
    return client


def splits(data: bytes) -> Iterator[list[bytes]]:
    """Every way the tests feed a vector: whole, byte by byte, and split at every offset."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


def feed(protocol: Protocol, chunks: list[bytes]) -> list[object]:
    events: list[object] = []
    for chunk in chunks:
        protocol.receive_data(chunk)
        events.extend(protocol.events_received())
    return events


def close_code_sent(protocol: Protocol) -> int | None:
    """Read what ``protocol`` sent with a peer protocol and return the close code it carried."""
    peer: Protocol = open_client() if isinstance(protocol, ServerProtocol) else open_server()
    for data in protocol.data_to_send():
        peer.receive_data(data)
    for event in peer.events_received():
        if isinstance(event, CloseReceived):
            return event.code
    return None


# --- handshakes ------------------------------------------------------------------------------

GOOD_REQUEST = (
    b"GET /chat?room=lobby HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def status_of(raw: bytes, *, origins: OriginPolicy | None = None,
              options: Options = DEFAULT_OPTIONS) -> int:
    """Feed a raw request to a server and return the status it answers with."""
    server = ServerProtocol(origins=origins, options=options)
    server.receive_data(raw)
    for event in server.events_received():
        if isinstance(event, Request):
            server.send_response(server.accept(event))
    out = b"".join(server.data_to_send())
    return int(out.split(b" ", 2)[1])


def request_with(*, drop: str | None = None, **replace: str) -> bytes:
    lines = GOOD_REQUEST.decode().split("\r\n")[1:-2]
    headers = [line.split(": ", 1) for line in lines]
    out = []
    for name, value in headers:
        key = name.replace("-", "_").lower()
        if name == drop:
            continue
        out.append(f"{name}: {replace.get(key, value)}")
    return ("GET /chat HTTP/1.1\r\n" + "\r\n".join(out) + "\r\n\r\n").encode()


# --- a fake extension, for the negotiation and the extension interface -------------------------

class FakeExtension:
    name = "x-test"
    rsv_bits = 0x40
    broadcast_key = None

    def decode(self, frame: object, *, max_size: int | None) -> object:
        return frame

    def encode(self, frame: object, *, compress: bool | None = None) -> object:
        return frame


class FakeServerFactory:
    name = "x-test"

    def process_request_params(self, params, accepted):  # type: ignore[no-untyped-def]
        if ("reject", None) in params:
            raise NegotiationError("declined")
        return list(params), FakeExtension()


class FakeClientFactory:
    name = "x-test"

    def get_request_params(self):  # type: ignore[no-untyped-def]
        return [("a", "1")]

    def process_response_params(self, params, accepted):  # type: ignore[no-untyped-def]
        if params != [("a", "1")]:
            raise NegotiationError("unexpected params")
        return FakeExtension()
