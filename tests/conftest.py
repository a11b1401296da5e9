"""Test support shared by every test module.

``async def test_*`` functions run in a fresh event loop each (no plugin needed), bounded by
``ASYNC_TEST_TIMEOUT`` so a hang fails the test instead of the run. This bound is a hang guard,
not a performance assertion: it is far above what any test needs.

Tests marked ``@pytest.mark.virtual_clock`` (or modules with ``pytestmark = ...``) run on
:class:`rawws.testing.VirtualEventLoop` instead: virtual time, in-memory network
(docs/testing.md). Their hang guard is a virtual day (a deadlock fails at once; a busy loop is
pytest-timeout's).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import rawws.testing

ASYNC_TEST_TIMEOUT = 60.0
#: Coroutine functions awaited at the end of the current async test, on its loop, last first.
ASYNC_FINALIZERS: list[Callable[[], Awaitable[object]]] = []
VIRTUAL_TEST_TIMEOUT = 86400.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "virtual_clock: run this async test on rawws.testing's virtual-clock loop")
    config.addinivalue_line(
        "markers", "redis: needs a real redis-server (tests/redis_server.py; make test-redis)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say it when the Redis tests were skipped for a missing piece (they are part of the suite:
    ``make test-redis`` and CI require them)."""
    from tests.redis_server import missing_piece
    reason = missing_piece()
    skipped = terminalreporter.stats.get("skipped", [])
    if reason is not None and skipped:
        terminalreporter.write_line(f"Redis tests SKIPPED: {reason}", yellow=True)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}

    virtual = pyfuncitem.get_closest_marker("virtual_clock") is not None

    async def run() -> None:
        async with asyncio.timeout(VIRTUAL_TEST_TIMEOUT if virtual else ASYNC_TEST_TIMEOUT):
            try:
                await function(**kwargs)
            finally:
                # Fixtures' last words that need the test's loop (a store flushing its
                # writes to Redis before the loop is gone): see async_finalizer().
                while ASYNC_FINALIZERS:
                    await ASYNC_FINALIZERS.pop()()

    if virtual:
        rawws.testing.run(run())
    else:
        asyncio.run(run())
    return True


# A real redis-server per test (tests/redis_server.py), for any test module that asks for it.
from tests.redis_server import redis_server, redis_url  # noqa: E402, F401
