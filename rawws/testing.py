"""Testing support: an event loop with a virtual clock, and an in-memory network.

Owns: :class:`VirtualEventLoop`, an asyncio event loop whose clock moves only when every task is
waiting (so a 20-second keepalive or a 10-second close timeout happens at once, at exactly the
instant it is due, on every run); :class:`MemoryNetwork`, the loop's network, where
``loop.create_server`` and ``loop.create_connection`` (hence ``rawws.serve``, ``rawws.connect``,
``asyncio.start_server`` and ``asyncio.open_connection``) connect in memory; and
:class:`MemoryTransport`, an ``asyncio.Transport`` with the contract of a TCP socket transport:
write buffer limits with ``pause_writing`` / ``resume_writing``, ``pause_reading`` /
``resume_reading``, a bounded "kernel" buffer per direction (a peer that stops reading fills it,
and then its sender's write buffer grows), ``write_eof`` (half-close), ``close`` (flush, then
FIN) and ``abort`` (drop the buffer, then FIN).

Does not own: anything of rawws' protocol. This module imports nothing from rawws; rawws' code
runs on it unchanged (inject, don't patch: the code under test reads time from ``loop.time()``
and schedules with ``loop.call_later``, which the virtual loop provides).

Theory of operation
-------------------

1. Time moves only when nothing can run. The loop is a ``SelectorEventLoop`` whose selector
   never blocks: when the loop would wait ``timeout`` seconds for I/O, the selector adds
   ``timeout`` to the virtual clock instead, so the earliest timer is due at once. Any ready
   callback (an in-memory delivery, a task step) runs before the clock moves.
2. ``await idle()`` waits until every task is waiting and nothing is ready, without moving the
   clock: "let everything that can happen now happen". Use it where a real-time test would poll.
3. A deadlock is an error, not a hang: when nothing is ready, no timer is scheduled and no
   executor job is running, nothing can ever happen; the loop raises :class:`Deadlock`.
4. The network moves bytes in callbacks (``call_soon``), one read of at most 256 KiB per
   callback, as a socket transport does; ``write()`` hands bytes to the "kernel" at once when
   there is room, exactly as ``socket.send`` does, so ``get_write_buffer_size()`` counts only
   what the kernel refused.
5. No real I/O: registering a real file descriptor (``sock_connect``, ``connect_read_pipe``...)
   raises ``RuntimeError``. TLS is not simulated (``ssl=`` is refused).

Usage::

    import rawws, rawws.testing

    async def main():
        async with rawws.serve(handler, "127.0.0.1", 8765, ping_interval=20) as server:
            async with rawws.connect("ws://127.0.0.1:8765/") as ws:
                await asyncio.sleep(3600)      # an hour of keepalive, instantly
                assert ws.latency == 0.0       # the network is instant

    rawws.testing.run(main())

``docs/testing.md`` has the guide.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import selectors
import socket
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "Deadlock",
    "MemoryNetwork",
    "MemoryServer",
    "MemorySocket",
    "MemoryTransport",
    "VirtualEventLoop",
    "idle",
    "run",
    "transport_pair",
]

T = TypeVar("T")

#: Bytes the "kernel" holds per direction of a connection (a socket's send buffer plus the
#: peer's receive buffer): what a sender can write to a peer that does not read before its own
#: write buffer starts to grow. A choice, not a measurement of Linux (whose loopback buffers are
#: autotuned); set ``VirtualEventLoop(buffer_size=...)`` or :meth:`MemoryTransport.set_buffer_size`.
DEFAULT_BUFFER_SIZE = 64 * 1024

#: The most bytes handed to a protocol in one callback (asyncio's socket read size).
_READ_SIZE = 256 * 1024
#: asyncio's default write buffer high-water mark.
_DEFAULT_HIGH = 64 * 1024

_LOOPBACK = {"localhost": "127.0.0.1", "::1": "::1"}


class Deadlock(RuntimeError):
    """Every task waits for something that nothing scheduled can bring."""


# --- the loop ----------------------------------------------------------------------------------


class _VirtualSelector(selectors.BaseSelector):
    """A selector that never waits: waiting ``timeout`` seconds moves the virtual clock.

    The loop's self-pipe (its one real file descriptor, which threads use to wake it) is
    registered on a real selector and polled without waiting; when an executor job is running,
    the loop waits for it for real (the job's result wakes it through the self-pipe).
    """

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.loop: VirtualEventLoop | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        if self.loop is not None and self.loop._self_pipe_registered:
            raise RuntimeError("the virtual-clock loop does no real I/O: connect through its "
                               "in-memory network (loop.create_connection / create_server)")
        key = self._real.register(fileobj, events, data)
        if self.loop is not None:
            self.loop._self_pipe_registered = True
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        assert loop is not None
        events = self._real.select(0)
        if events or timeout == 0:
            return events
        if loop._threads:
            # A job runs in a thread: wait for it for real (its end wakes the loop).
            return self._real.select(timeout if loop._threads_hold_time else None)
        if loop._idle_waiters:
            # Nothing is ready: that is what idle() waits for. Wake the waiters, keep the time.
            waiters, loop._idle_waiters = loop._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            return []
        if timeout is None:
            raise Deadlock(
                "every task is waiting, no timer is scheduled and no thread is running: "
                "nothing can happen any more")
        loop._now += timeout
        return []


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock is virtual and whose network is in memory.

    ``start`` is the clock's reading when the loop is made; ``buffer_size`` the default kernel
    buffer of every connection (:data:`DEFAULT_BUFFER_SIZE`); ``latency`` the default one-way
    delay of the network, in seconds (0: bytes arrive in the next loop iteration). Everything
    scheduled with ``call_later`` / ``call_at`` / ``asyncio.sleep`` / ``asyncio.timeout`` runs on
    virtual time.
    """

    def __init__(self, *, start: float = 0.0, buffer_size: int = DEFAULT_BUFFER_SIZE,
                 latency: float = 0.0) -> None:
        self._now = float(start)
        self._threads = 0
        self._threads_hold_time = False
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._self_pipe_registered = False
        selector = _VirtualSelector()
        selector.loop = self
        super().__init__(selector)
        # Exact enough for any test (the clock only ever jumps to a timer's due time).
        self._clock_resolution = 1e-6
        #: The in-memory network that create_server / create_connection use.
        self.network = MemoryNetwork(self, buffer_size=buffer_size, latency=latency)

    def time(self) -> float:
        """The virtual clock, in seconds."""
        return self._now

    async def idle(self) -> None:
        """Return when every task is waiting and no callback is ready (the clock unmoved)."""
        waiter = self.create_future()
        self._idle_waiters.append(waiter)
        await waiter

    # Threads: while one runs, the loop waits for it for real instead of moving the clock (its
    # result may be what the tasks are waiting for).

    def run_in_executor(self, executor: concurrent.futures.Executor | None,  # type: ignore[override]
                        func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self._threads += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _: object) -> None:
        self._threads -= 1

    async def shutdown_default_executor(self, *args: Any) -> None:
        self._threads += 1
        try:
            await super().shutdown_default_executor(*args)
        finally:
            self._threads -= 1

    # The network.

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | Iterable[str] | None = None,
        port: int | None = None,
        *,
        sock: Any = None,
        ssl: Any = None,
        start_serving: bool = True,
        **kwargs: Any,
    ) -> MemoryServer:
        """Listen on the in-memory network (``port`` 0 or None: a free port)."""
        if ssl is not None:
            raise NotImplementedError("the in-memory network does not simulate TLS")
        if sock is not None:
            if not isinstance(sock, MemorySocket):
                raise RuntimeError("the virtual-clock loop does no real I/O: pass host and port")
            host, port = sock.getsockname()
        hosts: list[str | None] = ([host] if isinstance(host, str) or host is None
                                   else list(host))
        return self.network.listen(protocol_factory, hosts, port or 0,
                                   start_serving=start_serving)

    async def create_connection(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        *,
        ssl: Any = None,
        sock: Any = None,
        **kwargs: Any,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """Connect on the in-memory network; ``ConnectionRefusedError`` when nobody listens."""
        if ssl is not None:
            raise NotImplementedError("the in-memory network does not simulate TLS")
        if sock is not None:
            raise RuntimeError("the virtual-clock loop does no real I/O: pass host and port")
        if host is None or port is None:
            raise ValueError("host and port are required")
        return await self.network.connect(protocol_factory, host, port)


def run(main: Coroutine[Any, Any, T], *, start: float = 0.0,
        buffer_size: int = DEFAULT_BUFFER_SIZE, latency: float = 0.0,
        debug: bool | None = None) -> T:
    """Run ``main`` on a fresh :class:`VirtualEventLoop`, like :func:`asyncio.run`."""
    with asyncio.Runner(debug=debug, loop_factory=lambda: VirtualEventLoop(
            start=start, buffer_size=buffer_size, latency=latency)) as runner:
        return runner.run(main)


async def idle() -> None:
    """Wait until every task of the running :class:`VirtualEventLoop` is waiting, without moving
    its clock: every delivery and every reaction that can happen at this instant has happened."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, VirtualEventLoop):
        raise RuntimeError("idle() needs the virtual-clock loop (rawws.testing.run)")
    await loop.idle()


# --- the network -------------------------------------------------------------------------------


class MemorySocket:
    """What ``server.sockets`` and ``get_extra_info("socket")`` give: an address, no descriptor."""

    family = socket.AF_INET
    type = socket.SOCK_STREAM

    def __init__(self, address: tuple[str, int], peer: tuple[str, int] | None = None) -> None:
        self._address = address
        self._peer = peer

    def getsockname(self) -> tuple[str, int]:
        return self._address

    def getpeername(self) -> tuple[str, int]:
        if self._peer is None:
            raise OSError("not connected")
        return self._peer

    def fileno(self) -> int:
        return -1

    def __repr__(self) -> str:
        return f"<MemorySocket {self._address} -> {self._peer}>"


class MemoryNetwork:
    """Listeners by port, and the connections between them. One per :class:`VirtualEventLoop`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *,
                 buffer_size: int = DEFAULT_BUFFER_SIZE, latency: float = 0.0) -> None:
        self.loop = loop
        #: Default kernel buffer (bytes per direction) of new connections.
        self.buffer_size = buffer_size
        #: Default one-way delay of new connections, in seconds.
        self.latency = latency
        self.servers: dict[int, MemoryServer] = {}
        self._ports = itertools.count(40000)
        self._ephemeral = itertools.count(50000)
        #: Every connection made, as (client transport, server transport).
        self.connections: list[tuple[MemoryTransport, MemoryTransport]] = []

    def _free_port(self) -> int:
        while True:
            port = next(self._ports)
            if port not in self.servers:
                return port

    def listen(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
               hosts: list[str | None], port: int, *, start_serving: bool = True) -> MemoryServer:
        if port and port in self.servers:
            raise OSError(98, f"address already in use: port {port}")
        port = port or self._free_port()
        names = [_LOOPBACK.get(h, h) if h else "0.0.0.0" for h in hosts]
        server = MemoryServer(self, protocol_factory, names, port)
        self.servers[port] = server
        if start_serving:
            server._serving = True
        return server

    async def connect(self, protocol_factory: Callable[[], asyncio.BaseProtocol], host: str,
                      port: int) -> tuple[MemoryTransport, asyncio.BaseProtocol]:
        host = _LOOPBACK.get(host, host)
        server = self.servers.get(port)
        if server is None or not server.is_serving() or not server.accepts(host):
            raise ConnectionRefusedError(111, f"Connect call failed ({host!r}, {port})")
        client_address = (host, next(self._ephemeral))
        server_address = (host, port)
        client_protocol = protocol_factory()
        server_protocol = server.protocol_factory()
        client, accepted = transport_pair(
            client_protocol, server_protocol, loop=self.loop, buffer_size=self.buffer_size,
            latency=self.latency,
            addresses=(client_address, server_address))
        self.connections.append((client, accepted))
        server.transports.append(accepted)
        await client._started
        return client, client_protocol


