"""Hypothesis over a real socket: arbitrary JSON (and non-JSON) never crashes the server, and
every message gets exactly one reply or one error, in order.

The server runs in a thread with its own event loop for the whole module, so that each
hypothesis example is a plain function (hypothesis can then shrink failures).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rawws
from rawws.chat.limits import Limits
from rawws.chat.server import ChatConfig, ChatServer

ERROR_CODES = {"bad_json", "bad_request", "unknown_type", "forbidden", "not_found",
               "rate_limited", "too_large"}


class ServerThread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.ready = threading.Event()
        self.url = ""
        self.server: ChatServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Future[None] | None = None

    def run(self) -> None:
        asyncio.run(self.main())

    async def main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = self.loop.create_future()
        limits = Limits(rate=1e6, burst=1e6, max_content_size=2048, max_json_depth=8)
        async with ChatServer(ChatConfig(port=0, limits=limits, ping_interval=None)) as server:
            self.server = server
            self.url = server.url
            self.ready.set()
            await self.stop

    def shutdown(self) -> None:
        assert self.loop is not None and self.stop is not None
        stop = self.stop
        self.loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
        self.join(30)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def server_thread() -> Iterator[ServerThread]:
    thread = ServerThread()
    thread.collected = Collect()  # type: ignore[attr-defined]
    logging.getLogger("rawws").addHandler(thread.collected)  # type: ignore[attr-defined]
    thread.start()
    assert thread.ready.wait(30)
    yield thread
    thread.shutdown()
    logging.getLogger("rawws").removeHandler(thread.collected)  # type: ignore[attr-defined]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                               max_size=4),
    max_leaves=25,
)
KNOWN = ["join", "leave", "message", "private", "subscribe", "unsubscribe", "publish", "ping",
         "auth", "rooms", "presence"]
# Mostly the known types (each one often), sometimes anything.
types = st.one_of(st.sampled_from(KNOWN), st.sampled_from(KNOWN), st.sampled_from(KNOWN),
                  st.sampled_from(["hello", "", "JOIN"]), st.text(max_size=8))
requests = st.fixed_dictionaries(
    {"type": types},
    optional={"room": st.sampled_from(["lobby", "r", "bad room", ""]) | json_values,
              "content": json_values, "message": json_values,
              "target": st.sampled_from(["fuzz", "other", "x y"]) | json_values,
              "topics": st.lists(st.sampled_from(["a", "a.*", "#", "a..b", "t.#"]), max_size=4)
              | json_values,
              "topic": st.sampled_from(["a", "t.x", "a.*", ""]) | json_values,
              "since": st.integers(-5, 50) | json_values,
              "users": st.lists(st.sampled_from(["fuzz", "other", "x y"]), max_size=4)
              | json_values,
              "id": json_values})
request_texts = requests.map(json.dumps)
messages = st.one_of(
    request_texts, request_texts, request_texts, request_texts,  # requests weigh the most
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.binary(max_size=40),
    st.sampled_from(["ping", "{", "[[[[[[[[[[[[]]]]]]]]]]]]", '{"type":"ping","x":NaN}',
                     '{"type":"message","room":"lobby","content":"\\ud800"}']),
)


async def exchange(url: str, batch: list[str | bytes]) -> None:
    # permessage-deflate, as browsers offer it and the server accepts it by default.
    ws = await rawws.connect(url + "/ws?user_id=fuzz", compression="deflate", ping_interval=None)
    try:
        async with asyncio.timeout(30):
            assert json.loads(await ws.recv())["type"] == "welcome"
            assert "permessage-deflate" in str(ws.extensions[0])
            # Be in a room and on a topic, so fan-out paths are exercised too.
            await ws.send('{"type":"join","room":"lobby"}')
            assert json.loads(await ws.recv())["type"] == "joined"
            await ws.send('{"type":"subscribe","topics":["#"]}')
            assert json.loads(await ws.recv())["type"] == "subscribed"
            for i, message in enumerate(batch):
                await ws.send(message)
                sentinel = f"sentinel-{i}"
                await ws.send(json.dumps({"type": "ping", "id": sentinel}))
                replies: list[Any] = []
                while True:
                    reply = json.loads(await ws.recv())
                    if reply == {"type": "pong", "id": sentinel}:
                        break
                    replies.append(reply)
                # Exactly one direct reply; a notification or private copy may come with it.
                direct = [r for r in replies if r.get("type") not in ("notification", "private")]
                assert len(direct) == 1, (message, replies)
                if direct[0]["type"] == "error":
                    assert direct[0]["code"] in ERROR_CODES
                    assert "Traceback" not in direct[0]["message"]
            await ws.close()
            assert ws.close_code == 1000
    finally:
        if ws.transport is not None:
            ws.transport.abort()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(messages, min_size=1, max_size=6))
def test_arbitrary_messages_get_one_reply_each(server_thread: ServerThread,
                                               batch: list[str | bytes]) -> None:
    asyncio.run(exchange(server_thread.url, batch))


def test_server_logged_no_errors(server_thread: ServerThread) -> None:
    # Runs after the fuzzing in this module: the server is alive and nothing crashed.
    asyncio.run(exchange(server_thread.url, ["ping"]))
    server = server_thread.server
    assert server is not None
    assert server.metrics.closes.get(1011, 0) == 0  # a listener exception would close 1011
    assert server.metrics.messages_received > 150
    collected: Collect = server_thread.collected  # type: ignore[attr-defined]
    assert [r.getMessage() for r in collected.records if r.levelno >= logging.ERROR] == []
