"""The extension interface (RFC 6455 §9): a third-party extension, negotiated through the
factories, owning an RSV bit, applied to data frames only."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from rawws.sansio.codes import Opcode
from rawws.sansio.extensions import Extension, ExtensionParams
from rawws.sansio.frames import RSV2, Frame, serialize_frame
from rawws.sansio.protocol import Ping, State
from rawws.sansio.server import ServerProtocol

from .helpers import GOOD_REQUEST, RFC_KEY, close_code_sent


class Reverse:
    """Reverses payloads that carry RSV2 (a toy extension, x-reverse)."""

    name = "x-reverse"
    rsv_bits = RSV2
    broadcast_key: Hashable | None = ("x-reverse",)

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        if not frame.rsv2:
            return frame
        return frame._replace(payload=frame.payload[::-1], rsv2=False)

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        return frame._replace(payload=frame.payload[::-1], rsv2=True)


class ReverseFactory:
    name = "x-reverse"

    def process_request_params(self, params: Sequence[tuple[str, str | None]],
                               accepted: Sequence[Extension]) -> tuple[ExtensionParams, Reverse]:
        return [], Reverse()


def negotiated() -> ServerProtocol:
    server = ServerProtocol(extensions=[ReverseFactory()])
    server.receive_data(GOOD_REQUEST.replace(b"\r\n\r\n",
                                             b"\r\nSec-WebSocket-Extensions: x-reverse\r\n\r\n"))
    (request,) = server.events_received()
    response = server.accept(request)  # type: ignore[arg-type]
    assert response.headers["Sec-WebSocket-Extensions"] == "x-reverse"
    server.send_response(response)
    server.data_to_send()
    assert server.state is State.OPEN
    return server


def test_a_negotiated_extension_decodes_and_encodes_data_frames() -> None:
    server = negotiated()
    server.receive_data(serialize_frame(Opcode.TEXT, b"olleh", rsv=RSV2, masking_key=RFC_KEY))
    assert server.events_received() == ["hello"]
    server.send_text("hello")
    assert server.data_to_send() == [b"\xa1\x05olleh"]  # RSV2 set, reversed


def test_control_frames_never_reach_it_and_may_not_carry_its_bit() -> None:
    server = negotiated()
    server.receive_data(serialize_frame(Opcode.PING, b"ab", masking_key=RFC_KEY))
    assert server.events_received() == [Ping(b"ab")]
    server.receive_data(serialize_frame(Opcode.PING, b"ab", rsv=RSV2, masking_key=RFC_KEY))
    assert close_code_sent(server) == 1002


def test_without_negotiation_its_bit_is_a_protocol_error() -> None:
    server = ServerProtocol(state=State.OPEN)
    server.receive_data(serialize_frame(Opcode.TEXT, b"x", rsv=RSV2, masking_key=RFC_KEY))
    assert close_code_sent(server) == 1002
