"""The opening handshake: HTTP parsing with limits, request validation, negotiation, client side."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawws.errors import (
    InvalidHeader,
)
from rawws.sansio.client import ClientProtocol
from rawws.sansio.frames import serialize_frame
from rawws.sansio.handshake import (
    accept_key,
    build_extension_header,
    check_request,
    generate_key,
    parse_extension_header,
)
from rawws.sansio.http11 import Request
from rawws.sansio.protocol import State
from rawws.sansio.server import ServerProtocol

from .helpers import GOOD_REQUEST, RFC_KEY, FakeServerFactory, feed, request_with, splits, status_of

# RFC 6455 §1.3.
RFC_KEY_HEADER = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

class TestKeys:
    def test_rfc_example(self) -> None:
        assert accept_key(RFC_KEY_HEADER) == RFC_ACCEPT

    def test_generate_key_is_base64_of_16_random_bytes(self) -> None:
        key = generate_key(lambda n: bytes(range(n)))
        assert base64.b64decode(key) == bytes(range(16))


class TestServerHandshake:
    @pytest.mark.parametrize("chunks", list(splits(GOOD_REQUEST))[:: 7])
    def test_accept_rfc_example(self, chunks: list[bytes]) -> None:
        server = ServerProtocol(subprotocols=["superchat"])
        (request,) = feed(server, chunks)
        assert isinstance(request, Request)
        assert request.path == request.target == "/chat?room=lobby"  # websockets' path
        assert request.unquoted_path == "/chat"
        assert request.query == {"room": "lobby"}
        assert request.headers["origin"] == "http://example.com"
        server.send_response(server.accept(request))
        response = b"".join(server.data_to_send())
        assert response == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"Sec-WebSocket-Protocol: superchat\r\n"
            b"Server: rawws\r\n"
            b"\r\n"
        )
        assert server.state is State.OPEN
        assert server.subprotocol == "superchat"

    def test_frames_pipelined_after_the_request(self) -> None:
        server = ServerProtocol()
        frame = serialize_frame(1, b"Hello", masking_key=RFC_KEY)
        (request,) = feed(server, [GOOD_REQUEST + frame])
        server.send_response(server.accept(request))  # type: ignore[arg-type]
        assert server.events_received() == ["Hello"]

    def test_upgrade_and_connection_tokens_are_case_insensitive(self) -> None:
        raw = request_with(upgrade="WebSocket", connection="keep-alive, UPGRADE")
        assert status_of(raw) == 101

    def test_wrong_method(self) -> None:
        assert status_of(GOOD_REQUEST.replace(b"GET", b"POST", 1)) == 405

    def test_http_1_0(self) -> None:
        assert status_of(GOOD_REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0", 1)) == 400

    def test_http_2_0(self) -> None:
        assert status_of(GOOD_REQUEST.replace(b"HTTP/1.1", b"HTTP/2.0", 1)) == 505

    def test_missing_host(self) -> None:
        assert status_of(request_with(drop="Host")) == 400

    def test_bad_upgrade(self) -> None:
        assert status_of(request_with(upgrade="h2c, websockets")) == 400

    def test_missing_connection_upgrade(self) -> None:
        assert status_of(request_with(connection="keep-alive")) == 400

    @pytest.mark.parametrize("version", ["8", "12", "14", "13, 8"])
    def test_bad_version_is_426_with_supported_version(self, version: str) -> None:
        server = ServerProtocol()
        server.receive_data(request_with(sec_websocket_version=version))
        (request,) = server.events_received()
        response = server.accept(request)  # type: ignore[arg-type]
        assert response.status == 426
        assert response.headers["Sec-WebSocket-Version"] == "13"

    def test_missing_version(self) -> None:
        assert status_of(request_with(drop="Sec-WebSocket-Version")) == 426

    @pytest.mark.parametrize("key", ["", "not base64!", "AAAA", base64.b64encode(bytes(15))
                                     .decode(), base64.b64encode(bytes(17)).decode()])
    def test_bad_key(self, key: str) -> None:
        assert status_of(request_with(sec_websocket_key=key)) == 400

    def test_missing_key_on_upgrade(self) -> None:
        assert status_of(request_with(drop="Sec-WebSocket-Key")) == 400

    def test_repeated_key(self) -> None:
        raw = GOOD_REQUEST.replace(b"\r\n\r\n",
                                   b"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        assert status_of(raw) == 400

    def test_origin_policy(self) -> None:
        assert status_of(GOOD_REQUEST, origins=["http://example.com"]) == 101
        assert status_of(GOOD_REQUEST, origins=["https://other.example"]) == 403
        assert status_of(request_with(drop="Origin"), origins=[None]) == 101
        assert status_of(request_with(drop="Origin"), origins=["http://example.com"]) == 403
        assert status_of(GOOD_REQUEST, origins=lambda o: o is not None
                         and o.endswith("example.com")) == 101

    def test_refused_when_no_subprotocol_matches(self) -> None:
        """As websockets: a server that lists subprotocols refuses a client that offers none
        of them (400), rather than accepting it with no subprotocol."""
        server = ServerProtocol(subprotocols=["graphql-ws"])
        server.receive_data(GOOD_REQUEST)
        (request,) = server.events_received()
        response = server.accept(request)  # type: ignore[arg-type]
        assert response.status == 400
        assert b"expected one of: graphql-ws" in response.body
        assert "Sec-WebSocket-Protocol" not in response.headers
        server = ServerProtocol(subprotocols=["graphql-ws"])
        server.receive_data(request_with(drop="Sec-WebSocket-Protocol"))
        (request,) = server.events_received()
        assert server.accept(request).status == 400  # type: ignore[arg-type]

    def test_no_subprotocol_when_the_hook_says_none(self) -> None:
        server = ServerProtocol(subprotocols=["graphql-ws"], select_subprotocol=lambda o: None)
        server.receive_data(GOOD_REQUEST)
        (request,) = server.events_received()
        response = server.accept(request)  # type: ignore[arg-type]
        assert response.status == 101
        assert "Sec-WebSocket-Protocol" not in response.headers

    def test_select_subprotocol_hook(self) -> None:
        server = ServerProtocol(select_subprotocol=lambda offered: offered[-1])
        server.receive_data(GOOD_REQUEST)
        (request,) = server.events_received()
        assert server.accept(request).headers["Sec-WebSocket-Protocol"] == "superchat"  # type: ignore[arg-type]

    def test_extra_headers(self) -> None:
        server = ServerProtocol(extra_headers=[("X-Test", "1")], server_header=None)
        server.receive_data(GOOD_REQUEST)
        (request,) = server.events_received()
        response = server.accept(request)  # type: ignore[arg-type]
        assert response.headers["X-Test"] == "1"
        assert "Server" not in response.headers

    def test_rejection_closes(self) -> None:
        server = ServerProtocol()
        server.receive_data(GOOD_REQUEST)
        server.events_received()
        server.send_response(server.reject(403, "go away"))
        out = b"".join(server.data_to_send())
        assert out.startswith(b"HTTP/1.1 403 Forbidden\r\n")
        assert b"Content-Length: 8\r\n" in out
        assert b"Connection: close\r\n" in out
        assert out.endswith(b"\r\n\r\ngo away\n")
        assert server.state is State.CLOSED
        assert server.close_transport


class TestExtensionHeader:
    def test_parse(self) -> None:
        assert parse_extension_header([
            'permessage-deflate; client_max_window_bits, permessage-deflate; '
            'server_max_window_bits="10"', "x-foo"]) == [
            ("permessage-deflate", [("client_max_window_bits", None)]),
            ("permessage-deflate", [("server_max_window_bits", "10")]),
            ("x-foo", []),
        ]

    @pytest.mark.parametrize("value", ["per message", "a; =1", 'a; b="c d"', "a; b=", ";"])
    def test_invalid(self, value: str) -> None:
        with pytest.raises(InvalidHeader):
            parse_extension_header([value])

    def test_build(self) -> None:
        assert build_extension_header([("permessage-deflate", [("a", None), ("b", "9")])]) == (
            "permessage-deflate; a; b=9"
        )

    @given(st.lists(st.tuples(
        st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
        st.lists(st.tuples(st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
                           st.one_of(st.none(), st.from_regex(r"[0-9a-z]{1,3}",
                                                              fullmatch=True))),
                 max_size=3)), min_size=1, max_size=3))
    def test_roundtrip(self, extensions: list[tuple[str, list[tuple[str, str | None]]]]) -> None:
        assert parse_extension_header([build_extension_header(extensions)]) == extensions


class TestExtensionNegotiation:
    def test_first_acceptable_offer_wins(self) -> None:
        server = ServerProtocol(extensions=[FakeServerFactory()])  # type: ignore[list-item]
        raw = GOOD_REQUEST.replace(
            b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: x-test; reject, x-test; b=2, "
            b"x-unknown\r\n\r\n")
        server.receive_data(raw)
        (request,) = server.events_received()
        response = server.accept(request)  # type: ignore[arg-type]
        assert response.headers["Sec-WebSocket-Extensions"] == "x-test; b=2"
        server.send_response(response)
        assert [e.name for e in server.extensions] == ["x-test"]
        # The extension owns RSV1 now: a frame with RSV1 is no longer a protocol error.
        server.receive_data(serialize_frame(2, b"z", rsv=0x40, masking_key=RFC_KEY))
        assert server.events_received() == [b"z"]

    def test_no_acceptable_offer(self) -> None:
        server = ServerProtocol(extensions=[FakeServerFactory()])  # type: ignore[list-item]
        raw = GOOD_REQUEST.replace(b"\r\n\r\n",
                                   b"\r\nSec-WebSocket-Extensions: x-test; reject\r\n\r\n")
        server.receive_data(raw)
        (request,) = server.events_received()
        response = server.accept(request)  # type: ignore[arg-type]
        assert response.status == 101
        assert "Sec-WebSocket-Extensions" not in response.headers


def test_check_request_returns_the_key() -> None:
    server = ServerProtocol()
    server.receive_data(GOOD_REQUEST)
    (request,) = server.events_received()
    assert check_request(request) == RFC_KEY_HEADER  # type: ignore[arg-type]


def test_transcript_never_logs_query_strings(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    logger = logging.getLogger("rawws.test.transcript")
    logger.setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG, logger="rawws.test.transcript"):
        client = ClientProtocol(host="example.com", port=80, resource="/ws?token=s3cr3t",
                                logger=logger)
        client.send_request(client.connect())
        server = ServerProtocol(logger=logger)
        server.receive_data(b"".join(client.data_to_send()))
        (request,) = server.events_received()
        server.send_response(server.accept(request))  # type: ignore[arg-type]
    assert "> GET /ws?token=*** HTTP/1.1" in caplog.text
    assert "> HTTP 101 to /ws?token=***" in caplog.text
    assert "s3cr3t" not in caplog.text


def test_a_key_without_upgrade_is_still_a_websocket_attempt() -> None:
    raw = request_with(drop="Upgrade")
    server = ServerProtocol()
    server.receive_data(raw)
    (request,) = server.events_received()
    assert isinstance(request, Request) and request.is_upgrade  # not a plain HTTP request
    assert server.accept(request).status == 400
