"""ChatClient on a durable server: offline items acknowledged once the application is done
with them (or by hand), never yielded twice; sends retried with their idempotency key across
a lost connection and a server killed with SIGKILL; a room followed across a restart without
a loss, a duplicate or a gap."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from rawws.chat.client import ChatClient

from ..processes import WAIT, ServerProcess, serve
from .e2e import eventually, http_json, running

SERVER = ("--rate", "1e9", "--burst", "1e9", "--http-rate", "0")


async def notify(server: Any, user: str, message: str) -> str:
    status, body = await http_json(server, "POST", f"/api/notify/{user}", {"message": message})
    assert status == 200 and body["status"] == "queued", body
    message_id: str = body["message_id"]
    return message_id


async def offline_items(client: ChatClient, count: int) -> list[dict[str, Any]]:
    items = []
    async with asyncio.timeout(WAIT):
        while len(items) < count:
            event = await client.next_event()
            if event.get("offline") is True:
                items.append(event)
    return items


async def test_offline_items_are_acknowledged_once_the_application_is_done(
        tmp_path: Path) -> None:
    async with running(store=f"sqlite:{tmp_path / 'chat.db'}") as server:
        ids = [await notify(server, "zoe", f"n{i}") for i in range(3)]
        async with ChatClient(server.url, user_id="zoe") as zoe:
            welcome = await zoe.next_event()
            assert welcome["offline_items"] == 3
            first = await zoe.next_event()
            assert first["message_id"] == ids[0]
            # The application has not asked for the next event: n0 is not acknowledged.
            assert server.store.inbox_count() == 3
            await offline_items(zoe, 2)  # asking for n1, then n2: n0, then n1 are done
            await eventually(lambda: server.store.inbox_count() == 1)
            pending = server.store.inbox_pending("zoe", time.time())
            assert [i.message_id for i in pending] == [ids[2]]
        # n2 was the last one yielded when the client closed: the application may not have
        # finished with it, so it comes again, to the next client.
        async with ChatClient(server.url, user_id="zoe") as again:
            assert (await again.next_event())["offline_items"] == 1
            assert (await again.next_event())["message_id"] == ids[2]
            await again.ping()
            await again.next_event()  # (the pong) n2 is done
            await eventually(lambda: server.store.inbox_count() == 0)


async def test_manual_acknowledgement(tmp_path: Path) -> None:
    async with running(store=f"sqlite:{tmp_path / 'chat.db'}") as server:
        ids = [await notify(server, "zoe", f"n{i}") for i in range(2)]
        async with ChatClient(server.url, user_id="zoe", auto_ack=False) as zoe:
            items = await offline_items(zoe, 2)
            await zoe.ping()
            assert server.store.inbox_count() == 2  # nothing acknowledged by itself
            assert await zoe.ack(items[0]) == 1
            assert await zoe.ack(ids[1], ids[0]) == 1
            assert server.store.inbox_count() == 0


async def test_a_redelivery_after_a_lost_connection_is_not_yielded_twice(
        tmp_path: Path) -> None:
    async with running(store=f"sqlite:{tmp_path / 'chat.db'}") as server:
        ids = [await notify(server, "zoe", f"n{i}") for i in range(5)]
        zoe = ChatClient(server.url, user_id="zoe", backoff_initial=0.01)
        await zoe.connect()
        # Everything has arrived (queued in the client), nothing is consumed: cut the line.
        await eventually(lambda: zoe._events.qsize() >= 6)
        ws = zoe.websocket
        assert ws is not None and ws.transport is not None
        ws.transport.abort()
        await eventually(lambda: zoe.connections == 2 and zoe.connected)
        events = []
        async with asyncio.timeout(WAIT):
            while len(events) < 9:  # welcome, 5 items, disconnected, welcome, pong
                if len(events) == 8:
                    await zoe.ping()
                events.append(await zoe.next_event())
        got = [e["message_id"] for e in events if e.get("offline") is True]
        assert got == ids  # once each, although the server sent them twice
        assert [e["type"] for e in events if e.get("offline") is not True] == [
            "welcome", "disconnected", "welcome", "pong"]
        await eventually(lambda: server.store.inbox_count() == 0)  # all acknowledged
        await zoe.close()


async def test_a_send_whose_reply_is_lost_is_retried_with_its_key(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    proc, port = await serve("--store", f"sqlite:{db}", *SERVER)
    url = f"ws://127.0.0.1:{port}/ws"
    client = ChatClient(url, user_id="alice", backoff_initial=0.05, backoff_max=0.2,
                        request_timeout=WAIT)
    try:
        await client.connect()
        await client.join("r")
        first = await client.send("r", "one")
        # Another process holds the file's write lock: the next message cannot commit, so
        # its reply cannot be sent; the server is killed meanwhile. It was never durable.
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        sending = asyncio.ensure_future(client.send("r", "two"))
        await eventually(lambda: len(client._pending) == 1)
        proc.process.kill()
        await proc.wait()
        blocker.execute("ROLLBACK")
        blocker.close()
        assert not sending.done()
        proc, _ = await serve("--store", f"sqlite:{db}", "--port", str(port), *SERVER)
        second = await sending  # sent again, with the same key, once reconnected
        assert (first["seq"], second["seq"]) == (1, 2)
        assert second["epoch"] == first["epoch"]  # the same stream after the restart
        assert client.connections == 2
        again = await client.send("r", "two", idempotency_key="fixed")
        replay = await client.send("r", "two", idempotency_key="fixed")
        assert replay["seq"] == again["seq"] == 3 and replay["message_id"] == again["message_id"]
        history = await client.history("r", since=0)
        assert [m["content"] for m in history["history"]] == ["one", "two", "two"]
    finally:
        await client.close()
        proc.kill()
        await proc.wait()


async def test_a_room_is_followed_across_a_kill_9_without_loss_duplicate_or_gap(
        tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    proc, port = await serve("--store", f"sqlite:{db}", *SERVER)
    url = f"ws://127.0.0.1:{port}/ws"
    reader = ChatClient(url, user_id="reader", backoff_initial=0.05, backoff_max=0.2)
    poster = ChatClient(url, user_id="poster", backoff_initial=0.05, backoff_max=0.2,
                        request_timeout=WAIT)
    procs: list[ServerProcess] = [proc]
    try:
        await reader.connect()
        await reader.join("r")
        await poster.connect()
        await poster.join("r")
        for n in range(1, 31):
            await poster.send("r", n)
        await reader.private("carol", "while you were away")  # queued for carol
        proc.process.kill()
        await proc.wait()
        procs.append(proc := (await serve("--store", f"sqlite:{db}", "--port", str(port),
                                          *SERVER))[0])
        for n in range(31, 61):
            await poster.send("r", n)  # retried across the restart where needed
        contents: list[int] = []
        kinds: list[str] = []
        async with asyncio.timeout(WAIT):
            while len(contents) < 60:
                event = await reader.next_event()
                kinds.append(event["type"])
                if event["type"] == "message" and event.get("user_id") == "poster":
                    contents.append(event["content"])
        assert contents == list(range(1, 61))  # every message, in order, once
        assert "gap" not in kinds  # the epoch survived: nothing to report
        async with ChatClient(url, user_id="carol") as carol:
            items = await offline_items(carol, 1)
            assert json.loads(json.dumps(items[0]["content"])) == "while you were away"
    finally:
        await reader.close()
        await poster.close()
        for p in procs:
            p.kill()
            await p.wait()
