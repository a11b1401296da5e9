"""The server side's own answers: every refusal with nosniff and no-store (issue 11 item 14),
and no upgrade for a request that carries a body (issue 11 item 15). Exact bytes."""

from __future__ import annotations

import pytest

from rawws.sansio.codes import Opcode
from rawws.sansio.frames import serialize_frame
from rawws.sansio.http11 import Request
from rawws.sansio.options import Options
from rawws.sansio.protocol import State
from rawws.sansio.server import ServerProtocol

from .helpers import RFC_KEY

UPGRADE = (b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")


def answer(raw: bytes, server: ServerProtocol | None = None) -> bytes:
    """Feed a request; accept it if it is read; return every byte the server sends."""
    server = server or ServerProtocol()
    server.receive_data(raw)
    for event in server.events_received():
        if isinstance(event, Request) and event.is_upgrade:
            server.send_response(server.accept(event))
    return b"".join(server.data_to_send())


def head_of(response: bytes) -> tuple[int, list[tuple[str, str]]]:
    head = response.split(b"\r\n\r\n")[0].decode().split("\r\n")
    return int(head[0].split()[1]), [tuple(line.split(": ", 1)) for line in head[1:]]  # type: ignore[misc]


def test_a_refusal_in_full() -> None:
    body = b"WebSocket handshake requires GET, got POST\n"
    assert answer(UPGRADE.replace(b"GET", b"POST", 1) + b"\r\n") == (
        b"HTTP/1.1 405 Method Not Allowed\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\n"
        b"Cache-Control: no-store\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n"
        b"Server: rawws\r\n\r\n" + body)


REFUSALS = {
    400: b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    403: UPGRADE + b"Origin: http://evil.example\r\n\r\n",
    405: UPGRADE.replace(b"GET", b"PUT", 1) + b"\r\n",
    411: b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    413: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
    414: b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
    426: UPGRADE.replace(b"Version: 13", b"Version: 8") + b"\r\n",
    431: b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
}


@pytest.mark.parametrize("status", REFUSALS)
def test_every_refusal_is_nosniff_and_no_store(status: int) -> None:
    server = ServerProtocol(origins=["http://ok.example"] if status == 403 else None)
    got, headers = head_of(answer(REFUSALS[status], server))
    assert got == status
    assert ("X-Content-Type-Options", "nosniff") in headers
    assert ("Cache-Control", "no-store") in headers
    assert server.state is State.CLOSED and server.close_transport


def test_the_caller_may_set_its_own_cache_policy() -> None:
    response = ServerProtocol().reject(503, "busy", [("Cache-Control", "max-age=5")])
    assert response.headers.get_all("Cache-Control") == ["max-age=5"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("extra", [
    b"Content-Length: 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: identity\r\n",
    b"Content-Length: abc\r\n",
])
def test_an_upgrade_with_a_body_is_refused_not_upgraded(extra: bytes) -> None:
    """Issue 11 item 15: the body would be read as frames after the 101 (smuggling)."""
    smuggled = serialize_frame(Opcode.TEXT, b"hi", masking_key=RFC_KEY)[:5]
    server = ServerProtocol()
    server.receive_data(UPGRADE + extra + b"\r\n" + smuggled)
    (event,) = server.events_received()
    assert not isinstance(event, Request)  # no Request event: hooks never see it
    status, headers = head_of(b"".join(server.data_to_send()))
    assert status == 400
    assert ("Cache-Control", "no-store") in headers
    assert server.state is State.CLOSED


def test_an_upgrade_with_content_length_zero_is_fine() -> None:
    response = answer(UPGRADE + b"Content-Length: 0\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")


def test_frames_pipelined_after_the_request_are_read_after_the_101() -> None:
    server = ServerProtocol(options=Options(max_size=100))
    response = answer(UPGRADE + b"\r\n" + serialize_frame(Opcode.TEXT, b"early",
                                                          masking_key=RFC_KEY), server)
    assert response.startswith(b"HTTP/1.1 101 ")
    assert server.events_received() == ["early"]


def test_what_follows_a_decided_response_is_ignored() -> None:
    server = ServerProtocol()
    server.receive_data(b"GET / HTTP/1.1 extra\r\n\r\n")
    server.receive_data(b"more")
    assert b"".join(server.data_to_send()).startswith(b"HTTP/1.1 400 ")
    with pytest.raises(Exception, match="already sent"):
        server.send_response(server.reject(400))


def test_frames_sent_while_the_request_waits_for_its_answer_are_kept() -> None:
    server = ServerProtocol()
    server.receive_data(UPGRADE + b"\r\n")
    (request,) = server.events_received()
    frame = serialize_frame(Opcode.TEXT, b"early", masking_key=RFC_KEY)
    server.receive_data(frame[:3])
    server.receive_data(frame[3:])
    server.send_response(server.accept(request))  # type: ignore[arg-type]
    assert server.events_received() == ["early"]


def test_a_selected_subprotocol_must_have_been_offered() -> None:
    server = ServerProtocol(select_subprotocol=lambda offered: "other")
    server.receive_data(UPGRADE + b"Sec-WebSocket-Protocol: chat\r\n\r\n")
    (request,) = server.events_received()
    assert server.accept(request).status == 400  # type: ignore[arg-type]


def test_the_transcript_of_a_refusal(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="rawws.refusal")
    server = ServerProtocol(logger=logging.getLogger("rawws.refusal"))
    server.receive_data(UPGRADE.replace(b"13", b"8") + b"\r\n")
    (request,) = server.events_received()
    response = server.accept(request)  # type: ignore[arg-type]
    server.send_response(response)
    assert "! invalid handshake" in caplog.text and "> HTTP 426 Upgrade Required" in caplog.text
    assert response.headers["Sec-WebSocket-Version"] == "13"
