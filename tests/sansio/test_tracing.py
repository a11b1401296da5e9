"""The tracer hook: one FrameRecord per frame received and sent, with every header field, the
mask key, the unmasked payload, the inflated payload when deflate applied, and violations."""

from __future__ import annotations

import logging
import zlib

import pytest

from rawws.sansio.client import ClientProtocol
from rawws.sansio.codes import Opcode
from rawws.sansio.deflate import PerMessageDeflate
from rawws.sansio.frames import RSV1, serialize_frame
from rawws.sansio.options import Options
from rawws.sansio.protocol import State
from rawws.sansio.reader import FrameRecord, Header, Violation
from rawws.sansio.server import ServerProtocol

from .helpers import RFC_KEY, fixed_random

HELLO_MASKED = bytes.fromhex("818537fa213d7f9f4d5158")  # RFC 6455 §5.7


def traced_server(**options: int | None) -> tuple[ServerProtocol, list[FrameRecord]]:
    records: list[FrameRecord] = []
    server = ServerProtocol(state=State.OPEN, options=Options(**options),  # type: ignore[arg-type]
                            tracer=records.append)
    return server, records


def test_a_received_frame_and_its_echo() -> None:
    server, records = traced_server()
    server.receive_data(HELLO_MASKED)
    assert server.events_received() == ["Hello"]
    server.send_text("Hello")
    assert server.data_to_send() == [bytes.fromhex("810548656c6c6f")]
    assert records == [
        FrameRecord("received", Header(fin=True, rsv1=False, rsv2=False, rsv3=False, opcode=1,
                                       masked=True, mask_key=RFC_KEY, length=5,
                                       header_length=6, minimal_length=True), b"Hello"),
        FrameRecord("sent", Header(fin=True, rsv1=False, rsv2=False, rsv3=False, opcode=1,
                                   masked=False, mask_key=None, length=5, header_length=2,
                                   minimal_length=True), b"Hello"),
    ]


def test_a_frame_split_over_reads_is_one_record() -> None:
    server, records = traced_server()
    frame = serialize_frame(Opcode.TEXT, "κόσμε".encode() * 100, masking_key=RFC_KEY)
    for i in range(0, len(frame), 7):
        server.receive_data(frame[i : i + 7])
    assert server.events_received() == ["κόσμε" * 100]
    assert [(r.direction, r.header.length, r.payload) for r in records] == [
        ("received", 1000, "κόσμε".encode() * 100)]


def test_control_frames_and_the_automatic_pong() -> None:
    server, records = traced_server()
    server.receive_data(serialize_frame(Opcode.PING, b"p", masking_key=RFC_KEY))
    assert [(r.direction, r.header.opcode, r.payload) for r in records] == [
        ("received", Opcode.PING, b"p"), ("sent", Opcode.PONG, b"p")]


def test_a_client_records_its_masking_keys() -> None:
    records: list[FrameRecord] = []
    client = ClientProtocol(host="example.com", port=80, state=State.OPEN,
                            random=fixed_random(), tracer=records.append)
    client.send_binary(b"\x00\x01")
    (record,) = records
    assert record.header.masked and record.header.mask_key == RFC_KEY
    assert record.payload == b"\x00\x01"  # unmasked


def test_deflate_shows_the_inflated_payload_both_ways() -> None:
    server, records = traced_server()
    server._use_extensions([PerMessageDeflate(compress_threshold=0)])
    compressor = zlib.compressobj(wbits=-15)
    compressed = (compressor.compress(b"squeeze me") + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    server.receive_data(serialize_frame(Opcode.TEXT, compressed, rsv=RSV1, masking_key=RFC_KEY))
    assert server.events_received() == ["squeeze me"]
    server.send_text("squeeze me")
    received, sent = records
    assert received.header.rsv1 and received.payload == compressed
    assert received.inflated == b"squeeze me"
    assert sent.header.rsv1 and sent.inflated == b"squeeze me" and sent.payload != b"squeeze me"


@pytest.mark.parametrize(("data", "violation"), [
    (serialize_frame(3, b"", masking_key=RFC_KEY), Violation(1002, "5.2", "reserved opcode 0x3")),
    (serialize_frame(Opcode.TEXT, b"x"), Violation(1002, "5.1", "client frame is not masked")),
    (serialize_frame(Opcode.TEXT, b"\xff", masking_key=RFC_KEY),
     Violation(1007, "8.1", "text message is not valid UTF-8: invalid start byte")),
    (serialize_frame(Opcode.CLOSE, b"\x03\xed", masking_key=RFC_KEY),
     Violation(1002, "7.4", "invalid close code 1005")),
    (serialize_frame(Opcode.BINARY, bytes(11), masking_key=RFC_KEY),
     Violation(1009, "10.4", "message over 10 bytes (frame of 11 bytes)")),
])
def test_violations_are_recorded_with_their_section(data: bytes, violation: Violation) -> None:
    server, records = traced_server(max_size=10)
    server.receive_data(data)
    assert records[0].direction == "received"
    assert records[0].violation == violation
    assert server.failure is not None and server.failure.section == violation.section  # type: ignore[attr-defined]
    assert records[-1].header.opcode == Opcode.CLOSE and records[-1].direction == "sent"


def test_without_a_tracer_nothing_is_recorded_and_the_fast_path_stays() -> None:
    server = ServerProtocol(state=State.OPEN)
    assert server._reader.tracer is None and server._reader._fast_limit > 0
    traced, _ = traced_server()
    assert traced._reader._fast_limit == -1  # a tracer sees every frame: the general path


def test_the_debug_transcript_is_a_tracer(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rawws.test")
    server = ServerProtocol(state=State.OPEN, logger=logging.getLogger("rawws.test"))
    server.receive_data(HELLO_MASKED)
    server.send_text("Hello")
    server.receive_data(serialize_frame(3, b"", masking_key=RFC_KEY))
    lines = [r.getMessage() for r in caplog.records]
    assert "< TEXT [F] 'Hello' (5 bytes)" in lines
    assert "> TEXT [F] 'Hello' (5 bytes)" in lines
    assert "! opcode 3 [F]  (0 bytes): reserved opcode 0x3 (RFC 6455 §5.2)" in lines
