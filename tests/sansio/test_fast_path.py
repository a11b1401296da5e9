"""The fast paths change nothing but speed: every vector, fed whole and split, gives the same
events and the same bytes out with the fast paths on and off (reader.py, the protocol's
send_text / send_binary).

The fast path takes a whole TEXT or BINARY frame with FIN, no RSV, the expected mask bit, a 7- or
16-bit length under every limit, outside a fragmented message. The vectors sit on every edge of
that definition, and a hypothesis property throws random frame streams split at random points
at both paths.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawws.sansio.codes import Opcode
from rawws.sansio.frames import RSV1, serialize_frame
from rawws.sansio.protocol import Protocol, State

from .helpers import RFC_KEY, open_client, open_server, splits


def masked(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    return serialize_frame(opcode, payload, fin=fin, rsv=rsv, masking_key=RFC_KEY)


def outcome(protocol: Protocol, chunks: list[bytes]) -> tuple[object, ...]:
    """Everything observable: events, bytes out, state, close frames, failure."""
    events: list[object] = []
    out: list[bytes] = []
    for chunk in chunks:
        protocol.receive_data(chunk)
        for event in protocol.events_received():
            events.append(event)
            if protocol.state is State.OPEN:  # the application echoes every message
                if isinstance(event, str):
                    protocol.send_text(event)
                elif isinstance(event, bytes):
                    protocol.send_binary(event)
        protocol.release_close()
        out.append(b"".join(protocol.data_to_send()))
    failure = protocol.failure
    return (events, b"".join(out), protocol.state, protocol.close_sent, protocol.close_rcvd,
            protocol.close_transport,
            None if failure is None else (type(failure), str(failure)))


def both_paths(data: bytes, *, server: bool = True, max_size: int | None = 2**20,
               max_frame_size: int | None = None, every_split: bool = True) -> None:
    make = open_server if server else open_client
    feeds = list(splits(data)) if every_split else [[data]]
    for chunks in feeds:
        fast = outcome(make(max_size=max_size, max_frame_size=max_frame_size), chunks)
        slow = outcome(make(max_size=max_size, max_frame_size=max_frame_size, fast_path=False),
                       chunks)
        assert fast == slow, chunks


SERVER_VECTORS = {
    "hello": masked(Opcode.TEXT, b"Hello"),
    "empty text and binary": masked(Opcode.TEXT, b"") + masked(Opcode.BINARY, b""),
    "125 bytes": masked(Opcode.BINARY, bytes(range(125))),
    "126 bytes (16-bit length)": masked(Opcode.BINARY, bytes(126)),
    "1 KiB text": masked(Opcode.TEXT, "€".encode() * 341 + b"x"),
    "padded 16-bit length": b"\x82\xfe\x00\x05" + RFC_KEY + masked(Opcode.BINARY, b"abcde")[6:],
    "invalid UTF-8": masked(Opcode.TEXT, b"ok") + masked(Opcode.TEXT, b"\xce\xba\xff"),
    "fragments with pings": masked(Opcode.TEXT, b"frag", fin=False) + masked(Opcode.PING, b"p")
    + masked(Opcode.CONTINUATION, b"ments") + masked(Opcode.BINARY, b"\x00"),
    "data frame inside a fragmented message": masked(Opcode.TEXT, b"a", fin=False)
    + masked(Opcode.TEXT, b"b"),
    "RSV1 without extension": masked(Opcode.TEXT, b"x") + masked(Opcode.TEXT, b"y", rsv=RSV1),
    "unmasked client frame": masked(Opcode.TEXT, b"x") + serialize_frame(Opcode.TEXT, b"y"),
    "close after messages": masked(Opcode.BINARY, b"1") + masked(Opcode.CLOSE, b"\x03\xe8"),
    "message after close": masked(Opcode.CLOSE, b"\x03\xe8") + masked(Opcode.TEXT, b"late"),
}


@pytest.mark.parametrize("name", SERVER_VECTORS)
def test_server_vectors(name: str) -> None:
    both_paths(SERVER_VECTORS[name])


@pytest.mark.parametrize("size", [99, 100, 101])
def test_at_the_size_limits(size: int) -> None:
    both_paths(masked(Opcode.BINARY, bytes(size)), max_size=100, every_split=False)
    both_paths(masked(Opcode.TEXT, b"a" * size), max_size=None, max_frame_size=100,
               every_split=False)


def test_client_side() -> None:
    data = (serialize_frame(Opcode.TEXT, b"Hello") + serialize_frame(Opcode.BINARY, bytes(300))
            + serialize_frame(Opcode.PING, b"x") + masked(Opcode.TEXT, b"masked: fails"))
    both_paths(data, server=False)


def test_large_frames_take_the_general_path_alike() -> None:
    both_paths(masked(Opcode.BINARY, bytes(range(256)) * 300), every_split=False)


_frames = st.one_of(
    st.builds(lambda p: masked(Opcode.TEXT, p.encode()), st.text(max_size=200)),
    st.builds(lambda p: masked(Opcode.BINARY, p), st.binary(max_size=300)),
    st.builds(lambda p: masked(Opcode.TEXT, p), st.binary(max_size=8)),  # often bad UTF-8
    st.builds(lambda p: masked(Opcode.PING, p), st.binary(max_size=10)),
    st.builds(lambda p: masked(Opcode.TEXT, p, fin=False), st.binary(max_size=5)),
    st.builds(lambda p: masked(Opcode.CONTINUATION, p), st.binary(max_size=5)),
    st.builds(lambda p: masked(Opcode.CONTINUATION, p, fin=False), st.binary(max_size=5)),
    st.just(masked(Opcode.CLOSE, b"\x03\xe8")),
    st.just(serialize_frame(Opcode.BINARY, b"unmasked")),
    st.just(masked(Opcode.BINARY, b"r", rsv=RSV1)),
)


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(_frames, max_size=12), cuts=st.lists(st.integers(0, 4000), max_size=6),
       max_size=st.sampled_from([None, 64, 2**20]))
def test_random_streams_split_anywhere(frames: list[bytes], cuts: list[int],
                                       max_size: int | None) -> None:
    data = b"".join(frames)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    fast = outcome(open_server(max_size=max_size), chunks)
    slow = outcome(open_server(max_size=max_size, fast_path=False), chunks)
    assert fast == slow


def test_the_send_fast_path_writes_the_same_bytes() -> None:
    for payload in (b"", b"x", bytes(125), bytes(126), bytes(70000)):
        fast, slow = open_server(), open_server(fast_path=False)
        for server in (fast, slow):
            server.send_binary(payload)
            server.send_text(payload.decode())
        assert b"".join(fast.data_to_send()) == b"".join(slow.data_to_send())


def test_the_fast_path_is_taken_only_when_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this, the comparisons above could compare the general path with itself."""
    from rawws.sansio.reader import FrameReader

    general = []
    original = FrameReader._header_and_payload

    def spy(self: FrameReader, data: bytes, pos: int, end: int) -> int:
        general.append(pos)
        return original(self, data, pos, end)

    monkeypatch.setattr(FrameReader, "_header_and_payload", spy)
    data = masked(Opcode.TEXT, b"Hello") + masked(Opcode.BINARY, bytes(1000))
    open_server().receive_data(data)
    assert general == []
    open_server(fast_path=False).receive_data(data)
    assert general == [0, 11]
    open_server().receive_data(masked(Opcode.PING, b""))  # control frames: always general
    assert general == [0, 11, 0]
