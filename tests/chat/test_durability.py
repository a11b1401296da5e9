"""Acknowledged means durable: ``rawws serve --store sqlite:FILE`` killed with SIGKILL in the
middle of traffic, restarted on the same file.

Real processes, a real file, real sockets: senders pipeline room messages (each with an
idempotency key), an HTTP client queues notifications for an offline user who acknowledges
some of them, and the server is killed while all of that is in flight. After the restart:
every acknowledged room message is in the history with its seq, message_id and body; the seqs
are consecutive (a message that was never acknowledged may be kept or lost, but never half
written); the next message gets the next seq in the same epoch; retrying every message with
its key yields each one exactly once, an acknowledged one with the seq it was acknowledged
with; every acknowledged notification is delivered, none that was acknowledged by the user
comes back, also after a clean restart. Nothing here waits on a timer: every wait is for an
event, bounded by a hang guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import rawws

from ..processes import WAIT, ServerProcess, run, serve

ROOM = "r"


def server_args(db: Path) -> tuple[str, ...]:
    return ("--store", f"sqlite:{db}", "--rate", "1e9", "--burst", "1e9",
            "--history-size", "100000", "--http-rate", "0", "--inbox-size", "1000",
            "--max-queue", "100000")


async def connect(port: int, name: str) -> tuple[rawws.ClientConnection, dict[str, Any]]:
    ws = await rawws.connect(f"ws://127.0.0.1:{port}/ws?user_id={name}", compression=None,
                             ping_interval=None)
    async with asyncio.timeout(WAIT):
        welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome", welcome
    return ws, welcome


async def reply_to(ws: rawws.ClientConnection, rid: Any) -> dict[str, Any]:
    """Read events until the reply with ``id`` ``rid`` (others are skipped)."""
    async with asyncio.timeout(WAIT):
        while True:
            event = json.loads(await ws.recv())
            if event.get("id") == rid:
                return event  # type: ignore[no-any-return]


async def ask(ws: rawws.ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    return await reply_to(ws, message["id"])


async def http_post(port: int, target: str, body: Any,
                    key: str | None = None) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    head = [f"POST {target} HTTP/1.1", f"Host: 127.0.0.1:{port}",
            f"Content-Length: {len(data)}", "Connection: close"]
    if key is not None:
        head.append(f"Idempotency-Key: {key}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    try:
        async with asyncio.timeout(WAIT):
            raw = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    if not status_line:
        raise ConnectionError("no answer (the server died)")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


async def whole_history(port: int) -> tuple[list[dict[str, Any]], str]:
    """Every message the room keeps, oldest first, page by page; and its epoch."""
    ws, _ = await connect(port, "reader")
    try:
        joined = await ask(ws, {"type": "join", "room": ROOM, "id": "j"})
        messages: list[dict[str, Any]] = []
        since = 0
        while True:
            page = await ask(ws, {"type": "history", "room": ROOM, "since": since,
                                  "limit": 100000, "id": f"h{since}"})
            messages += page["history"]
            if not page["more"]:
                return messages, joined["epoch"]
            since = page["history"][-1]["seq"]
    finally:
        await ws.close()


class Sender:
    """One connection pipelining room messages (each with its own idempotency key), at most
    ``window`` without a reply, until the connection dies."""

    def __init__(self, name: str, window: int = 16) -> None:
        self.name = name
        self.window = window
        self.sent: dict[str, str] = {}  # key -> content, for every message sent
        self.acked: dict[str, tuple[int, str]] = {}  # key -> (seq, message_id) acknowledged
        self.epoch: str | None = None

    async def run(self, port: int, enough: asyncio.Event, total: list[int]) -> None:
        ws, _ = await connect(port, self.name)
        self.epoch = (await ask(ws, {"type": "join", "room": ROOM, "id": "join"}))["epoch"]
        room_for = asyncio.Semaphore(self.window)
        keys: dict[int, str] = {}

        async def read() -> None:
            try:
                await read_replies()
            finally:
                for _ in range(self.window):
                    room_for.release()  # the connection is gone: the sending loop ends too

        async def read_replies() -> None:
            async for raw in ws:
                event = json.loads(raw)
                key = keys.get(event.get("id"))  # type: ignore[arg-type]
                if key is None:
                    continue  # another sender's message
                assert event["type"] == "message", event
                assert event["content"] == key
                self.acked[key] = (event["seq"], event["message_id"])
                total[0] += 1
                if total[0] >= 300:
                    enough.set()
                room_for.release()

        reader = asyncio.ensure_future(read())
        try:
            for n in range(1, 100_000):
                await room_for.acquire()
                if reader.done():
                    break
                key = f"{self.name}-{n}"
                keys[n] = key
                self.sent[key] = key
                await ws.send(json.dumps({"type": "message", "room": ROOM, "content": key,
                                          "idempotency_key": key, "id": n}))
        except rawws.ConnectionClosed:
            pass
        finally:
            with contextlib.suppress(rawws.ConnectionClosed, OSError):
                await reader


async def notifier(port: int, queued: dict[str, str], stop: asyncio.Event) -> None:
    """Notifications for the offline user, one at a time, each acknowledged by a 200."""
    n = 0
    while not stop.is_set():
        n += 1
        try:
            status, body = await http_post(port, "/api/notify/zoe", {"message": f"late-{n}"},
                                           key=f"late-{n}")
        except (OSError, ConnectionError, ValueError):
            return  # the server is gone: this one was never acknowledged
        assert status == 200 and body["status"] == "queued", body
        queued[body["message_id"]] = f"late-{n}"


async def test_kill_9_mid_traffic_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    proc, port = await serve(*server_args(db))
    try:
        # Phase 1: 20 notifications for zoe, acknowledged by the server; she reads them all
        # and acknowledges the first 10 (and waits for the server to confirm).
        early: dict[str, str] = {}
        for n in range(20):
            status, body = await http_post(port, "/api/notify/zoe", {"message": f"early-{n}"})
            assert status == 200 and body["status"] == "queued"
            early[body["message_id"]] = f"early-{n}"
        zoe, welcome = await connect(port, "zoe")
        assert welcome["offline_items"] == 20
        items = [json.loads(await zoe.recv()) for _ in range(20)]
        assert [i["message_id"] for i in items] == list(early)
        read_and_acked = [i["message_id"] for i in items[:10]]
        assert (await ask(zoe, {"type": "ack", "message_ids": read_and_acked, "id": "a"})
                )["count"] == 10
        await zoe.close()

        # Phase 2: four senders and the notifier, killed in the middle.
        senders = [Sender(f"s{i}") for i in range(4)]
        enough, stop = asyncio.Event(), asyncio.Event()
        total = [0]
        late: dict[str, str] = {}
        tasks = [asyncio.ensure_future(s.run(port, enough, total)) for s in senders]
        tasks.append(asyncio.ensure_future(notifier(port, late, stop)))
        async with asyncio.timeout(WAIT):
            await enough.wait()
        proc.process.kill()  # SIGKILL: no shutdown, no flush
        await proc.process.wait()
        stop.set()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*tasks)
    finally:
        proc.kill()
        await proc.wait()

    acked = {k: v for s in senders for k, v in s.acked.items()}
    sent = {k: v for s in senders for k, v in s.sent.items()}
    assert len(acked) >= 300 and len(sent) > len(acked)  # killed with messages in flight
    epochs = {s.epoch for s in senders}
    assert len(epochs) == 1

    proc, port = await serve(*server_args(db))
    try:
        history, epoch = await whole_history(port)
        assert epoch in epochs  # the same stream: nothing was lost
        seqs = [m["seq"] for m in history]
        assert seqs == list(range(1, len(seqs) + 1))  # consecutive, none half-written
        by_content = {m["content"]: m for m in history}
        assert len(by_content) == len(history)  # nothing twice
        assert set(by_content) <= set(sent)  # nothing made up
        for key, (seq, message_id) in acked.items():  # every acknowledged message, as acked
            kept = by_content[key]
            assert (kept["seq"], kept["message_id"], kept["epoch"]) == (seq, message_id, epoch)
        kept_unacked = len(history) - len(acked)
        # since= recovery across the restart: exactly the missed messages, recovered.
        ws, _ = await connect(port, "late")
        joined = await ask(ws, {"type": "join", "room": ROOM, "since": seqs[-5], "epoch": epoch,
                                "id": "j"})
        assert joined["recovered"] is True and joined["seq"] == seqs[-1]
        assert [m["seq"] for m in joined["history"]] == seqs[-4:]
        await ws.close()

        # Retry everything with its key (keys are per user: each sender retries its own):
        # each message exactly once, an acknowledged one at the seq it was acknowledged with.
        last = seqs[-1]
        new_seqs = []
        for sender in senders:
            ws, _ = await connect(port, sender.name)
            await ask(ws, {"type": "join", "room": ROOM, "id": "join"})
            for n, key in enumerate(sender.sent, start=1):
                reply = await ask(ws, {"type": "message", "room": ROOM, "content": key,
                                       "idempotency_key": key, "id": n})
                assert reply["content"] == key and reply["epoch"] == epoch
                if key in acked:
                    assert (reply["seq"], reply["message_id"]) == acked[key]
                elif key in by_content:
                    assert reply["seq"] == by_content[key]["seq"]  # kept: replayed
                else:
                    new_seqs.append(reply["seq"])  # lost before its ack: posted now
            await ws.close()
        assert new_seqs == list(range(last + 1, last + 1 + len(new_seqs)))
        ws, _ = await connect(port, "s0")
        await ask(ws, {"type": "join", "room": ROOM, "id": "join"})
        reply = await ask(ws, {"type": "message", "room": ROOM, "content": "after", "id": "x"})
        assert reply["seq"] == last + len(new_seqs) + 1
        await ws.close()
        history, _ = await whole_history(port)
        assert sorted(m["content"] for m in history) == sorted([*sent, "after"])

        # Zoe: every notification acknowledged by a 200 is delivered; the ten she
        # acknowledged never come back.
        zoe, welcome = await connect(port, "zoe")
        got = [json.loads(await zoe.recv()) for _ in range(welcome["offline_items"])]
        ids = [g["message_id"] for g in got]
        assert len(ids) == len(set(ids))
        required = (set(early) - set(read_and_acked)) | set(late)
        assert required <= set(ids)
        assert not set(ids) & set(read_and_acked)
        for item in got:  # the notifier's last one may have been kept without its 200
            assert item["message"] == {**early, **late}.get(item["message_id"],
                                                             item["message"])
        assert (await ask(zoe, {"type": "ack", "message_ids": ids, "id": "all"})
                )["count"] == len(ids)
        await zoe.close()
        assert await proc.stop() == 0  # a clean restart this time
    finally:
        proc.kill()
        await proc.wait()

    proc, port = await serve(*server_args(db))
    try:
        zoe, welcome = await connect(port, "zoe")
        assert welcome["offline_items"] == 0  # never again after the ack
        await zoe.close()
        history, epoch2 = await whole_history(port)
        assert epoch2 == epoch and len(history) == len(sent) + 1
    finally:
        await proc.stop()
    print(f"\nkill -9: {len(sent)} sent, {len(acked)} acknowledged, {kept_unacked} more kept "
          f"without an ack, {len(new_seqs)} lost before their ack (retried); notifications: "
          f"{len(early) + len(late)} acknowledged, all delivered")


async def burst_and_kill(db: Path, after_acks: int) -> tuple[dict[int, int], int]:
    """One connection sends 2,000 messages without waiting; the server is killed once
    ``after_acks`` replies have arrived (the writer is busy with a large batch then).
    Returns the acknowledged seq of each message number, and how many were sent."""
    proc, port = await serve(*server_args(db))
    acked: dict[int, int] = {}
    try:
        ws, _ = await connect(port, "burst")
        await ask(ws, {"type": "join", "room": ROOM, "id": "join"})
        frames = [json.dumps({"type": "message", "room": ROOM, "content": f"b{n}",
                              "idempotency_key": f"b{n}", "id": n}) for n in range(1, 2001)]
        for frame in frames:
            await ws.send(frame)
        with contextlib.suppress(rawws.ConnectionClosed):
            async for raw in ws:
                event = json.loads(raw)
                acked[event["id"]] = event["seq"]  # (also those read after the kill)
                if len(acked) >= after_acks and proc.process.returncode is None:
                    proc.process.kill()
                    await proc.wait()
    finally:
        proc.kill()
        await proc.wait()
    return acked, len(frames)


async def test_kill_during_a_batch_never_half_writes(tmp_path: Path) -> None:
    for round_no, after in enumerate((1, 150, 700)):
        db = tmp_path / f"burst-{round_no}.db"
        acked, sent = await burst_and_kill(db, after)
        assert len(acked) >= after
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            stored = conn.execute("SELECT seq, data FROM messages ORDER BY seq").fetchall()
        finally:
            conn.close()
        events = [json.loads(data) for _, data in stored]  # every row whole JSON
        assert [seq for seq, _ in stored] == list(range(1, len(stored) + 1))
        assert [e["seq"] for e in events] == [seq for seq, _ in stored]
        contents = [e["content"] for e in events]
        assert contents == [f"b{n}" for n in range(1, len(stored) + 1)]  # in order, a prefix
        for n, seq in acked.items():
            assert contents[seq - 1] == f"b{n}"  # acknowledged: kept, with its seq
        assert len(stored) <= sent
        proc, port = await serve(*server_args(db))
        try:
            ws, _ = await connect(port, "burst")
            await ask(ws, {"type": "join", "room": ROOM, "id": "join"})
            # Every message again with its key: none acknowledged twice with another seq.
            for n in range(1, sent + 1):
                await ws.send(json.dumps({"type": "message", "room": ROOM, "content": f"b{n}",
                                          "idempotency_key": f"b{n}", "id": n}))
            replies: dict[int, int] = {}
            async with asyncio.timeout(WAIT):
                async for raw in ws:
                    event = json.loads(raw)
                    replies[event["id"]] = event["seq"]
                    if len(replies) == sent:
                        break
            assert all(replies[n] == seq for n, seq in acked.items())
            assert sorted(replies.values()) == list(range(1, sent + 1))  # each once
            await ws.close()
        finally:
            await proc.stop()


async def test_the_lock_keeps_a_second_server_off_the_file(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    proc, _ = await serve(*server_args(db))
    try:
        second = await ServerProcess.start("serve", "--port", "0", *server_args(db))
        assert await second.wait() == 2
        assert f"{db} is in use by another rawws process" in second.output
        assert "Traceback" not in second.output
    finally:
        await proc.stop()


async def test_make_serve_keeps_its_state_in_var_from_a_clean_tree(tmp_path: Path) -> None:
    """``make serve`` on the files git tracks (no .venv, no var/), with the system Python:
    it creates ./var/chat.db and a restart finds what the first run acknowledged."""
    root = Path(__file__).resolve().parents[2]
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                            check=True).stdout.decode().split("\0")
    tree = tmp_path / "clone"
    for name in filter(None, listed):
        source = root / name
        if source.is_file():
            target = tree / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"}

    async def make_serve() -> tuple[asyncio.subprocess.Process, int]:
        process = await asyncio.create_subprocess_exec(
            "make", "-s", "serve", f"PY={python}", "ARGS=--port 0 --log-level warning",
            cwd=tree, env=environment, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        assert process.stdout is not None
        async with asyncio.timeout(WAIT):
            while True:
                line = (await process.stdout.readline()).decode()
                assert line, "make serve ended before it listened"
                found = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
                if found:
                    return process, int(found.group(1))

    async def stop(process: asyncio.subprocess.Process) -> None:
        os.killpg(process.pid, signal.SIGTERM)  # make and the server it runs
        async with asyncio.timeout(WAIT):
            await process.communicate()

    process, port = await make_serve()
    try:
        status, body = await http_post(port, "/api/rooms/lobby/messages", {"content": "kept"})
        assert status == 200 and body["seq"] == 1
    finally:
        await stop(process)
    assert (tree / "var" / "chat.db").is_file()
    assert not (tree / ".venv").exists()
    process, port = await make_serve()
    try:
        status, body = await http_post(port, "/api/rooms/lobby/messages", {"content": "next"})
        assert status == 200 and body["seq"] == 2  # the first run's message is still there
    finally:
        await stop(process)


async def test_bad_store_paths_exit_2_with_one_line(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 200)
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA application_id = 0x72777773")
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    cases = {
        f"sqlite:{tmp_path}/missing/chat.db": "does not exist",
        f"sqlite:{notes}": "is not a SQLite database",
        f"sqlite:{newer}": "schema version 999, newer than this rawws knows",
        f"sqlite:{tmp_path}": "is a directory",
        "sqlite:": "--store must be",
        "postgres://db": "--store must be",
    }
    for spec, expected in cases.items():
        status, output = await run("serve", "--port", "0", "--store", spec)
        lines = [line for line in output.splitlines() if line.strip()]
        assert status == 2, (spec, output)
        assert len(lines) == 1 and expected in lines[0], (spec, output)
        assert lines[0].startswith("rawws serve: ") and "Traceback" not in output
