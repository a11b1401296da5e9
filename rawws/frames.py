"""websockets' import path for frame values: ``from rawws.frames import Close, Opcode``.

A re-export of :mod:`rawws.sansio.codes` and :mod:`rawws.sansio.frames` (nothing is defined
here). ``Opcode.CONT`` and ``CloseCode.INVALID_DATA`` are aliases of rawws' IANA names
``CONTINUATION`` and ``INVALID_FRAME_PAYLOAD_DATA``; ``Frame`` is a ``NamedTuple`` whose
payload is ``payload`` (``data`` is an alias), and rawws parses frames inside its protocol, so
there is no ``Frame.parse``.
"""

from __future__ import annotations

from .sansio.codes import CloseCode, Opcode
from .sansio.frames import Close, Frame

__all__ = ["Close", "CloseCode", "Frame", "Opcode"]
