"""rawws.sync over real sockets, and against websockets.sync in every pairing.

Each pairing test is written once against websockets.sync's API and runs four times: the
server from websockets.sync or rawws.sync, the client from either. Running websockets with
itself is the reference: the expected behaviour is websockets', not a guess.
"""

from __future__ import annotations

import contextlib
import http
import socket
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websockets.sync.client
import websockets.sync.server

import rawws
import rawws.sync.client
import rawws.sync.server
from rawws.sansio.handshake import accept_key

HOST = "127.0.0.1"


class Lib(types.SimpleNamespace):
    name: str
    serve: Any
    connect: Any
    basic_auth: Any
    errors: Any
    reconnect: Any


LIBS = {
    "websockets": Lib(name="websockets", serve=websockets.sync.server.serve,
                      connect=websockets.sync.client.connect,
                      basic_auth=websockets.sync.server.basic_auth, errors=websockets,
                      reconnect=websockets.sync.client.reconnect),
    "rawws": Lib(name="rawws", serve=rawws.sync.server.serve, connect=rawws.sync.client.connect,
                 basic_auth=rawws.sync.server.basic_auth, errors=rawws,
                 reconnect=rawws.sync.client.reconnect),
}
PAIRS = [(s, c) for s in sorted(LIBS) for c in sorted(LIBS)]


@pytest.fixture(params=PAIRS, ids=[f"{s}-server-{c}-client" for s, c in PAIRS])
def pair(request: pytest.FixtureRequest) -> tuple[Lib, Lib]:
    server, client = request.param
    return LIBS[server], LIBS[client]


@contextlib.contextmanager
def running(lib: Lib, handler: Callable[[Any], None], **kwargs: Any) -> Iterator[int]:
    """A server in a thread; its port. Shut down (and joined) on exit."""
    server = lib.serve(handler, HOST, 0, **kwargs)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server.socket.getsockname()[1]
    finally:
        server.shutdown()
        thread.join(30)
        assert not thread.is_alive()


def connect(lib: Lib, port: int, path: str = "/", **kwargs: Any) -> Any:
    if lib.name == "websockets":
        kwargs.setdefault("proxy", None)
    return lib.connect(f"ws://{HOST}:{port}{path}", **kwargs)


def echo(ws: Any) -> None:
    for message in ws:
        ws.send(message)


# --- every pairing -----------------------------------------------------------------------------


def test_messages_and_fragments(pair: tuple[Lib, Lib]) -> None:
    server_lib, client_lib = pair

    def handler(ws: Any) -> None:
        for message in ws:
            if message == "fragments please":
                ws.send(["frag", "men", "ted"])
                ws.send([b"\x00", b"\x01"])
            else:
                ws.send(message)

    with running(server_lib, handler) as port, connect(client_lib, port) as ws:
        for message in ("hello", b"\x00\xff", "", "é" * 1000, b"x" * 70000):
            ws.send(message)
            assert ws.recv(timeout=10) == message
        ws.send(["he", "llo"])
        assert ws.recv(timeout=10) == "hello"
        ws.send("fragments please")
        assert ws.recv(timeout=10) == "fragmented"
        assert ws.recv(timeout=10) == b"\x00\x01"
        ws.send(b'{"a": 1}', text=True)
        assert ws.recv(timeout=10) == '{"a": 1}'


def test_send_refuses_what_is_not_a_message(pair: tuple[Lib, Lib]) -> None:
    server_lib, client_lib = pair
    with running(server_lib, echo) as port, connect(client_lib, port) as ws:
        for bad in ({"type": "chat"}, 42, None):
            with pytest.raises(TypeError):
                ws.send(bad)
        ws.send("still open")
        assert ws.recv(timeout=10) == "still open"


def test_recv_timeout_loses_nothing(pair: tuple[Lib, Lib]) -> None:
    server_lib, client_lib = pair
    go = threading.Event()

    def handler(ws: Any) -> None:
        go.wait(10)
        ws.send("late")
        ws.recv()

    with running(server_lib, handler) as port, connect(client_lib, port) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0)
        go.set()
        assert ws.recv(timeout=10) == "late"


