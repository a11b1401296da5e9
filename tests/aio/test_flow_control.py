"""Back-pressure both ways, on the virtual clock and in-memory network of rawws.testing.

* Receiving: above ``max_queue`` undelivered messages the connection stops reading the socket;
  the kernel buffers fill and the sender's writes end up waiting.
* Sending: above ``write_limit`` buffered bytes, ``send()`` waits until the peer reads.

Peers that do not read get a small kernel buffer (4 KiB a direction) so it fills quickly; bounds
on message counts make a missing pause fail the test instead of hanging it. ``idle()`` ("nothing
more can happen now") turns "still waiting" into an exact statement: where a real-time test
could only sleep a little and look, these assert that nothing moves until the reader reads.
"""

from __future__ import annotations

import asyncio
import os

import pytest

import rawws
from rawws import ConnectionClosed, ConnectionClosedError, ServerConnection
from rawws.sansio.codes import Opcode
from rawws.sansio.frames import serialize_frame
from rawws.testing import idle

from .peers import HOST, RawClient, RawServer, RawServerSide, upgrade_request

pytestmark = pytest.mark.virtual_clock

CHUNK = 2**16


def small_buffers() -> None:
    """Connections made from now on have 4 KiB kernel buffers each way."""
    asyncio.get_running_loop().network.buffer_size = 4096  # type: ignore[attr-defined]


