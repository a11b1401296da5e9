"""The connection state machine: one test per failure rule, fragmentation, UTF-8, closing."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rawws.errors import InvalidState
from rawws.sansio.client import ClientProtocol
from rawws.sansio.codes import Opcode
from rawws.sansio.deflate import PerMessageDeflate
from rawws.sansio.frames import RSV1, RSV2, RSV3, serialize_frame
from rawws.sansio.protocol import (
    TRANSITIONS,
    CloseReceived,
    Ping,
    Pong,
    Protocol,
    State,
    Trigger,
)
from rawws.sansio.server import ServerProtocol

from .helpers import RFC_KEY, close_code_sent, feed, open_client, open_server, splits


def successors(state: State) -> set[State]:
    return {after for (before, _), after in TRANSITIONS.items() if before is state}


def masked(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    return serialize_frame(opcode, payload, fin=fin, rsv=rsv, masking_key=RFC_KEY)


def failed_with(protocol: Protocol, data: bytes) -> int | None:
    """Feed ``data`` and return the close code the protocol failed with."""
    protocol.receive_data(data)
    protocol.events_received()
    return close_code_sent(protocol)


# --- failure rules, each with its close code -------------------------------------------------


class TestProtocolErrors1002:
    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    def test_reserved_opcode(self, opcode: int) -> None:
        assert failed_with(open_server(), masked(opcode, b"")) == 1002

    @pytest.mark.parametrize("rsv", [RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3])
    def test_rsv_bit_without_extension(self, rsv: int) -> None:
        assert failed_with(open_server(), masked(Opcode.TEXT, b"x", rsv=rsv)) == 1002

    def test_unmasked_client_frame(self) -> None:
        assert failed_with(open_server(), serialize_frame(Opcode.TEXT, b"x")) == 1002

    def test_masked_server_frame(self) -> None:
        assert failed_with(open_client(), masked(Opcode.TEXT, b"x")) == 1002

    def test_control_frame_over_125_bytes(self) -> None:
        assert failed_with(open_server(), masked(Opcode.PING, bytes(126))) == 1002

    def test_control_frame_over_125_detected_from_header_alone(self) -> None:
        server = open_server()
        header = masked(Opcode.PING, bytes(126))[:8]  # the payload never arrives
        assert failed_with(server, header) == 1002

    @pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
    def test_fragmented_control_frame(self, opcode: int) -> None:
        assert failed_with(open_server(), masked(opcode, b"", fin=False)) == 1002

    def test_64_bit_length_with_high_bit(self) -> None:
        data = b"\x82\xff" + (2**63).to_bytes(8, "big") + RFC_KEY
        assert failed_with(open_server(max_size=None), data) == 1002

    def test_continuation_without_message(self) -> None:
        assert failed_with(open_server(), masked(Opcode.CONTINUATION, b"x")) == 1002

    def test_new_message_inside_fragmented_message(self) -> None:
        data = masked(Opcode.TEXT, b"a", fin=False) + masked(Opcode.BINARY, b"b")
        assert failed_with(open_server(), data) == 1002

    def test_close_with_one_byte_payload(self) -> None:
        assert failed_with(open_server(), masked(Opcode.CLOSE, b"\x03")) == 1002

    @pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000])
    def test_invalid_close_code(self, code: int) -> None:
        assert failed_with(open_server(), masked(Opcode.CLOSE, code.to_bytes(2, "big"))) == 1002

    def test_rsv1_on_control_frame_even_with_extension(self) -> None:
        server = open_server()
        server._use_extensions([PerMessageDeflate()])  # RSV1 is owned, for data frames only
        assert failed_with(server, masked(Opcode.PING, b"", rsv=RSV1)) == 1002


class TestInvalidUTF8_1007:
    def test_single_frame(self) -> None:
        assert failed_with(open_server(), masked(Opcode.TEXT, b"\xce\xba\xff")) == 1007

    def test_close_reason(self) -> None:
        assert failed_with(open_server(), masked(Opcode.CLOSE, b"\x03\xe8\xff")) == 1007

    def test_fails_fast_between_fragments(self) -> None:
        """Autobahn 6.4.1: the bad fragment fails the connection before the next one arrives."""
        server = open_server()
        server.receive_data(masked(Opcode.TEXT, "κόσμε".encode(), fin=False))
        assert server.state is State.OPEN
        server.receive_data(masked(Opcode.CONTINUATION, b"\xf4\x90\x80\x80", fin=False))
        assert close_code_sent(server) == 1007
        assert server.state is State.CLOSING

    def test_fails_fast_inside_a_frame(self) -> None:
        """Autobahn 6.4.3: the frame arrives in pieces; fail at the piece with the bad byte."""
        frame = masked(Opcode.TEXT, "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"edited")
        cut = 2 + 4 + len("κόσμε".encode()) + 2  # header, key, good text, then 2 bad bytes
        server = open_server()
        server.receive_data(frame[:cut - 2])
        assert server.state is State.OPEN
        server.receive_data(frame[cut - 2 : cut])
        assert close_code_sent(server) == 1007

    def test_surrogate_detected_at_second_byte(self) -> None:
        frame = masked(Opcode.TEXT, b"ab\xed\xa0\x80")
        server = open_server()
        server.receive_data(frame[:-1])  # ED A0 arrived, the third byte has not
        assert close_code_sent(server) == 1007

    def test_incomplete_at_end_of_message(self) -> None:
        data = masked(Opcode.TEXT, b"\xe2\x82", fin=False) + masked(Opcode.CONTINUATION, b"")
        assert failed_with(open_server(), data) == 1007

    def test_character_split_across_fragments_is_fine(self) -> None:
        euro = "€".encode()
        data = (masked(Opcode.TEXT, euro[:1], fin=False)
                + masked(Opcode.CONTINUATION, euro[1:2], fin=False)
                + masked(Opcode.CONTINUATION, euro[2:]))
        for chunks in splits(data):
            assert feed(open_server(), chunks) == ["€"]


class TestTooBig1009:
    def test_declared_length_over_max_size_fails_before_payload(self) -> None:
        server = open_server(max_size=1000)
        header = b"\x82\xfe" + (1001).to_bytes(2, "big") + RFC_KEY  # no payload follows
        assert failed_with(server, header) == 1009

    def test_fragments_adding_up_over_max_size(self) -> None:
        server = open_server(max_size=1000)
        data = masked(Opcode.BINARY, bytes(600), fin=False) + masked(Opcode.CONTINUATION,
                                                                      bytes(401))
        assert failed_with(server, data) == 1009

    def test_exactly_max_size_is_fine(self) -> None:
        server = open_server(max_size=1000)
        data = masked(Opcode.BINARY, bytes(600), fin=False) + masked(Opcode.CONTINUATION,
                                                                      bytes(400))
        assert feed(server, [data]) == [bytes(1000)]

    def test_max_frame_size(self) -> None:
        server = open_server(max_frame_size=100)
        assert failed_with(server, masked(Opcode.BINARY, bytes(101))) == 1009

    def test_unlimited(self) -> None:
        server = open_server(max_size=None)
        assert feed(server, [masked(Opcode.BINARY, bytes(3_000_000))]) == [bytes(3_000_000)]

    def test_default_is_1_mib(self) -> None:
        assert open_server().max_size == 2**20


class TestAfterFailure:
    def test_server_asks_to_close_tcp_and_ignores_further_data(self) -> None:
        server = open_server()
        server.receive_data(masked(3, b"") + masked(Opcode.TEXT, b"ignored"))
        assert server.close_transport
        assert server.events_received() == []
        server.data_to_send()
        server.receive_data(masked(Opcode.TEXT, b"ignored too"))
        assert server.events_received() == []
        assert server.data_to_send() == []

    def test_client_waits_for_the_server_to_close(self) -> None:
        client = open_client()
        client.receive_data(serialize_frame(3, b""))
        assert close_code_sent(client) == 1002
        assert not client.close_transport  # §7.1.1: the server closes TCP first
        client.receive_eof()
        assert client.state is State.CLOSED
        assert client.close_transport


# --- fragmentation and control frames ---------------------------------------------------------


class TestFragmentation:
    def test_control_frames_between_fragments(self) -> None:
        data = (masked(Opcode.TEXT, b"frag", fin=False) + masked(Opcode.PING, b"p")
                + masked(Opcode.CONTINUATION, b"men", fin=False) + masked(Opcode.PONG, b"q")
                + masked(Opcode.CONTINUATION, b"ts"))
        for chunks in splits(data):
            server = open_server()
            assert feed(server, chunks) == [Ping(b"p"), Pong(b"q"), "fragments"]
            assert server.data_to_send() == [serialize_frame(Opcode.PONG, b"p")]

    def test_binary_fragments(self) -> None:
        data = (masked(Opcode.BINARY, b"\x00", fin=False)
                + masked(Opcode.CONTINUATION, b"", fin=False)
                + masked(Opcode.CONTINUATION, b"\x01\x02"))
        for chunks in splits(data):
            assert feed(open_server(), chunks) == [b"\x00\x01\x02"]

    def test_empty_messages(self) -> None:
        data = masked(Opcode.TEXT, b"") + masked(Opcode.BINARY, b"")
        assert feed(open_server(), [data]) == ["", b""]

    def test_send_fragmented(self) -> None:
        server = open_server()
        server.send_text("Hel", fin=False)
        with pytest.raises(InvalidState):
            server.send_binary(b"x")
        server.send_continuation("lo", fin=True)
        assert b"".join(server.data_to_send()) == bytes.fromhex("010348656c80026c6f")
        with pytest.raises(InvalidState):
            server.send_continuation("x", fin=True)

    def test_ping_pong_payload_limit(self) -> None:
        with pytest.raises(ValueError):
            open_server().send_ping(bytes(126))
        with pytest.raises(ValueError):
            open_server().send_pong(bytes(126))


# --- closing handshake (§5.5.1, §7) -----------------------------------------------------------


class TestClosing:
    def test_peer_initiated_close_is_echoed_and_server_closes_tcp(self) -> None:
        server = open_server()
        assert feed(server, [masked(Opcode.CLOSE, b"\x03\xe8bye")]) == [CloseReceived(1000,
                                                                                     "bye")]
        assert server.data_to_send() == [serialize_frame(Opcode.CLOSE, b"\x03\xe8bye")]
        assert server.state is State.CLOSING
        assert server.close_transport
        assert server.close_rcvd_first
        server.receive_eof()
        assert server.state is State.CLOSED
        assert server.close_code == 1000

    def test_empty_close_is_echoed_empty(self) -> None:
        server = open_server()
        assert feed(server, [masked(Opcode.CLOSE, b"")]) == [CloseReceived(1005, "")]
        assert server.data_to_send() == [b"\x88\x00"]

    def test_local_close_then_echo(self) -> None:
        server = open_server()
        server.send_close(4000, "done")
        assert server.data_to_send() == [serialize_frame(Opcode.CLOSE, b"\x0f\xa0done")]
        assert server.state is State.CLOSING
        assert not server.close_transport
        # Data still arrives until the peer's close (§7.1.2).
        assert feed(server, [masked(Opcode.TEXT, b"late")]) == ["late"]
        assert feed(server, [masked(Opcode.CLOSE, b"\x0f\xa0")]) == [CloseReceived(4000, "")]
        assert server.data_to_send() == []  # no second close frame
        assert server.close_transport

    def test_client_initiated_close(self) -> None:
        client = open_client()
        client.send_close(1000)
        assert client.data_to_send() == [serialize_frame(Opcode.CLOSE, b"\x03\xe8",
                                                          masking_key=RFC_KEY)]
        assert feed(client, [serialize_frame(Opcode.CLOSE, b"\x03\xe8")]) == [
            CloseReceived(1000, "")]
        assert not client.close_transport  # waits for the server's TCP close
        client.receive_eof()
        assert client.state is State.CLOSED

    def test_data_after_close_frame_is_ignored(self) -> None:
        server = open_server()
        data = masked(Opcode.CLOSE, b"\x03\xe8") + masked(Opcode.TEXT, b"after")
        assert feed(server, [data]) == [CloseReceived(1000, "")]

    def test_eof_without_close_is_1006(self) -> None:
        server = open_server()
        server.receive_eof()
        assert server.state is State.CLOSED
        assert server.close_code == 1006

    def test_no_pong_after_close_received(self) -> None:
        server = open_server()
        server.receive_data(masked(Opcode.CLOSE, b"\x03\xe8") + masked(Opcode.PING, b"x"))
        assert server.data_to_send() == [serialize_frame(Opcode.CLOSE, b"\x03\xe8")]

    def test_pong_while_closing_after_our_close(self) -> None:
        server = open_server()
        server.send_close()
        server.data_to_send()
        server.receive_data(masked(Opcode.PING, b"x"))
        assert server.data_to_send() == [serialize_frame(Opcode.PONG, b"x")]

    def test_cannot_send_after_close(self) -> None:
        server = open_server()
        server.send_close()
        for send in (lambda: server.send_text("x"), lambda: server.send_binary(b"x"),
                     lambda: server.send_ping(), lambda: server.send_close()):
            with pytest.raises(InvalidState):
                send()

    def test_invalid_close_code_to_send(self) -> None:
        with pytest.raises(ValueError):
            open_server().send_close(1005)


class TestStateMachine:
    def test_transition_table(self) -> None:
        assert TRANSITIONS == {
            (State.CONNECTING, Trigger.HANDSHAKE_DONE): State.OPEN,
            (State.CONNECTING, Trigger.HANDSHAKE_FAILED): State.CLOSED,
            (State.CONNECTING, Trigger.TCP_CLOSED): State.CLOSED,
            (State.OPEN, Trigger.CLOSE_SENT): State.CLOSING,
            (State.OPEN, Trigger.TCP_CLOSED): State.CLOSED,
            (State.CLOSING, Trigger.TCP_CLOSED): State.CLOSED,
        }
        assert successors(State.CLOSED) == set()

    def test_illegal_transition_raises(self) -> None:
        server = open_server()
        server.receive_eof()
        with pytest.raises(InvalidState):
            server._transition(Trigger.HANDSHAKE_DONE)
        server = open_server()
        server.send_close()
        with pytest.raises(InvalidState):
            server._transition(Trigger.CLOSE_SENT)  # one close frame per connection

    def test_client_masking_keys_come_from_random(self) -> None:
        calls = []

        def random(n: int) -> bytes:
            calls.append(n)
            return bytes(range(256)) * (n // 256)

        client = open_client(random=random)
        client.send_binary(b"ab")
        client.send_binary(b"cd")
        first, second = client.data_to_send()
        assert first[2:6] == b"\x00\x01\x02\x03"
        assert second[2:6] == b"\x04\x05\x06\x07"
        assert calls == [16, 4096]  # the handshake key, then one pool of masking keys


class TestBroadcastKey:
    def test_plain_server_frames_are_shareable(self) -> None:
        server = open_server()
        assert server.broadcast_key == ()
        assert server.prepare_message("hi") == b"\x81\x02hi"
        assert server.prepare_message(b"\x00") == b"\x82\x01\x00"

    def test_client_frames_are_not(self) -> None:
        assert open_client().broadcast_key is None

    def test_send_prepared_goes_through_the_outbox(self) -> None:
        server = open_server()
        server.send_text("a")
        server.send_prepared(b"\x81\x01b")
        assert server.data_to_send() == [b"\x81\x01a", b"\x81\x01b"]


# --- stateful: a client and a server talking through memory -----------------------------------


class Conversation(RuleBasedStateMachine):
    """Any interleaving of sends, partial deliveries and closes keeps both ends consistent:
    messages arrive whole and in order, states only move along the table, the closing
    handshake completes."""

    def __init__(self) -> None:
        super().__init__()
        self.client: ClientProtocol = open_client(random=lambda n: bytes(n))
        self.server: ServerProtocol = open_server()
        self.in_flight: dict[str, bytearray] = {"to_server": bytearray(),
                                                "to_client": bytearray()}
        self.expected: dict[str, list[object]] = {"to_server": [], "to_client": []}
        self.received: dict[str, list[object]] = {"to_server": [], "to_client": []}
        self.history: list[tuple[State, State]] = []

    def _send(self, sender: Protocol, direction: str) -> None:
        self.in_flight[direction] += b"".join(sender.data_to_send())

    @precondition(lambda self: self.client.state is State.OPEN)
    @rule(message=st.one_of(st.text(max_size=300), st.binary(max_size=300)))
    def client_sends(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.client.send_text(message)
        else:
            self.client.send_binary(message)
        self.expected["to_server"].append(message)
        self._send(self.client, "to_server")

    @precondition(lambda self: self.server.state is State.OPEN)
    @rule(message=st.one_of(st.text(max_size=300), st.binary(max_size=300)),
          parts=st.integers(min_value=1, max_value=4))
    def server_sends(self, message: str | bytes, parts: int) -> None:
        step = max(1, len(message) // parts)
        pieces = [message[i : i + step] for i in range(0, len(message), step)] or [message]
        first, *rest = pieces
        if isinstance(message, str):
            self.server.send_text(first, fin=not rest)
        else:
            self.server.send_binary(first, fin=not rest)  # type: ignore[arg-type]
        for i, piece in enumerate(rest):
            self.server.send_continuation(piece, fin=i == len(rest) - 1)
        self.expected["to_client"].append(message)
        self._send(self.server, "to_client")

    @precondition(lambda self: self.client.state is State.OPEN)
    @rule(payload=st.binary(max_size=125))
    def client_pings(self, payload: bytes) -> None:
        self.client.send_ping(payload)
        self._send(self.client, "to_server")

    @precondition(lambda self: self.client.state is State.OPEN)
    @rule(code=st.sampled_from([1000, 1001, 3000, 4999]))
    def client_closes(self, code: int) -> None:
        self.client.send_close(code)
        self._send(self.client, "to_server")

    @precondition(lambda self: self.server.state is State.OPEN)
    @rule()
    def server_closes(self) -> None:
        self.server.send_close(1001, "going away")
        self._send(self.server, "to_client")

    @rule(direction=st.sampled_from(["to_server", "to_client"]),
          size=st.integers(min_value=1, max_value=400))
    def deliver(self, direction: str, size: int) -> None:
        buffer = self.in_flight[direction]
        chunk, self.in_flight[direction] = bytes(buffer[:size]), buffer[size:]
        if not chunk:
            return
        receiver = self.server if direction == "to_server" else self.client
        before = receiver.state
        receiver.receive_data(chunk)
        if receiver.state is not before:
            self.history.append((before, receiver.state))
        for event in receiver.events_received():
            if isinstance(event, (str, bytes)):
                self.received[direction].append(event)
        # The application has handled the messages: a close held behind them may go.
        receiver.release_close()
        # Whatever the receiver must answer (pong, close echo) goes back.
        back = "to_client" if direction == "to_server" else "to_server"
        self._send(receiver, back)

    @invariant()
    def messages_arrive_in_order(self) -> None:
        for direction in ("to_server", "to_client"):
            got = self.received[direction]
            assert got == self.expected[direction][: len(got)]

    @invariant()
    def transitions_follow_the_table(self) -> None:
        for before, after in self.history:
            assert after in successors(before)

    @invariant()
    def no_failure(self) -> None:
        assert self.client.failure is None
        assert self.server.failure is None

    def teardown(self) -> None:
        # Deliver everything left: if a close was started, the handshake must complete.
        for _ in range(4):
            for direction in ("to_server", "to_client"):
                self.deliver(direction, 10**9)
        for direction in ("to_server", "to_client"):
            assert self.received[direction] == self.expected[direction] or (
                self.client.close_sent or self.server.close_sent
            )
        if self.client.close_sent or self.server.close_sent:
            assert self.client.close_rcvd is not None and self.server.close_rcvd is not None
            assert self.server.close_transport


TestConversation = Conversation.TestCase
TestConversation.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


class TestFailureAfterValidMessages:
    """A bad frame in the same read as valid messages: the messages are delivered and can be
    answered before the close frame goes out (Autobahn 3.2, 4.1.3, 5.15...)."""

    def test_answer_goes_out_before_the_close(self) -> None:
        server = open_server()
        server.receive_data(masked(Opcode.TEXT, b"Hello") + masked(Opcode.TEXT, b"x", rsv=RSV2)
                            + masked(Opcode.PING, b""))
        assert server.events_received() == ["Hello"]
        assert server.close_pending == (1002, "reserved bits set: 010")
        assert server.state is State.OPEN and not server.close_transport
        server.send_text("Hello")  # the application echoes what it got
        assert server.data_to_send() == [serialize_frame(Opcode.TEXT, b"Hello")]
        server.release_close()
        assert server.close_pending is None
        client = open_client()
        for data in server.data_to_send():
            client.receive_data(data)
        assert client.events_received() == [CloseReceived(1002, "reserved bits set: 010")]
        assert server.state is State.CLOSING
        assert server.close_transport

    def test_nothing_after_the_bad_frame_is_read(self) -> None:
        server = open_server()
        server.receive_data(masked(Opcode.TEXT, b"a") + masked(4, b"") + masked(Opcode.TEXT,
                                                                              b"b"))
        assert server.events_received() == ["a"]
        assert not server.receiving
        server.release_close()
        server.data_to_send()
        server.receive_data(masked(Opcode.TEXT, b"c"))
        assert server.events_received() == []

    def test_without_pending_messages_it_fails_at_once(self) -> None:
        server = open_server()
        server.receive_data(masked(4, b""))
        assert server.state is State.CLOSING


class TestCloseAfterValidMessages:
    def test_echo_waits_for_the_answers(self) -> None:
        server = open_server()
        server.receive_data(masked(Opcode.TEXT, b"last line") + masked(Opcode.CLOSE,
                                                                       b"\x03\xe8"))
        assert server.events_received() == ["last line", CloseReceived(1000, "")]
        assert server.state is State.OPEN  # the application may still answer
        assert server.close_pending == (1000, "")
        assert not server.close_transport
        server.send_text("last line")
        assert server.data_to_send() == [serialize_frame(Opcode.TEXT, b"last line")]
        server.release_close()
        assert server.data_to_send() == [serialize_frame(Opcode.CLOSE, b"\x03\xe8")]
        assert server.state is State.CLOSING
        assert server.close_transport

    def test_application_close_in_between_is_not_doubled(self) -> None:
        server = open_server()
        server.receive_data(masked(Opcode.TEXT, b"x") + masked(Opcode.CLOSE, b"\x0b\xb8"))
        server.events_received()
        server.send_close(1001)
        assert server.data_to_send() == [serialize_frame(Opcode.CLOSE, b"\x03\xe9")]
        assert server.close_transport


def test_invalid_close_leaves_nothing_recorded() -> None:
    server = open_server()
    for code, reason in ((1006, ""), (1000, "x" * 124)):
        with pytest.raises(ValueError):
            server.send_close(code, reason)
        assert server.close_sent is None
        assert server.state is State.OPEN
        assert server.data_to_send() == []


def test_limits_changed_after_construction_apply_to_small_frames() -> None:
    server = open_server()
    server.max_size = 10
    assert failed_with(server, masked(Opcode.BINARY, bytes(11))) == 1009
    server = open_server()
    server.max_frame_size = 5
    assert failed_with(server, masked(Opcode.TEXT, b"123456")) == 1009


def test_the_close_echo_stays_behind_every_answer() -> None:
    """Autobahn 7.1.6: a big message, a small one and a close in one read; the answer to the
    big one is written while the small one is still being handled: the close waits for
    release_close(), however many times the outbox is emptied meanwhile."""
    server = open_server(max_size=None)
    big = bytes(300_000)
    server.receive_data(masked(Opcode.BINARY, big) + masked(Opcode.TEXT, b"Hello World!")
                        + masked(Opcode.CLOSE, b"\x03\xe8"))
    events = server.events_received()
    assert events[:2] == [big, "Hello World!"]
    server.send_binary(big)
    assert b"".join(server.data_to_send()) == serialize_frame(Opcode.BINARY, big)
    assert server.state is State.OPEN
    server.send_text("Hello World!")
    assert server.data_to_send() == [serialize_frame(Opcode.TEXT, b"Hello World!")]
    server.release_close()
    assert server.data_to_send() == [serialize_frame(Opcode.CLOSE, b"\x03\xe8")]
    server.release_close()  # nothing more is held
    assert server.data_to_send() == []


class TestPongsOwed:
    """Issue 11 item 12: a peer that pings and never reads cannot make the connection queue
    pongs without bound (RFC 6455 §5.5.3: answering only the most recent ping is allowed)."""

    def test_every_ping_is_answered_while_writing_flows(self) -> None:
        server = open_server()
        server.receive_data(masked(Opcode.PING, b"1") + masked(Opcode.PING, b"2"))
        assert server.events_received() == [Ping(b"1"), Ping(b"2")]
        assert server.data_to_send() == [b"\x8a\x011", b"\x8a\x012"]

    def test_while_paused_one_pong_is_owed_for_the_latest_ping(self) -> None:
        server = open_server()
        server.pause_writing()
        for n in range(1000):
            server.receive_data(masked(Opcode.PING, str(n).encode()))
        assert len(server.events_received()) == 1000
        assert server.data_to_send() == []
        server.resume_writing()
        assert server.data_to_send() == [b"\x8a\x03999"]
        server.resume_writing()  # nothing more is owed
        assert server.data_to_send() == []

    def test_the_pong_owed_goes_before_the_close(self) -> None:
        server = open_server()
        server.pause_writing()
        server.receive_data(masked(Opcode.PING, b"late") + masked(Opcode.PING, b"last"))
        server.events_received()
        server.send_close(1001)
        assert server.data_to_send() == [b"\x8a\x04last", b"\x88\x02\x03\xe9"]
        server.resume_writing()
        assert server.data_to_send() == []

    def test_a_client_owes_a_masked_pong(self) -> None:
        client = open_client()
        client.pause_writing()
        client.receive_data(serialize_frame(Opcode.PING, b"a") + serialize_frame(Opcode.PING,
                                                                              b"b"))
        client.resume_writing()
        assert client.data_to_send() == [serialize_frame(Opcode.PONG, b"b",
                                                         masking_key=RFC_KEY)]


class TestEdges:
    def test_tracer_and_transcript_together(self, caplog: pytest.LogCaptureFixture) -> None:
        import logging

        records: list[object] = []
        caplog.set_level(logging.DEBUG, logger="rawws.edges")
        server = ServerProtocol(state=State.OPEN, logger=logging.getLogger("rawws.edges"),
                                tracer=records.append)
        server.receive_data(masked(Opcode.TEXT, b"hi"))
        assert len(records) == 1 and "< TEXT [F] 'hi' (2 bytes)" in caplog.text
        server.fail(1011, "bye")
        assert "! failing with 1011 bye" in caplog.text

    def test_close_reason_and_sending_fragmented(self) -> None:
        server = open_server()
        assert server.close_reason == "" and server.close_code == 1006
        server.send_binary(b"a", fin=False)
        assert server.sending_fragmented
        with pytest.raises(InvalidState):
            server.send_prepared(b"\x82\x00")
        server.send_continuation(b"b", fin=True)
        assert not server.sending_fragmented
        server.receive_data(masked(Opcode.CLOSE, b"\x03\xe8why"))
        assert server.close_reason == "why"

    def test_eof_and_connection_lost_end_it_once(self) -> None:
        server = open_server()
        server.connection_lost()
        server.receive_eof()
        assert server.state is State.CLOSED and server.close_transport
        assert server.receive_buffer() is None

    def test_a_held_failure_replaced_by_the_applications_close(self) -> None:
        server = open_server()
        server.receive_data(masked(Opcode.TEXT, b"a") + masked(4, b""))
        assert server.close_pending is not None
        server.send_close(1000)
        assert server.close_pending is None and server.close_transport  # still failing
        server.release_close()  # nothing held
        assert server.data_to_send() == [b"\x88\x02\x03\xe8"]

    def test_a_held_echo_after_the_application_closed(self) -> None:
        server = open_server()
        server.receive_data(masked(Opcode.TEXT, b"a") + masked(Opcode.CLOSE, b"\x03\xe8"))
        server.events_received()
        server.send_close(1001)
        server.release_close()
        assert server.data_to_send() == [b"\x88\x02\x03\xe9"]

    def test_pongs_and_pings_sent(self) -> None:
        server = open_server()
        assert server.send_pong(b"hb") == 4 and server.send_ping(b"p") == 3
        assert server.data_to_send() == [b"\x8a\x02hb", b"\x89\x01p"]
        server.send_close()
        with pytest.raises(InvalidState):
            server.send_pong()

    def test_the_old_import_path(self) -> None:
        from rawws.sansio import protocol

        assert protocol.ServerProtocol is ServerProtocol  # type: ignore[attr-defined]
        assert protocol.ClientProtocol is ClientProtocol  # type: ignore[attr-defined]
        with pytest.raises(AttributeError):
            protocol.NoSuchThing  # type: ignore[attr-defined] # noqa: B018

    def test_a_corrupt_payload_read_into_its_buffer_fails_the_connection(self) -> None:
        server = open_server()
        server._use_extensions([PerMessageDeflate()])
        data = masked(Opcode.BINARY, b"\xff" * 100000, rsv=RSV1)
        server.receive_data(data[:60000])
        view = server.receive_buffer()
        assert view is not None
        view[:] = data[60000:]
        del view
        server.receive_into(len(data) - 60000)
        assert close_code_sent(server) == 1007
