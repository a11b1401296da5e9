"""The redis-server fixture itself: a real process on a free port, AOF on, stopped by PID."""

from __future__ import annotations

import os

import pytest

from tests.redis_server import RedisServer, _command, require_redis, running_redis

pytestmark = pytest.mark.redis


def test_it_answers_keeps_acknowledged_writes_across_a_kill_and_stops_by_pid(
        redis_server: RedisServer) -> None:
    assert redis_server.ping()
    assert redis_server.command("SET", "k", "v") == b"OK"
    assert redis_server.command("CONFIG", "GET", "appendonly") == [b"appendonly", b"yes"]
    pid = redis_server.pid
    redis_server.restart()  # SIGKILL, then a new process on the same port and directory
    assert redis_server.pid != pid
    assert redis_server.command("GET", "k") == b"v"
    redis_server.stop()
    assert redis_server.process is not None and redis_server.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(redis_server.pid, 0)


def test_a_paused_server_does_not_answer_until_resumed(redis_server: RedisServer) -> None:
    redis_server.pause()
    try:
        with pytest.raises(OSError):  # a timeout: the kernel accepts, nobody answers
            _command(redis_server.port, b"PING", timeout=0.3)
    finally:
        redis_server.resume()
    assert redis_server.ping()


def test_two_servers_are_independent() -> None:
    require_redis()
    with running_redis() as first, running_redis() as second:
        assert first.port != second.port
        first.command("SET", "only", "here")
        assert second.command("EXISTS", "only") == 0
