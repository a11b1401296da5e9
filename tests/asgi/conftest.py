"""The ``ws`` fixture: every ASGI scenario runs with rawws' class and uvicorn's two.

(The uvicorn imports live in :mod:`tests.asgi.harness`, which each module imports with
``pytest.importorskip``: without the ``asgi-test`` extra the modules are skipped, visibly.)
"""

from __future__ import annotations

import pytest

#: rawws.asgi.WebSocketProtocol, and uvicorn's --ws websockets-sansio and --ws wsproto.
WS_NAMES = ["rawws", "websockets-sansio", "wsproto"]


@pytest.fixture(params=WS_NAMES)
def ws(request: pytest.FixtureRequest) -> str:
    return str(request.param)