def test_ping_returns_an_event(pair: tuple[Lib, Lib]) -> None:
    server_lib, client_lib = pair
    with running(server_lib, echo) as port, connect(client_lib, port) as ws:
        event = ws.ping(b"are you there")
        assert isinstance(event, threading.Event)
        assert event.wait(10)
        assert ws.latency > 0.0


@pytest.mark.parametrize("code, reason", [(1000, ""), (1001, "bye"), (4000, "app"),
                                          (1011, "oops")])
def test_close_codes_and_reasons(pair: tuple[Lib, Lib], code: int, reason: str) -> None:
    server_lib, client_lib = pair
    seen: list[Any] = []

    def handler(ws: Any) -> None:
        if ws.recv() == "close me":
            ws.close(code, reason)
        else:
            ws.wait_closed()
        seen.append((ws.close_code, ws.close_reason))

    with running(server_lib, handler) as port:
        with connect(client_lib, port) as ws:
            ws.send("close me")
            with pytest.raises(client_lib.errors.ConnectionClosed) as info:
                ws.recv(timeout=10)
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (code, reason)
            assert isinstance(info.value, client_lib.errors.ConnectionClosedOK) is (
                code in (1000, 1001))
        with connect(client_lib, port) as ws:
            ws.send("wait")
            ws.close(code, reason)
            assert (ws.close_code, ws.close_reason) == (code, reason)
    assert seen == [(code, reason), (code, reason)]


def test_subprotocols(pair: tuple[Lib, Lib]) -> None:
    server_lib, client_lib = pair

    def handler(ws: Any) -> None:
        ws.send(ws.subprotocol)

    with running(server_lib, handler, subprotocols=["v2", "v1"]) as port:
        with connect(client_lib, port, subprotocols=["v1", "v2"]) as ws:
            assert ws.subprotocol == "v2"
            assert ws.recv(timeout=10) == "v2"
        with pytest.raises(client_lib.errors.InvalidStatus) as info:
            connect(client_lib, port, subprotocols=["v3"])
        assert info.value.response.status_code == 400


def test_rejections_and_basic_auth(pair: tuple[Lib, Lib]) -> None:
    server_lib, client_lib = pair

    def handler(ws: Any) -> None:
        ws.send(f"hello {ws.username}")

    auth = server_lib.basic_auth(realm="r", credentials=[("alice", "pw"), ("bob", "pw2")])

    def process_request(connection: Any, request: Any) -> Any:
        if request.path.startswith("/closed"):
            return connection.respond(http.HTTPStatus.FORBIDDEN, "closed\n")
        return auth(connection, request)

    with running(server_lib, handler, process_request=process_request) as port:
        with pytest.raises(client_lib.errors.InvalidStatus) as info:
            connect(client_lib, port, "/closed")
        assert (info.value.response.status_code, info.value.response.body) == (403,
                                                                                 b"closed\n")
        with pytest.raises(client_lib.errors.InvalidStatus) as info:
            connect(client_lib, port)
        assert info.value.response.status_code == 401
        with client_lib.connect(f"ws://bob:pw2@{HOST}:{port}/",
                                **({"proxy": None} if client_lib.name == "websockets"
                                   else {})) as ws:
            assert ws.recv(timeout=10) == "hello bob"


def test_handler_exception_closes_1011(pair: tuple[Lib, Lib]) -> None:
    server_lib, client_lib = pair

    def handler(ws: Any) -> None:
        raise RuntimeError("bug")

    with running(server_lib, handler) as port, connect(client_lib, port) as ws:
        with pytest.raises(client_lib.errors.ConnectionClosedError) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd.code == 1011


