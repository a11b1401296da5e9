"""Test support shared by every test module.

``async def test_*`` functions run in a fresh event loop each (no plugin needed), bounded by
``ASYNC_TEST_TIMEOUT`` so a hang fails the test instead of the run. This bound is a hang guard,
not a performance assertion: it is far above what any test needs.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

ASYNC_TEST_TIMEOUT = 60.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}

    async def run() -> None:
        async with asyncio.timeout(ASYNC_TEST_TIMEOUT):
            await function(**kwargs)

    asyncio.run(run())
    return True
