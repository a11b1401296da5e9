"""``rawws trace`` on crafted bytes: every field of every event exactly right (frames with known
mask keys, the examples of RFC 6455 §5.7 and RFC 7692 §7.2.3), every violation flagged with the
section it breaks, the bytes forwarded exactly as received, secrets redacted in the outputs and
only there. Raw peers on real sockets (127.0.0.1) write the bytes; the proxy sits between."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from rawws.sansio.frames import serialize_frame
from rawws.tools.decode import ConnectionDecoder
from rawws.wirelog import (
    FrameEvent,
    HandshakeEvent,
    TcpEvent,
    dumps,
    event_from_json,
    format_event,
    read_jsonl,
)

from .helpers import (
    BOUND,
    HOST,
    RawPeerServer,
    check_describes_the_wire,
    frames,
    payload_b64,
    raw_exchange,
    tracing,
    upgrade,
    violations,
)

KEY = bytes.fromhex("37fa213d")  # the masking key of RFC 6455 §5.7


def masked(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0,
           key: bytes = KEY) -> bytes:
    return serialize_frame(opcode, payload, fin=fin, rsv=rsv, masking_key=key)


def plain(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    return serialize_frame(opcode, payload, fin=fin, rsv=rsv)


def fields(event: FrameEvent) -> dict[str, Any]:
    """The JSON form of a frame event without the time (the one field that varies)."""
    data = event.to_json()
    del data["t"]
    return data


async def trace_raw(client: list[bytes], server: list[bytes] | None = None, *,
                    extensions: str | None = None, offer: str | None = None,
                    show_secrets: bool = True) -> tuple[list[Any], RawPeerServer, Any]:
    """Send ``client`` chunks through a proxy to a raw server that writes ``server`` chunks
    (after its 101) and reads to the end; return the events, the server and the proxy."""

    async def behave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for chunk in server or ():
            writer.write(chunk)
        peer.received += await reader.read()

    peer = RawPeerServer(behave, extensions=extensions)
    async with peer, tracing(peer.port, show_secrets=show_secrets) as (proxy, writer):
        async with asyncio.timeout(BOUND):
            await raw_exchange(proxy.port_listening, client, extensions=offer)
            await proxy.drain()
    return writer.events, peer, proxy


# --- every field of every event ----------------------------------------------------------------


async def test_the_examples_of_rfc_6455_section_5_7() -> None:
    client = [bytes.fromhex("818537fa213d7f9f4d5158"),  # a masked "Hello"
              bytes.fromhex("8a8537fa213d7f9f4d5158"),  # a masked pong "Hello"
              masked(0x8, b"\x03\xe8bye")]
    server = [bytes.fromhex("810548656c6c6f"),  # an unmasked "Hello"
              bytes.fromhex("010348656c") + bytes.fromhex("80026c6f"),  # fragmented "Hel" "lo"
              bytes.fromhex("890548656c6c6f"),  # an unmasked ping "Hello"
              bytes.fromhex("827e0100") + bytes(256),  # 256 bytes binary, 16-bit length
              bytes.fromhex("827f0000000000010000") + bytes(65536)]  # 64 KiB, 64-bit length
    events, peer, proxy = await trace_raw(client, server)
    assert violations(events) == []
    check_describes_the_wire(proxy, events)
    assert bytes(peer.received) == b"".join(client)  # what the server got: exactly that

    base = {"v": 1, "conn": 1, "kind": "frame", "fin": True, "rsv1": False, "rsv2": False,
            "rsv3": False}
    hello = {"payload_b64": "SGVsbG8=", "text": "Hello", "length": 5}
    assert [fields(f) for f in frames(events, "c2s")] == [
        {**base, **hello, "dir": "c2s", "index": 1, "opcode": "TEXT", "masked": True,
         "mask": "37fa213d"},
        {**base, **hello, "dir": "c2s", "index": 2, "opcode": "PONG", "masked": True,
         "mask": "37fa213d"},
        {**base, "dir": "c2s", "index": 3, "opcode": "CLOSE", "masked": True,
         "mask": "37fa213d", "length": 5, "payload_b64": "A+hieWU=", "code": 1000,
         "reason": "bye"},
    ]
    unmasked = {**base, "dir": "s2c", "masked": False, "mask": None}
    assert [fields(f) for f in frames(events, "s2c")] == [
        {**unmasked, **hello, "index": 1, "opcode": "TEXT"},
        {**unmasked, "index": 2, "opcode": "TEXT", "fin": False, "length": 3,
         "payload_b64": "SGVs", "text": "Hel"},
        {**unmasked, "index": 3, "opcode": "CONT", "length": 2, "payload_b64": "bG8=",
         "text": "lo"},
        {**unmasked, **hello, "index": 4, "opcode": "PING"},
        {**unmasked, "index": 5, "opcode": "BINARY", "length": 256,
         "payload_b64": payload_b64(bytes(256))},
        {**unmasked, "index": 6, "opcode": "BINARY", "length": 65536,
         "payload_b64": payload_b64(bytes(65536))},
    ]


async def test_the_handshake_heads_are_reported_as_sent() -> None:
    events, _, proxy = await trace_raw([])
    heads = [e for e in events if isinstance(e, HandshakeEvent)]
    assert [(h.dir, h.line) for h in heads] == [
        ("c2s", "GET / HTTP/1.1"), ("s2c", "HTTP/1.1 101 Switching Protocols")]
    assert heads[0].headers == (
        ("Host", HOST), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"))
    # The accept value of RFC 6455 §1.3 for that key.
    assert ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") in heads[1].headers
    assert [e.event for e in events if isinstance(e, TcpEvent)] == ["open", "eof", "eof",
                                                                     "closed"]
    check_describes_the_wire(proxy, events)


async def test_deflate_is_shown_inflated_rfc_7692_examples() -> None:
    """RFC 7692 §7.2.3.1 "Hello" compressed, §7.2.3.2 a second "Hello" sharing the window, and
    a compressed message in two fragments (§7.2.3.1, split)."""
    server = [bytes.fromhex("c107f248cdc9c90700"),
              bytes.fromhex("c105f200110000"),
              bytes.fromhex("4103f248cd") + bytes.fromhex("8004c9c90700")]
    client = [masked(0x1, bytes.fromhex("f248cdc9c90700"), rsv=0x40),
              masked(0x2, b"not compressed")]
    events, _, proxy = await trace_raw(client, server, extensions="permessage-deflate",
                                       offer="permessage-deflate")
    assert violations(events) == []
    check_describes_the_wire(proxy, events)
    s2c = frames(events, "s2c")
    assert [(f.opcode, f.fin, f.rsv1, f.compressed, f.length) for f in s2c] == [
        ("TEXT", True, True, True, 7), ("TEXT", True, True, True, 5),
        ("TEXT", False, True, True, 3), ("CONT", True, False, True, 4)]
    assert [f.inflated for f in s2c[:2]] == [b"Hello", b"Hello"]
    assert [f.text for f in s2c[:2]] == ["Hello", "Hello"]
    # Fragments inflate to what zlib can give at each point; together, the message.
    assert s2c[2].inflated is not None and s2c[3].inflated is not None
    assert s2c[2].inflated + s2c[3].inflated == b"Hello"
    c2s = frames(events, "c2s")
    assert [(f.opcode, f.compressed, f.data) for f in c2s] == [
        ("TEXT", True, b"Hello"), ("BINARY", False, b"not compressed")]
    assert c2s[0].to_json()["inflated_b64"] == "SGVsbG8="
    assert format_event(s2c[0])[0].endswith("TEXT fin=1 rsv=100 len=7 inflated=5 'Hello'")


# --- violations, with the section they break ---------------------------------------------------

CLIENT_CASES = {
    "unmasked client frame": ([plain(0x1, b"hi")], [(1002, "5.1", 1)]),
    "reserved opcode": ([masked(0x3, b"")], [(1002, "5.2", 1)]),
    "reserved control opcode": ([masked(0xB, b"")], [(1002, "5.2", 1)]),
    "RSV2 without an extension": ([masked(0x1, b"x", rsv=0x20)], [(1002, "5.2", 1)]),
    "RSV1 without deflate": ([masked(0x1, b"x", rsv=0x40)], [(1002, "5.2", 1)]),
    "fragmented ping": ([masked(0x9, b"", fin=False)], [(1002, "5.5", 1)]),
    "oversized ping": ([masked(0x9, b"p" * 126)], [(1002, "5.5", 1)]),
    "invalid UTF-8": ([masked(0x1, b"\xff")], [(1007, "8.1", 1)]),
    "invalid UTF-8 across fragments": (
        [masked(0x1, b"\xce", fin=False), masked(0x0, b"\x28")], [(1007, "8.1", 2)]),
    "close code 999": ([masked(0x8, (999).to_bytes(2, "big"))], [(1002, "7.4", 1)]),
    "close code 1005 sent": ([masked(0x8, (1005).to_bytes(2, "big"))], [(1002, "7.4", 1)]),
    "close body of 1 byte": ([masked(0x8, b"\x03")], [(1002, "5.5.1", 1)]),
    "close reason not UTF-8": ([masked(0x8, b"\x03\xe8\xff")], [(1007, "8.1", 1)]),
    "continuation without a message": ([masked(0x0, b"x")], [(1002, "5.4", 1)]),
    "new message inside a fragmented one": (
        [masked(0x1, b"a", fin=False), masked(0x1, b"b")], [(1002, "5.4", 2)]),
    "frame after the close frame": (
        [masked(0x8, b"\x03\xe8"), masked(0x1, b"late")], [(1002, "5.5.1", 2)]),
    "length not minimally encoded": (
        [bytes.fromhex("81fe0005") + KEY + b"\x7f\x9f\x4d\x51\x58"], [(1002, "5.2", 1)]),
    "64-bit length with its top bit set": (
        [bytes.fromhex("82ff8000000000000000") + KEY], [(1002, "5.2", 1)]),
    "several rules at once": ([plain(0x9, b"", fin=False, rsv=0x10)],
                              [(1002, "5.2", 1), (1002, "5.1", 1), (1002, "5.5", 1)]),
}


@pytest.mark.parametrize("case", list(CLIENT_CASES))
async def test_client_violations_are_flagged_with_their_section(case: str) -> None:
    client, expected = CLIENT_CASES[case]
    events, peer, proxy = await trace_raw(client)
    assert violations(events) == [("c2s", *v) for v in expected]
    # Observed, never fixed: the server got the bad bytes exactly.
    assert bytes(peer.received) == b"".join(client)
    assert proxy.forwarded[1]["c2s"] == proxy.received[1]["c2s"]
    # The violation's line names the section.
    code, rfc, _ = expected[0]
    line = next(line for e in events for line in format_event(e) if " ! " in line)
    assert f"§{rfc}" in line and f"(close {code})" in line


SERVER_CASES = {
    "masked server frame": (None, [masked(0x1, b"hi")], [(1002, "5.1", 1)]),
    "RSV1 on a continuation frame": (
        "permessage-deflate",
        [bytes.fromhex("4103f248cd"), bytes.fromhex("c004c9c90700")],
        [(1002, "RFC 7692 6.1", 2)]),
    "corrupt DEFLATE data": ("permessage-deflate", [plain(0x1, b"\xff\xff\xff", rsv=0x40)],
                             [(1007, "RFC 7692 7.2.2", 1)]),
    "RSV1 on a control frame with deflate": ("permessage-deflate",
                                             [plain(0x9, b"", rsv=0x40)], [(1002, "5.2", 1)]),
}


@pytest.mark.parametrize("case", list(SERVER_CASES))
async def test_server_violations_are_flagged_with_their_section(case: str) -> None:
    extensions, server, expected = SERVER_CASES[case]
    events, _, proxy = await trace_raw([], server, extensions=extensions, offer=extensions)
    assert violations(events) == [("s2c", *v) for v in expected]
    assert proxy.forwarded[1]["s2c"] == proxy.received[1]["s2c"]


async def test_a_bad_accept_and_an_extension_not_offered_are_handshake_violations() -> None:
    async def behave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    response = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSBrZXk=\r\n"
                b"Sec-WebSocket-Extensions: x-unknown\r\n\r\n")
    peer = RawPeerServer(behave, response=response)
    async with peer, tracing(peer.port) as (proxy, writer):
        await raw_exchange(proxy.port_listening, [])
        await proxy.drain()
    assert violations(writer.events) == [("s2c", 1002, "4.1", None), ("s2c", 1002, "4.1", None)]


async def test_a_bad_upgrade_request_is_a_handshake_violation() -> None:
    decoder = ConnectionDecoder(1, clock=lambda: 0.0)
    request = upgrade().replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8")
    events = decoder.feed("c2s", request)
    assert violations(events) == [("c2s", 426, "4.2.1", None)]


async def test_a_plain_http_exchange_is_shown_not_decoded() -> None:
    decoder = ConnectionDecoder(1, clock=lambda: 0.0)
    events = decoder.feed("c2s", b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n\x81\x00")
    events += decoder.feed("s2c", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n\x81\x00")
    assert [type(e).__name__ for e in events] == ["HandshakeEvent", "HandshakeEvent"]


# --- bounds ------------------------------------------------------------------------------------


def test_a_frame_longer_than_max_payload_is_truncated_memory_stays_bounded() -> None:
    decoder = ConnectionDecoder(1, clock=lambda: 0.0, max_payload=1000)
    decoder.feed("c2s", upgrade())
    decoder.feed("s2c", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                        b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    frame = plain(0x2, b"z" * 100_000)
    events = []
    for i in range(0, len(frame), 4096):  # as it would arrive
        events += decoder.feed("s2c", frame[i:i + 4096])
        assert len(decoder.streams["s2c"].kept) <= 1000
    (event,) = events
    assert isinstance(event, FrameEvent)
    assert (event.length, event.truncated, event.payload) == (100_000, True, b"z" * 1000)


def test_a_frame_cut_by_the_end_of_the_stream_is_reported_with_its_violations() -> None:
    decoder = ConnectionDecoder(1, clock=lambda: 0.0)
    decoder.feed("c2s", upgrade())
    decoder.feed("s2c", b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    decoder.feed("c2s", bytes.fromhex("8300") + b"")  # reserved opcode, unmasked, complete
    events = decoder.feed("c2s", bytes.fromhex("817e1000") + b"ab")  # 4096 bytes announced
    assert events == []
    events = decoder.eof("c2s")
    frame = next(e for e in events if isinstance(e, FrameEvent))
    assert (frame.length, frame.truncated, frame.payload) == (4096, True, b"ab")
    assert violations(events) == [("c2s", 1002, "5.1", 2)]
    assert [e.event for e in events if isinstance(e, TcpEvent)] == ["eof", "error"]


# --- secrets -----------------------------------------------------------------------------------


async def test_secrets_are_redacted_in_the_outputs_and_forwarded_intact() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    auth = json.dumps({"type": "auth", "token": token}).encode()

    async def behave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer.received += await reader.read()

    peer = RawPeerServer(behave)
    async with peer, tracing(peer.port, show_secrets=False) as (proxy, writer):
        reader, stream = await asyncio.open_connection(HOST, proxy.port_listening)
        stream.write(upgrade("/ws?token=" + token).replace(
            b"Host:", b"Authorization: Bearer " + token.encode() + b"\r\nHost:"))
        await reader.readuntil(b"\r\n\r\n")
        stream.write(masked(0x1, auth))
        stream.write_eof()
        await reader.read()
        stream.close()
        await proxy.drain()
    # The server got the real thing: the head with the token, the auth frame as sent.
    assert bytes(peer.received) == masked(0x1, auth)
    assert token.encode() in bytes(proxy.forwarded[1]["c2s"])
    lines = [line for e in writer.events for line in format_event(e)]
    jsonl = [dumps(e) for e in writer.events]
    for output in (lines, jsonl):
        assert not any(token in line for line in output), output
        assert not any(token[:20] in line for line in output)
    assert any("GET /ws?token=*** HTTP/1.1" in line for line in lines)
    assert any("Authorization: Bearer ***" in line for line in lines)
    (frame,) = frames(writer.events)
    assert frame.redacted and frame.payload is None
    assert frame.text == '{"type": "auth", "token": "***"}'


# --- the JSON lines ----------------------------------------------------------------------------


async def test_every_event_survives_its_json_line() -> None:
    client = [masked(0x1, "héllo".encode(), fin=False), masked(0x0, b"!"), masked(0x3, b"?"),
              masked(0x8, b"\x03\xe8")]
    events, _, _ = await trace_raw(client, [bytes.fromhex("c107f248cdc9c90700")],
                                   extensions="permessage-deflate", offer="permessage-deflate")
    lines = [dumps(e) for e in events]
    assert list(read_jsonl(lines)) == [event_from_json(json.loads(line)) for line in lines]
    again = list(read_jsonl(lines))
    assert [dumps(e) for e in again] == lines
    kinds = {json.loads(line)["kind"] for line in lines}
    assert kinds == {"tcp", "handshake", "frame", "violation"}
    reserved = next(json.loads(line) for line in lines if '"index":3' in line
                    and '"c2s"' in line)
    assert reserved["opcode"] == 3  # a reserved opcode is reported by its number


@pytest.mark.parametrize("line, error", [
    ('{"kind":"frame"}', "missing field 't'"),
    ('{"t":0,"kind":"frame","dir":"c2s","opcode":"NOPE","fin":true,"length":0}', "opcode"),
    ('{"t":0,"kind":"frame","dir":"up","opcode":"TEXT","fin":true,"length":0}', "direction"),
    ('{"t":0,"kind":"frame","dir":"c2s","opcode":"TEXT","fin":1,"length":0}', "'fin'"),
    ('{"t":0,"kind":"frame","dir":"c2s","opcode":"TEXT","fin":true,"length":0,'
     '"payload_b64":"%%"}', "base64"),
    ('[1]', "JSON object"),
    ('{"t":0,"kind":"gossip","dir":"c2s"}', "kind"),
])
def test_a_malformed_json_line_is_refused_with_its_line_number(line: str, error: str) -> None:
    with pytest.raises(ValueError, match=error) as info:
        list(read_jsonl(["", line]))
    assert str(info.value).startswith("line 2:")
