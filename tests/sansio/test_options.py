"""Connection options: one frozen value, defaults written once, validated when built."""

from __future__ import annotations

import dataclasses

import pytest

import rawws
from rawws.sansio.options import DEFAULT_OPTIONS, Options
from rawws.sansio.server import ServerProtocol


def test_the_defaults() -> None:
    expected = Options(
        max_size=2**20, max_frame_size=None, max_body_size=2**20, max_line=8192,
        max_headers=128, max_head=65536, max_queue=16, write_limit=2**16, open_timeout=10.0,
        ping_interval=20.0, ping_timeout=20.0, close_timeout=10.0, compression="deflate")
    assert expected == DEFAULT_OPTIONS


def test_frozen_and_replaced() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_OPTIONS.max_size = 1  # type: ignore[misc]
    smaller = dataclasses.replace(DEFAULT_OPTIONS, max_size=10)
    assert smaller.max_size == 10 and DEFAULT_OPTIONS.max_size == 2**20


@pytest.mark.parametrize("bad", [
    {"max_size": 0}, {"max_size": -1}, {"max_size": 1.5}, {"max_size": True},
    {"max_frame_size": 0}, {"max_queue": 0}, {"write_limit": -1}, {"max_body_size": "1"},
    {"max_line": 0}, {"max_headers": 0}, {"max_head": 0}, {"open_timeout": -1},
    {"ping_interval": -0.5}, {"ping_timeout": "20"}, {"close_timeout": None},
    {"close_timeout": -1}, {"compression": "gzip"},
])
def test_a_misconfiguration_is_an_error_when_built(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Options(**bad)  # type: ignore[arg-type]


def test_none_is_the_only_unlimited() -> None:
    unlimited = Options(max_size=None, max_queue=None, open_timeout=None, ping_interval=None,
                        ping_timeout=None, compression=None)
    assert unlimited.max_size is None


async def test_built_once_and_shared() -> None:
    server = rawws.Server(None, max_size=1000, write_limit=100)
    assert server.options.max_size == 1000 and server.options.write_limit == 100
    first, second = server._make_connection(), server._make_connection()
    assert first.options is second.options is server.options
    assert first.protocol.options is server.options
    with pytest.raises(ValueError):
        rawws.Server(None, ping_timeout=-1)


def test_the_protocol_reads_its_limits_from_options() -> None:
    server = ServerProtocol(options=Options(max_size=5, max_frame_size=3))
    assert (server.max_size, server.max_frame_size) == (5, 3)
    server.max_size = 7  # still settable: a new Options value
    assert server.options.max_size == 7 and server.options.max_frame_size == 3