class MemoryServer(asyncio.AbstractServer):
    """A listener on the in-memory network (what ``loop.create_server`` returns)."""

    def __init__(self, network: MemoryNetwork,
                 protocol_factory: Callable[[], asyncio.BaseProtocol], hosts: list[str],
                 port: int) -> None:
        self.network = network
        self.protocol_factory = protocol_factory
        self.hosts = hosts
        self.port = port
        self.transports: list[MemoryTransport] = []
        self._serving = False
        self._closed = False
        self._serving_forever: asyncio.Future[None] | None = None

    def accepts(self, host: str) -> bool:
        return "0.0.0.0" in self.hosts or "::" in self.hosts or host in self.hosts

    @property
    def sockets(self) -> tuple[MemorySocket, ...]:
        if self._closed:
            return ()
        return tuple(MemorySocket((host, self.port)) for host in self.hosts)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self.network.loop

    def is_serving(self) -> bool:
        return self._serving and not self._closed

    async def start_serving(self) -> None:
        if self._closed:
            raise RuntimeError("the server is closed")
        self._serving = True

    def close(self) -> None:
        """Stop listening; connections already accepted stay open (as with asyncio)."""
        if self._closed:
            return
        self._closed = True
        self._serving = False
        if self.network.servers.get(self.port) is self:
            del self.network.servers[self.port]
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()

    async def wait_closed(self) -> None:
        return None

    async def serve_forever(self) -> None:
        if self._serving_forever is not None:
            raise RuntimeError("serve_forever() is already running")
        await self.start_serving()
        self._serving_forever = self.network.loop.create_future()
        try:
            await self._serving_forever
        finally:
            self.close()

    async def __aenter__(self) -> MemoryServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