async def test_max_queue_pauses_reading_and_the_sender_ends_up_waiting() -> None:
    go = asyncio.Event()
    conns: list[ServerConnection] = []
    received: list[bytes] = []

    async def handler(ws: ServerConnection) -> None:
        conns.append(ws)
        await go.wait()
        async for message in ws:
            assert isinstance(message, bytes)
            received.append(message)

    count = 200  # 12.5 MiB if nothing ever paused: far more than the small buffers hold
    small_buffers()
    async with rawws.serve(handler, HOST, 0, max_queue=4, compression=None) as server:
        ws = await rawws.connect(f"ws://{HOST}:{server.port}/", compression=None)
        payloads = [i.to_bytes(4, "big") * (CHUNK // 4) for i in range(count)]
        sent = 0

        async def sender() -> None:
            nonlocal sent
            for payload in payloads:
                await ws.send(payload)
                sent += 1

        sending = asyncio.ensure_future(sender())
        await idle()
        server_ws = conns[0]
        assert server_ws._reading_paused
        assert server_ws.transport is not None
        assert not server_ws.transport.is_reading()
        assert len(server_ws._messages) == 4
        # The server stopped reading: the client's buffers filled up and send() waits.
        assert not sending.done()
        assert ws.writing_paused
        stalled_at = sent
        await asyncio.sleep(10)  # (not 40: keepalive would close it, pongs being unread too)
        assert sent == stalled_at  # still waiting: nothing drains while the server is paused
        assert stalled_at < count
        # The application catches up: reading resumes and everything arrives, in order.
        go.set()
        await sending
        await idle()
        assert received == payloads
        assert not server_ws._reading_paused
        assert server_ws.transport is not None and server_ws.transport.is_reading()
        await ws.close()


async def test_recv_resumes_reading_only_when_the_queue_drains() -> None:
    conns: list[ServerConnection] = []
    release = asyncio.Event()
    log: list[tuple[int, bool]] = []

    async def handler(ws: ServerConnection) -> None:
        conns.append(ws)
        await release.wait()
        for _ in range(16):
            await ws.recv()
            log.append((len(ws._messages), ws._reading_paused))
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0, max_queue=8, compression=None) as server:
        raw = await RawClient.connect(server.port)
        for i in range(16):
            raw.send_frame(Opcode.TEXT, b"%d" % i)
        await idle()
        assert conns[0]._reading_paused
        release.set()
        await idle()
        assert len(log) == 16
        # Paused while more than max_queue // 4 = 2 messages wait; resumed at 2.
        assert log[0][0] >= 7 and log[0][1], log
        resumed = next(i for i, (_, paused) in enumerate(log) if not paused)
        assert log[resumed][0] == 2, log
        assert all(queued > 2 and paused for queued, paused in log[:resumed]), log
        assert not any(paused for _, paused in log[resumed:]), log
        raw.send_close()
        await raw.read_until_close()
        await raw.aclose()


async def test_max_queue_holds_after_an_async_handshake_hook() -> None:
    """Messages sent right behind the request can fill the queue while an async hook runs;
    the hook ending must not resume reading past max_queue."""
    conns: list[ServerConnection] = []
    release = asyncio.Event()
    consume = asyncio.Event()
    received: list[object] = []

    async def hook(ws: ServerConnection, request: rawws.Request) -> None:
        conns.append(ws)
        await release.wait()

    async def handler(ws: ServerConnection) -> None:
        await consume.wait()
        async for message in ws:
            received.append(message)

    async with rawws.serve(handler, HOST, 0, max_queue=2, process_request=hook,
                           compression=None) as server:
        raw = await RawClient.open(server.port)
        request, _ = upgrade_request()
        frames = b"".join(serialize_frame(Opcode.TEXT, b"early %d" % i,
                                          masking_key=os.urandom(4)) for i in range(4))
        raw.write(request + frames)  # one segment: the frames arrive with the request
        await idle()  # the hook waits
        assert conns
        release.set()
        status, _, _ = await raw.read_response(body=False)
        assert status == 101
        ws = conns[0]
        await idle()  # the hook task has finished
        assert len(ws._messages) == 4  # all came in the request's read, over max_queue
        assert ws._reading_paused
        assert ws.transport is not None
        assert not ws.transport.is_reading()
        consume.set()
        raw.send_close()
        assert (await raw.read_until_close())[0] == (1000, "")
        await raw.aclose()
    assert received == [f"early {i}" for i in range(4)]


async def test_write_limit_makes_send_wait_until_the_peer_reads() -> None:
    conns: list[ServerConnection] = []
    progress: list[int] = []
    count = 300  # ~19 MiB if send() never waited

    async def handler(ws: ServerConnection) -> None:
        conns.append(ws)
        for i in range(count):
            await ws.send(bytes([i % 256]) * CHUNK)
            progress.append(i)
        await ws.close()

    async with rawws.serve(handler, HOST, 0, write_limit=CHUNK, compression=None) as server:
        raw = await RawClient.connect(server.port, rcvbuf=4096)  # and never reads, for now
        await idle()
        ws = conns[0]
        assert ws.writing_paused
        assert ws.write_buffer_size > CHUNK // 4
        stalled_at = len(progress)
        await asyncio.sleep(10)
        assert len(progress) == stalled_at < count  # send() is waiting for the drain
        # Now read everything: send() resumes and every message arrives intact.
        for i in range(count):
            fin, opcode, payload = await raw.read_frame()
            assert (fin, opcode, len(payload)) == (True, Opcode.BINARY, CHUNK)
            assert payload == bytes([i % 256]) * CHUNK
        assert (await raw.read_until_close())[0] == (1000, "")
        raw.send_close()
        await raw.read_eof()
        await raw.aclose()
    assert len(progress) == count


async def test_client_send_waits_for_a_server_that_does_not_read() -> None:
    reading = asyncio.Event()
    total: list[int] = []

    async def behave(side: RawServerSide) -> None:
        await reading.wait()
        n = 0
        while n < 40 * CHUNK:
            frame = await side.read_frame()
            n += len(frame[2])
        total.append(n)

    small_buffers()
    async with RawServer(behave) as peer:
        ws = await rawws.connect(f"ws://{HOST}:{peer.port}/", write_limit=CHUNK,
                                 compression=None)
        done = 0

        async def sender() -> None:
            nonlocal done
            for _ in range(40):
                await ws.send(b"z" * CHUNK)
                done += 1

        sending = asyncio.ensure_future(sender())
        await idle()
        assert ws.writing_paused
        assert not sending.done()
        assert done < 40
        reading.set()
        await sending
        await idle()
        assert total == [40 * CHUNK]
        await ws.close()


async def test_send_waiting_for_drain_raises_when_the_connection_is_lost() -> None:
    conns: list[ServerConnection] = []
    errors: list[BaseException] = []

    async def handler(ws: ServerConnection) -> None:
        conns.append(ws)
        try:
            for _ in range(1000):
                await ws.send(b"q" * CHUNK)
        except ConnectionClosed as exc:
            errors.append(exc)

    async with rawws.serve(handler, HOST, 0, write_limit=CHUNK, compression=None) as server:
        raw = await RawClient.connect(server.port, rcvbuf=4096)
        await idle()
        assert conns[0].writing_paused
        assert errors == []
        raw.abort()
        await idle()
    assert isinstance(errors[0], ConnectionClosedError)
    assert errors[0].code == 1006


@pytest.mark.parametrize("fragments", [True, False])
async def test_fragmented_send_also_waits(fragments: bool) -> None:
    """An iterable message yields to the drain between fragments."""
    conns: list[ServerConnection] = []
    finished = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        conns.append(ws)
        parts = (b"f" * CHUNK for _ in range(200))
        await ws.send(parts if fragments else b"".join(parts))
        finished.set()
        await ws.wait_closed()

    async with rawws.serve(handler, HOST, 0, write_limit=CHUNK, compression=None,
                           max_size=None) as server:
        raw = await RawClient.connect(server.port, rcvbuf=4096)
        await idle()
        assert conns[0].writing_paused
        if fragments:
            # Between fragments send() waited: most of the message was never buffered.
            assert not finished.is_set()
            assert conns[0].write_buffer_size < 100 * CHUNK
        n = 0
        while n < 200 * CHUNK:
            fin, _, payload = await raw.read_frame()
            n += len(payload)
        assert n == 200 * CHUNK and fin
        await finished.wait()
        raw.abort()
