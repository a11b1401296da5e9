"""The opening handshake: HTTP parsing with limits, request validation, negotiation, client side."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawws.errors import (
    HeadTooLarge,
    InvalidHandshake,
    InvalidHeader,
    InvalidStatus,
    NegotiationError,
)
from rawws.sansio.client import ClientProtocol
from rawws.sansio.frames import serialize_frame
from rawws.sansio.handshake import (
    OriginPolicy,
    accept_key,
    build_extension_header,
    check_request,
    generate_key,
    parse_extension_header,
)
from rawws.sansio.http11 import Headers, HeadParser, Request, Response
from rawws.sansio.options import DEFAULT_OPTIONS, Options
from rawws.sansio.protocol import State
from rawws.sansio.server import ServerProtocol

from .helpers import RFC_KEY, feed, fixed_random, splits

# RFC 6455 §1.3.
RFC_KEY_HEADER = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

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


class TestHeadLimits:
    def test_request_line_too_long_is_414(self) -> None:
        raw = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n"
        assert status_of(raw) == 414

    def test_request_line_too_long_detected_before_crlf(self) -> None:
        server = ServerProtocol()
        server.receive_data(b"GET /" + b"a" * 8200)  # no CRLF yet: already over the limit
        assert b"414" in b"".join(server.data_to_send())

    def test_header_line_too_long_is_431(self) -> None:
        raw = GOOD_REQUEST.replace(b"\r\n\r\n", b"\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
        assert status_of(raw) == 431

    def test_too_many_headers_is_431(self) -> None:
        extra = b"".join(b"X-%d: 1\r\n" % i for i in range(130))
        assert status_of(GOOD_REQUEST.replace(b"\r\n\r\n", b"\r\n" + extra + b"\r\n")) == 431

    def test_head_too_large_is_431(self) -> None:
        extra = b"".join(b"X-%d: %s\r\n" % (i, b"a" * 8000) for i in range(10))
        assert status_of(GOOD_REQUEST.replace(b"\r\n\r\n", b"\r\n" + extra + b"\r\n")) == 431

    @pytest.mark.parametrize("raw", [
        b"GET\r\n\r\n",
        b"GET /  HTTP/1.1\r\nHost: x\r\n\r\n",
        b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
        b"GET / HTTQ/1.1\r\nHost: x\r\n\r\n",
    ])
    def test_malformed_is_400(self, raw: bytes) -> None:
        assert status_of(raw) == 400

    def test_parser_limits_directly(self) -> None:
        parser = HeadParser(max_line=100, max_headers=2, max_head=1000)
        assert parser.feed(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n") is None
        with pytest.raises(HeadTooLarge):
            parser.feed(b"C: 3\r\n")
        parser = HeadParser(max_line=100, max_headers=10, max_head=20)
        with pytest.raises(HeadTooLarge):
            parser.feed(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n")

    def test_leading_empty_line_is_ignored(self) -> None:
        assert status_of(b"\r\n" + GOOD_REQUEST) == 101


class TestPlainHTTP:
    def test_request_with_body(self) -> None:
        raw = (b"POST /api/notify/alice HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
               b'{"a": true}')
        for chunks in list(splits(raw))[::5]:
            server = ServerProtocol()
            (request,) = feed(server, chunks)
            assert isinstance(request, Request)
            assert not request.is_upgrade
            assert request.method == "POST"
            assert request.path == "/api/notify/alice"
            assert request.body == b'{"a": true}'

    def test_body_too_large_is_413(self) -> None:
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n"
        assert status_of(raw, options=Options(max_body_size=1000)) == 413

    def test_chunked_is_411(self) -> None:
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        assert status_of(raw) == 411

    @pytest.mark.parametrize("value", [b"-1", b"1e3", b"abc", b"1, 2", b"+5"])
    def test_bad_content_length_is_400(self, value: bytes) -> None:
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\n\r\n"
        assert status_of(raw) == 400

    def test_response_gets_length_and_connection_close(self) -> None:
        server = ServerProtocol()
        server.receive_data(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        (request,) = server.events_received()
        assert isinstance(request, Request) and request.path == "/healthz"
        server.send_response(Response(200, Headers([("Content-Type", "text/plain")]), b"ok"))
        assert b"".join(server.data_to_send()) == (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
            b"Connection: close\r\nServer: rawws\r\n\r\nok"
        )


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


class _FakeExtension:
    name = "x-test"
    rsv_bits = 0x40
    broadcast_key = None

    def decode(self, frame: object, *, max_size: int | None) -> object:
        return frame

    def encode(self, frame: object, *, compress: bool | None = None) -> object:
        return frame


class _ServerFactory:
    name = "x-test"

    def process_request_params(self, params, accepted):  # type: ignore[no-untyped-def]
        if ("reject", None) in params:
            raise NegotiationError("declined")
        return list(params), _FakeExtension()


class _ClientFactory:
    name = "x-test"

    def get_request_params(self):  # type: ignore[no-untyped-def]
        return [("a", "1")]

    def process_response_params(self, params, accepted):  # type: ignore[no-untyped-def]
        if params != [("a", "1")]:
            raise NegotiationError("unexpected params")
        return _FakeExtension()


class TestExtensionNegotiation:
    def test_first_acceptable_offer_wins(self) -> None:
        server = ServerProtocol(extensions=[_ServerFactory()])  # type: ignore[list-item]
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
        server = ServerProtocol(extensions=[_ServerFactory()])  # type: ignore[list-item]
        raw = GOOD_REQUEST.replace(b"\r\n\r\n",
                                   b"\r\nSec-WebSocket-Extensions: x-test; reject\r\n\r\n")
        server.receive_data(raw)
        (request,) = server.events_received()
        response = server.accept(request)  # type: ignore[arg-type]
        assert response.status == 101
        assert "Sec-WebSocket-Extensions" not in response.headers


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
        client = _client(extensions=[_ClientFactory()])
        assert client.connect().headers["Sec-WebSocket-Extensions"] == "x-test; a=1"
        client.receive_data(_response_for(client, b"Sec-WebSocket-Extensions: x-test; a=1\r\n"))
        assert client.failure is None
        assert [e.name for e in client.extensions] == ["x-test"]

    def test_missing_upgrade_header(self) -> None:
        client = _client()
        raw = _response_for(client).replace(b"Upgrade: websocket\r\n", b"")
        client.receive_data(raw)
        assert isinstance(client.failure, InvalidHandshake)


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


def test_headers_extend_takes_headers_pairs_and_mappings() -> None:
    headers = Headers([("A", "1")])
    headers.extend(Headers([("b", "2"), ("A", "3")]))
    headers.extend([("C", "4")])
    headers.extend({"D": "5"})
    assert headers.items() == [("A", "1"), ("b", "2"), ("A", "3"), ("C", "4"), ("D", "5")]
    assert headers.get_all("a") == ["1", "3"]
    copy = Headers(headers)
    copy.extend([("E", "6")])
    assert "E" not in headers and copy.get("e") == "6"


def test_a_key_without_upgrade_is_still_a_websocket_attempt() -> None:
    raw = request_with(drop="Upgrade")
    server = ServerProtocol()
    server.receive_data(raw)
    (request,) = server.events_received()
    assert isinstance(request, Request) and request.is_upgrade  # not a plain HTTP request
    assert server.accept(request).status == 400
