"""The send side: the outbox, masking keys, large payloads queued apart from their header,
the extensions' encoding, frames prepared once for many connections."""

from __future__ import annotations

from rawws.sansio.deflate import PerMessageDeflate
from rawws.sansio.frames import RSV1, serialize_frame
from rawws.sansio.reader import FrameRecord
from rawws.sansio.writer import FrameWriter

from .helpers import RFC_KEY, fixed_random


def test_server_frames_in_order_and_taken_once() -> None:
    writer = FrameWriter(mask=False, random=fixed_random())
    assert writer.frame(1, b"Hello") == 7
    assert writer.frame(9, b"") == 2
    assert writer.take() == [b"\x81\x05Hello", b"\x89\x00"]
    assert writer.take() == []


def test_client_frames_are_masked_with_keys_drawn_4_kib_at_a_time() -> None:
    calls: list[int] = []

    def random(n: int) -> bytes:
        calls.append(n)
        return bytes(range(256)) * (n // 256)

    writer = FrameWriter(mask=True, random=random)
    writer.frame(2, b"ab")
    writer.frame(2, b"cd")
    first, second = writer.take()
    assert first == serialize_frame(2, b"ab", masking_key=b"\x00\x01\x02\x03")
    assert second == serialize_frame(2, b"cd", masking_key=b"\x04\x05\x06\x07")
    assert calls == [4096]


def test_a_large_payload_is_queued_apart_from_its_header() -> None:
    writer = FrameWriter(mask=False, random=fixed_random())
    payload = bytes(70000)
    assert writer.frame(2, payload) == 10 + 70000
    header, body = writer.take()
    assert header == b"\x82\x7f" + (70000).to_bytes(8, "big")
    assert body is payload  # not copied
    writer.frame(2, bytes(20000))
    assert [len(item) for item in writer.take()] == [4, 20000]
    writer.frame(2, bytes(16383))
    assert [len(item) for item in writer.take()] == [16387]  # under the split: one item


def test_masked_large_payloads_stay_one_item() -> None:
    writer = FrameWriter(mask=True, random=fixed_random())
    writer.frame(2, bytes(70000))
    (data,) = writer.take()
    assert data == serialize_frame(2, bytes(70000), masking_key=RFC_KEY)


def test_extensions_encode_data_frames_and_the_tracer_sees_both_payloads() -> None:
    records: list[FrameRecord] = []
    writer = FrameWriter(mask=False, random=fixed_random(), tracer=records.append)
    writer.extensions = [PerMessageDeflate(compress_threshold=0)]
    writer.data(1, b"squeeze squeeze squeeze", True, None)
    (data,) = writer.take()
    assert data[0] == 0x80 | RSV1 | 1
    (record,) = records
    assert record.direction == "sent" and record.header.rsv1
    assert record.inflated == b"squeeze squeeze squeeze"
    assert record.payload == data[2:]


def test_prepared_frames_are_queued_as_they_are() -> None:
    records: list[FrameRecord] = []
    writer = FrameWriter(mask=False, random=fixed_random(), tracer=records.append)
    frame = writer.prepare(1, b"all", None)
    assert frame == b"\x81\x03all" and writer.take() == []  # prepare queues nothing
    assert writer.prepared(frame) == 5
    assert writer.take() == [frame]
    assert [(r.header.opcode, r.payload) for r in records] == [(1, b"all")]
