"""HTTP/1.1 messages: the head parser's limits and their statuses, plain requests and their
bodies, headers."""

from __future__ import annotations

import pytest

from rawws.errors import HeadTooLarge, InvalidHandshake, InvalidHeader
from rawws.sansio.http11 import BodyReader, Headers, HeadParser, Request, Response, content_length
from rawws.sansio.options import Options
from rawws.sansio.server import ServerProtocol

from .helpers import GOOD_REQUEST, feed, splits, status_of


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


class TestBodies:
    def test_content_length(self) -> None:
        assert content_length(Headers()) == 0
        assert content_length(Headers([("Content-Length", "12")])) == 12
        assert content_length(Headers([("Content-Length", "5, 5"), ("content-length", "5")])) == 5
        for bad in ("5, 6", "x", "-1", "1" * 19, "٣"):
            with pytest.raises(InvalidHeader):
                content_length(Headers([("Content-Length", bad)]))

    def test_body_reader_in_pieces_and_what_follows_is_ignored(self) -> None:
        reader = BodyReader(Headers([("Content-Length", "5")]), max_body_size=5)
        assert reader.feed(b"ab") is None
        assert reader.feed(b"cdeXTRA") == b"abcde"

    def test_body_reader_refusals(self) -> None:
        with pytest.raises(InvalidHandshake) as info:
            BodyReader(Headers([("Transfer-Encoding", "chunked")]), max_body_size=10)
        assert info.value.status == 411
        with pytest.raises(InvalidHandshake) as info:
            BodyReader(Headers([("Content-Length", "11")]), max_body_size=10)
        assert info.value.status == 413

    def test_no_body(self) -> None:
        assert BodyReader(Headers(), max_body_size=0).feed(b"") == b""


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


def test_request_and_response_serialize() -> None:
    request = Request("GET", "/a?b=c", Headers([("Host", "x")]))
    assert request.serialize() == b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"
    assert request.unquoted_path == "/a" and request.query == {"b": "c"}
    assert Response(404).serialize() == b"HTTP/1.1 404 Not Found\r\n\r\n"
