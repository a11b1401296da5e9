"""The live frame inspector (rawws/chat/inspector.py) end to end, on the virtual clock: a
connection opened with ``?inspect=1`` is told about exactly its own frames, as the client itself
saw them; the reports never report themselves (a quiet connection stays quiet); nobody else is
traced or told anything."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import rawws
from rawws.testing import idle
from rawws.wirelog import Event, FrameEvent, RecordConverter

from .e2e import Limits, running

pytestmark = pytest.mark.virtual_clock


class Client:
    """A chat client that keeps the inspector's reports apart from the chat, and traces its
    own side of the connection (the reference the reports are compared with)."""

    def __init__(self) -> None:
        self.seen: list[Event] = []
        self.tracer = RecordConverter(1, "client", self.seen.extend)
        self.reports: list[dict[str, Any]] = []
        self.chat: list[dict[str, Any]] = []
        self.ws: rawws.ClientConnection | None = None

    async def open(self, server: Any, query: str) -> Client:
        self.ws = await rawws.connect(f"{server.url}/ws?{query}", tracer=self.tracer,
                                      ping_interval=None)
        self.reading = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        async for raw in self.ws:
            message = json.loads(raw)
            (self.reports if message.get("type") == "inspect" else self.chat).append(message)

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    def reported_frames(self) -> list[dict[str, Any]]:
        return [frame for report in self.reports for frame in report["frames"]]

    def own_frames(self) -> list[FrameEvent]:
        """The frames this client saw, except those that carried reports."""
        frames = [e for e in self.seen if isinstance(e, FrameEvent)]
        return [f for f in frames if not (f.text or "").startswith('{"type":"inspect"')]


def summary(frame: dict[str, Any] | FrameEvent) -> tuple[Any, ...]:
    if isinstance(frame, FrameEvent):
        data = frame.data
        return (frame.dir, frame.opcode, frame.fin, frame.rsv1, frame.length,
                frame.mask.hex() if frame.mask else None, len(data) if data is not None else None)
    return (frame["dir"], frame["opcode"], frame["fin"], frame["rsv"][0], frame["length"],
            frame["mask"], frame["size"])


async def test_a_connection_sees_exactly_its_own_frames() -> None:
    async with running() as server:
        alice = await Client().open(server, "user_id=alice&inspect=1")
        bob = await Client().open(server, "user_id=bob")
        await idle()
        await alice.send({"type": "join", "room": "lobby"})
        await bob.send({"type": "join", "room": "lobby"})
        await idle()
        long = "a sent chat message " * 10  # over the compression threshold
        await alice.send({"type": "message", "room": "lobby", "content": "hi"})
        await alice.send({"type": "message", "room": "lobby", "content": long})
        await bob.send({"type": "message", "room": "lobby", "content": "from bob"})
        await idle()

        reported = alice.reported_frames()
        # One for one, in order, what alice's own client saw on the wire: the masks of her
        # frames, the lengths, compressed and inflated sizes.
        assert [summary(f) for f in reported] == [summary(f) for f in alice.own_frames()]
        sent = [f for f in reported if f["dir"] == "c2s" and f["opcode"] == "TEXT"]
        texts = [json.dumps({"type": "message", "room": "lobby", "content": c}) for c in
                 ("hi", long)]
        assert [f["size"] for f in sent[-2:]] == [len(t.encode()) for t in texts]
        assert sent[-1]["compressed"] and sent[-1]["length"] < sent[-1]["size"]
        assert all(f["masked"] and len(f["mask"]) == 8 for f in sent)
        # What bob said reached alice: reported with the text she received (a preview).
        own = alice.own_frames()
        n = next(i for i, f in enumerate(own) if f.dir == "s2c" and "from bob" in (f.text or ""))
        assert own[n].text is not None and reported[n]["preview"] == own[n].text[:64]
        # Bob asked for nothing: no tracer on his connection, no report to him.
        assert bob.reports == []
        assert server.inspector.inspected == 1
        tracers = sorted(c.protocol.tracer is not None for c in server.server.connections)
        assert tracers == [False, True]
        # Reports never report themselves, and a quiet connection stays quiet.
        count = len(alice.reports)
        assert alice.reports[-1]["hidden"] == count - 1
        await asyncio.sleep(3600)
        assert len(alice.reports) == count
        for client in (alice, bob):
            assert client.ws is not None
            await client.ws.close()


async def test_reports_are_batched_and_bounded() -> None:
    from rawws.chat.inspector import MAX_BATCH

    async with running(limits=Limits(rate=1e6, burst=1e6)) as server:
        alice = await Client().open(server, "user_id=alice&inspect=1")
        await idle()
        assert alice.ws is not None
        for n in range(3 * MAX_BATCH):  # in one burst: one loop turn
            alice.ws.send_nowait(json.dumps({"type": "ping", "id": n}))
        await idle()
        sizes = [len(report["frames"]) for report in alice.reports]
        assert max(sizes) <= MAX_BATCH
        assert sum(sizes) == len(alice.reported_frames())
        assert sum(1 for f in alice.reported_frames() if f["dir"] == "c2s") == 3 * MAX_BATCH
        await alice.ws.close()


async def test_secrets_in_my_own_frames_are_not_put_on_the_screen() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
    async with running() as server:
        alice = await Client().open(server, "user_id=alice&inspect=1")
        await idle()
        await alice.send({"type": "ping", "token": token})
        await idle()
        previews = [f["preview"] for f in alice.reported_frames()]
        assert previews and not any(token[:12] in p for p in previews)
        assert alice.ws is not None
        await alice.ws.close()