def test_shutdown_closes_1001(pair: tuple[Lib, Lib]) -> None:
    server_lib, client_lib = pair
    server = server_lib.serve(echo, HOST, 0)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    with connect(client_lib, server.socket.getsockname()[1]) as ws:
        ws.send("x")
        assert ws.recv(timeout=10) == "x"
        server.shutdown()
        thread.join(30)
        with pytest.raises(client_lib.errors.ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd.code == 1001


def test_message_over_max_size_is_1009(pair: tuple[Lib, Lib]) -> None:
    server_lib, client_lib = pair
    with (running(server_lib, echo, max_size=1000) as port, connect(client_lib, port) as ws):
        ws.send("x" * 1000)
        assert ws.recv(timeout=10) == "x" * 1000
        ws.send("x" * 1001)
        with pytest.raises(client_lib.errors.ConnectionClosedError) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd.code == 1009


def test_reconnect_retries_transient_errors_and_raises_fatal_ones(pair: tuple[Lib, Lib]) -> None:
    server_lib, client_lib = pair
    attempts: list[int] = []

    def process_request(connection: Any, request: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "busy\n")
        if len(attempts) == 4:
            return connection.respond(http.HTTPStatus.FORBIDDEN, "enough\n")
        return None

    def handler(ws: Any) -> None:
        ws.send("hi")
        ws.wait_closed()

    def no_delay() -> Iterator[float]:
        while True:
            yield 0.0

    kwargs: dict[str, Any] = {"proxy": None} if client_lib.name == "websockets" else {}
    received = []
    with (running(server_lib, handler, process_request=process_request) as port,
          pytest.raises(client_lib.errors.InvalidStatus) as info):
        for ws in client_lib.reconnect(f"ws://{HOST}:{port}/", reconnect_delays=no_delay,
                                       **kwargs):
            received.append(ws.recv(timeout=10))
    assert info.value.response.status_code == 403
    assert received == ["hi", "hi"] and len(attempts) == 4


# --- rawws.sync against a misbehaving raw peer -------------------------------------------------


def raw_client(port: int) -> socket.socket:
    """A TCP client that completes the handshake, then does nothing unless told."""
    sock = socket.create_connection((HOST, port), timeout=10)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    sock.sendall(f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert accept_key(key).encode() in head
    return sock


def test_keepalive_closes_1011_when_pongs_never_come() -> None:
    closed: list[Any] = []

    def handler(ws: Any) -> None:
        try:
            ws.recv()
        except rawws.ConnectionClosed as exc:
            closed.append(exc)

    with running(LIBS["rawws"], handler, ping_interval=0.05, ping_timeout=0.05,
                 close_timeout=0.2) as port:
        sock = raw_client(port)  # never answers the pings
        try:
            with running_until(lambda: bool(closed)):
                pass
        finally:
            sock.close()
    assert closed[0].sent.code == 1011
    assert closed[0].sent.reason == "keepalive ping timeout"


@contextlib.contextmanager
def running_until(condition: Callable[[], bool], bound: float = 20.0) -> Iterator[None]:
    """Wait (a hang guard, not a timing) until ``condition()`` holds."""
    done = threading.Event()
    deadline = threading.Event()

    def poll() -> None:
        while not condition() and not deadline.wait(0.01):
            pass
        done.set()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    yield
    assert done.wait(bound), "condition never held"
    deadline.set()


def test_close_timeout_bounds_a_silent_peer() -> None:
    """The peer never answers our close: after close_timeout the socket is dropped."""
    with socket.create_server((HOST, 0)) as listener:
        port = listener.getsockname()[1]
        accepted: list[socket.socket] = []

        def accept() -> None:
            sock, _ = listener.accept()
            accepted.append(sock)
            request = b""
            while b"\r\n\r\n" not in request:
                request += sock.recv(4096)
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key"))
            sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                         + accept_key(key.decode()).encode() + b"\r\n\r\n")

        thread = threading.Thread(target=accept)
        thread.start()
        ws = rawws.sync.client.connect(f"ws://{HOST}:{port}/", close_timeout=0.1,
                                       ping_interval=None)
        thread.join(10)
        ws.close()  # returns: bounded by close_timeout, not by the peer
        assert ws.state is rawws.State.CLOSED
        assert ws.close_code == 1006
        accepted[0].close()


def test_max_queue_stops_reading() -> None:
    """With max_queue=2 the reader stops taking messages from the socket once two wait (at
    most one read more: 64 KiB, about 65 of these messages, as the asyncio side): the
    server's 20 MB cannot all be buffered (kernel buffers hold far less), so its handler is
    still sending when the queue is full; everything arrives in order once recv() catches up."""
    count = 20_000
    sent = threading.Event()

    def handler(ws: Any) -> None:
        for i in range(count):
            ws.send(f"{i:06d}" + "x" * 1000)
        sent.set()
        ws.recv()

    with (running(LIBS["rawws"], handler) as port,
          rawws.sync.client.connect(f"ws://{HOST}:{port}/", max_queue=2,
                                    compression=None) as ws):
        with running_until(lambda: len(ws._messages) >= 2):
            pass
        assert not sent.is_set()  # blocked behind what the client does not read
        assert len(ws._messages) <= 2 + 65536 // 1007 + 1
        received = [ws.recv(timeout=10) for _ in range(count)]
        assert [m[:6] for m in received] == [f"{i:06d}" for i in range(count)]
        assert sent.wait(10)


def test_application_attributes_and_addresses() -> None:
    def process_request(connection: Any, request: Any) -> None:
        connection.user = request.headers.get("X-User")

    def handler(ws: Any) -> None:
        ws.send(f"{ws.user} from {ws.remote_address[0]} {ws.request.path}")

    with (running(LIBS["rawws"], handler, process_request=process_request) as port,
          rawws.sync.client.connect(f"ws://{HOST}:{port}/p?q=1",
                                    additional_headers={"X-User": "carol"}) as ws):
        assert ws.recv(timeout=10) == "carol from 127.0.0.1 /p?q=1"
        assert ws.local_address[0] == HOST and ws.remote_address == (HOST, port)


def test_open_timeout_and_refused() -> None:
    with socket.create_server((HOST, 0)) as silent:
        port = silent.getsockname()[1]
        with pytest.raises(TimeoutError):
            rawws.sync.client.connect(f"ws://{HOST}:{port}/", open_timeout=0.2)
    # Closed now: nothing listens on the port.
    with pytest.raises(ConnectionRefusedError):
        rawws.sync.client.connect(f"ws://{HOST}:{port}/")


def test_broadcast_reaches_every_open_connection(pair: tuple[Lib, Lib]) -> None:
    server_lib, client_lib = pair
    broadcast = (websockets.sync.server.broadcast if server_lib.name == "websockets"
                 else rawws.sync.server.broadcast)
    members: list[Any] = []
    joined = threading.Semaphore(0)

    def handler(ws: Any) -> None:
        members.append(ws)
        joined.release()
        for message in ws:
            broadcast(members, message)

    with (running(server_lib, handler) as port, connect(client_lib, port) as a,
          connect(client_lib, port) as b):
        assert joined.acquire(timeout=10) and joined.acquire(timeout=10)
        a.send("to everyone")
        assert a.recv(timeout=10) == b.recv(timeout=10) == "to everyone"
        b.send(b"\x01\x02")
        assert a.recv(timeout=10) == b.recv(timeout=10) == b"\x01\x02"


def test_keepalive_drops_a_peer_that_stops_reading() -> None:
    """The handler blocks in send() because the peer reads nothing: the keepalive ping cannot
    even be written, and after ping_timeout the connection is dropped, which ends the
    handler's send() with ConnectionClosed (a thread stuck for ever otherwise)."""
    outcome: list[BaseException] = []

    def handler(ws: Any) -> None:
        try:
            while True:
                ws.send(b"x" * 65536)
        except rawws.ConnectionClosed as exc:
            outcome.append(exc)

    with running(LIBS["rawws"], handler, ping_interval=0.05, ping_timeout=0.1,
                 close_timeout=0.1, compression=None) as port:
        sock = raw_client(port)  # reads nothing after the handshake
        try:
            with running_until(lambda: bool(outcome)):
                pass
        finally:
            sock.close()
    assert isinstance(outcome[0], rawws.ConnectionClosedError)
    assert outcome[0].rcvd is None  # dropped: no closing handshake was possible
