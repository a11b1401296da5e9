"""The compatibility suite: the same programs, run with ``websockets`` and with rawws.

Each program is written against websockets' API and takes the library as its ``websockets``
argument; the ``websockets`` fixture gives it websockets 17 itself, then rawws standing in for
it (the test-only import alias: ``rawws`` with websockets' submodules reachable as attributes).
Running the real websockets proves the expected behaviour is websockets' own, not a guess.
"""

from __future__ import annotations

import types

import pytest
import websockets
import websockets.asyncio.client
import websockets.asyncio.server
import websockets.datastructures
import websockets.exceptions
import websockets.frames
import websockets.http11

import rawws
import rawws.asyncio.client
import rawws.asyncio.server
import rawws.datastructures
import rawws.exceptions
import rawws.frames
import rawws.http11

LIBRARIES = {"websockets": websockets, "rawws": rawws}


@pytest.fixture(params=sorted(LIBRARIES))
def lib(request: pytest.FixtureRequest) -> types.ModuleType:
    """``websockets``, or ``rawws`` as ``import rawws as websockets`` gives it."""
    return LIBRARIES[request.param]
