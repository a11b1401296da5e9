"""The client side: the upgrade request (exact bytes), the checks of the server's answer."""

from __future__ import annotations

import pytest

from rawws.errors import InvalidHandshake, InvalidHeader, InvalidStatus, NegotiationError
from rawws.sansio.client import ClientProtocol
from rawws.sansio.handshake import accept_key
from rawws.sansio.protocol import State

from .helpers import FakeClientFactory, feed, fixed_random

RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def _client(**kwargs: object) -> ClientProtocol:
    return ClientProtocol(host="example.com", port=8765, resource="/chat?x=1",
                          random=fixed_random(bytes(range(16))), **kwargs)  # type: ignore[arg-type]


def _response_for(client: ClientProtocol, extra: bytes = b"", accept: str | None = None) -> bytes:
    accept = accept or accept_key(client.key)
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n" + extra + b"\r\n")




class TestClientHandshake:
    def test_request(self) -> None:
        client = _client(subprotocols=["chat"], origin="http://example.com")
        client.send_request(client.connect())
        assert b"".join(client.data_to_send()) == (
            b"GET /chat?x=1 HTTP/1.1\r\n"
            b"Host: example.com:8765\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw==\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            b"Origin: http://example.com\r\n"
            b"Sec-WebSocket-Protocol: chat\r\n"
            b"User-Agent: rawws\r\n"
            b"\r\n"
        )

    def test_default_port_not_in_host(self) -> None:
        client = ClientProtocol(host="example.com", port=443, secure=True)
        assert client.connect().headers["Host"] == "example.com"
        client = ClientProtocol(host="::1", port=9000)
        assert client.connect().headers["Host"] == "[::1]:9000"

    def test_fresh_key_each_time(self) -> None:
        assert ClientProtocol(host="a", port=80).key != ClientProtocol(host="a", port=80).key

    @pytest.mark.parametrize("cut", [1, 20, 60, 100])
    def test_valid_response_then_frames(self, cut: int) -> None:
        client = _client(subprotocols=["chat"])
        client.send_request(client.connect())
        raw = _response_for(client, b"Sec-WebSocket-Protocol: chat\r\n") + b"\x81\x02hi"
        events = feed(client, [raw[:cut], raw[cut:]])
        assert events[1:] == ["hi"]
        assert client.state is State.OPEN
        assert client.subprotocol == "chat"

    def test_wrong_accept(self) -> None:
        client = _client()
        client.receive_data(_response_for(client, accept=RFC_ACCEPT))
        assert isinstance(client.failure, InvalidHeader)
        assert client.state is State.CLOSED

    def test_not_101(self) -> None:
        client = _client()
        client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope")
        assert isinstance(client.failure, InvalidStatus)
        assert client.failure.status_code == 403
        assert client.close_transport

    def test_unrequested_subprotocol(self) -> None:
        client = _client()
        client.receive_data(_response_for(client, b"Sec-WebSocket-Protocol: chat\r\n"))
        assert isinstance(client.failure, NegotiationError)

    def test_unrequested_extension(self) -> None:
        client = _client()
        client.receive_data(_response_for(client, b"Sec-WebSocket-Extensions: x-test\r\n"))
        assert isinstance(client.failure, NegotiationError)

    def test_extension_negotiated(self) -> None:
        client = _client(extensions=[FakeClientFactory()])
        assert client.connect().headers["Sec-WebSocket-Extensions"] == "x-test; a=1"
        client.receive_data(_response_for(client, b"Sec-WebSocket-Extensions: x-test; a=1\r\n"))
        assert client.failure is None
        assert [e.name for e in client.extensions] == ["x-test"]

    def test_missing_upgrade_header(self) -> None:
        client = _client()
        raw = _response_for(client).replace(b"Upgrade: websocket\r\n", b"")
        client.receive_data(raw)
        assert isinstance(client.failure, InvalidHandshake)


def test_a_failed_handshake_reads_nothing_more() -> None:
    client = _client()
    client.receive_data(b"HTTP/1.1 500 Oops\r\n\r\n")
    client.receive_data(b"\x81\x02hi")
    assert client.events_received() == [] and client.state is State.CLOSED
    assert client.receive_buffer() is None