def transport_pair(
    protocol_a: asyncio.BaseProtocol,
    protocol_b: asyncio.BaseProtocol,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    latency: float = 0.0,
    addresses: tuple[tuple[str, int], tuple[str, int]] = (("127.0.0.1", 50000),
                                                           ("127.0.0.1", 40000)),
) -> tuple[MemoryTransport, MemoryTransport]:
    """Connect two protocols with a pair of in-memory transports (any event loop, virtual or
    not). ``connection_made`` is called on both soon (``protocol_b`` first, as a server accepts
    before the client learns its connect succeeded). ``latency``: one-way delay in seconds."""
    loop = loop or asyncio.get_running_loop()
    a = MemoryTransport(loop, protocol_a, addresses[0], addresses[1], buffer_size, latency)
    b = MemoryTransport(loop, protocol_b, addresses[1], addresses[0], buffer_size, latency)
    a._peer, b._peer = b, a
    loop.call_soon(b._start)
    loop.call_soon(a._start)
    return a, b


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory TCP connection.

    Bytes written go to the peer's kernel buffer (``buffer_size`` bytes) at once while it has
    room; what does not fit waits in this transport's write buffer, which drives
    ``pause_writing`` / ``resume_writing`` at the high- and low-water marks. The peer's
    protocol receives the kernel buffer in callbacks, ``latency`` seconds after the bytes were
    handed over, unless it paused reading.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.BaseProtocol,
                 address: tuple[str, int], peer_address: tuple[str, int],
                 buffer_size: int = DEFAULT_BUFFER_SIZE, latency: float = 0.0) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._peer: MemoryTransport | None = None
        self._extra = {"peername": peer_address, "sockname": address,
                       "socket": MemorySocket(address, peer_address)}
        #: Kernel buffer of this end: what the peer may send before we read (bytes).
        self.buffer_size = buffer_size
        #: One-way delay of the bytes this end sends (seconds of the loop's clock).
        self.latency = latency
        self._out = bytearray()  # written, not yet taken by the kernel (our write buffer)
        # In the kernel for us, not yet delivered to our protocol: (due time, bytes), in order.
        self._in: collections.deque[tuple[float, bytes]] = collections.deque()
        self._in_size = 0
        self._started: asyncio.Future[None] = loop.create_future()
        self._delivery: asyncio.Handle | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._high = _DEFAULT_HIGH
        self._low = _DEFAULT_HIGH // 4
        self._eof_wanted = False  # write_eof() or close(): send FIN once the buffer is out
        self._fin_sent = False
        self._fin_at: float | None = None  # when the peer's FIN (behind the bytes in _in) is due
        self._eof_delivered = False
        self._closing = False  # close() or abort(): no more reading
        self._lost = False  # connection_lost is called (or about to be)
        #: Every byte this transport was asked to write, in order (for tests that check bytes).
        self.written = bytearray()

    def __repr__(self) -> str:
        return f"<MemoryTransport {self._extra['sockname']} -> {self._extra['peername']}>"

    # --- asyncio.BaseTransport -------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; send what is buffered, then FIN; then ``connection_lost(None)``."""
        if self._closing:
            return
        self._closing = True
        self._drop_input()
        self._eof_wanted = True
        self._push()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    # --- reading ---------------------------------------------------------------------------------

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._schedule_delivery()

    # --- writing ---------------------------------------------------------------------------------

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = _DEFAULT_HIGH if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._maybe_pause()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        return len(self._out)

    def set_buffer_size(self, size: int) -> None:
        """Change this end's kernel buffer (what the peer can send before we read)."""
        self.buffer_size = size
        if self._peer is not None:
            self._peer._push()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof_wanted and not self._closing:
            raise RuntimeError("cannot call write() after write_eof()")
        if self._closing or self._lost or not data:
            return
        self.written += data
        self._out += data
        self._push()
        self._maybe_pause()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        """Half-close: FIN after the buffered bytes; reading goes on."""
        if self._eof_wanted:
            return
        self._eof_wanted = True
        self._push()

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        """Drop the write buffer and close now (the peer sees the end of the stream after the
        bytes already in its kernel buffer)."""
        if self._lost:
            return
        self._out.clear()
        self._closing = True
        self._drop_input()
        self._eof_wanted = True
        self._push()

    # --- the wire --------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._lost:
            return
        self._protocol.connection_made(self)
        self._started.set_result(None)
        self._schedule_delivery()

    def _drop_input(self) -> None:
        self._in.clear()
        self._in_size = 0
        if self._delivery is not None:
            self._delivery.cancel()
            self._delivery = None

    def _due(self) -> float:
        """When bytes handed to the peer now reach it (never before bytes handed earlier)."""
        peer = self._peer
        assert peer is not None
        due = self._loop.time() + self.latency
        if peer._in and peer._in[-1][0] > due:
            due = peer._in[-1][0]
        return due

    def _push(self) -> None:
        """Move our write buffer into the peer's kernel buffer, as far as it has room."""
        peer = self._peer
        assert peer is not None
        if self._out:
            if peer._closing or peer._lost:
                self._out.clear()  # nobody reads there any more (a kernel would reset)
            else:
                room = peer.buffer_size - peer._in_size
                if room > 0:
                    chunk = bytes(self._out[:room])
                    del self._out[:room]
                    peer._in.append((self._due(), chunk))
                    peer._in_size += len(chunk)
                    peer._schedule_delivery()
        if not self._out and self._eof_wanted and not self._fin_sent:
            self._fin_sent = True
            peer._fin_at = self._due()
            peer._schedule_delivery()
        if self._closing and not self._out and not self._lost:
            self._lost = True
            self._loop.call_soon(self._connection_lost)
        elif self._writing_paused and len(self._out) <= self._low:
            self._loop.call_soon(self._maybe_resume)

    def _schedule_delivery(self) -> None:
        """Make sure a callback will hand the next due bytes (or the FIN) to our protocol."""
        if (self._delivery is not None or not self._started.done() or self._lost
                or self._closing or self._reading_paused):
            return
        if self._in:
            due = self._in[0][0]
        elif self._fin_at is not None and not self._eof_delivered:
            due = self._fin_at
        else:
            return
        if due <= self._loop.time():
            self._delivery = self._loop.call_soon(self._deliver)
        else:
            self._delivery = self._loop.call_at(due, self._deliver)

    def _deliver(self) -> None:
        """Hand one read to our protocol (or the end of the stream)."""
        self._delivery = None
        if self._lost or self._closing or self._reading_paused:
            return
        now = self._loop.time() + 1e-9
        if self._in:
            if self._in[0][0] > now:
                self._schedule_delivery()
                return
            parts: list[bytes] = []
            size = 0
            while self._in and self._in[0][0] <= now and size < _READ_SIZE:
                due, chunk = self._in.popleft()
                take = _READ_SIZE - size
                if len(chunk) > take:
                    self._in.appendleft((due, chunk[take:]))
                    chunk = chunk[:take]
                parts.append(chunk)
                size += len(chunk)
            self._in_size -= size
            self._feed(b"".join(parts))
            assert self._peer is not None
            self._peer._push()  # room was made
            self._schedule_delivery()
            return
        if self._fin_at is not None and not self._eof_delivered:
            if self._fin_at > now:
                self._schedule_delivery()
                return
            self._eof_delivered = True
            keep_open = self._protocol.eof_received()  # type: ignore[attr-defined]
            if not keep_open:
                self.close()

    def _feed(self, data: bytes) -> None:
        protocol = self._protocol
        if isinstance(protocol, asyncio.BufferedProtocol):
            view = memoryview(data)
            while view:
                buffer = memoryview(protocol.get_buffer(len(view))).cast("B")
                n = min(len(buffer), len(view))
                if not n:
                    raise RuntimeError("get_buffer() returned an empty buffer")
                buffer[:n] = view[:n]
                protocol.buffer_updated(n)
                view = view[n:]
        else:
            protocol.data_received(data)  # type: ignore[attr-defined]

    def _maybe_pause(self) -> None:
        if not self._writing_paused and len(self._out) > self._high and not self._lost:
            self._writing_paused = True
            self._protocol.pause_writing()

    def _maybe_resume(self) -> None:
        if self._writing_paused and len(self._out) <= self._low and not self._lost:
            self._writing_paused = False
            self._protocol.resume_writing()

    def _connection_lost(self) -> None:
        self._protocol.connection_lost(None)
