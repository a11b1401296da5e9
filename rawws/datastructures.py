"""websockets' import path for :class:`Headers`: ``from rawws.datastructures import Headers``.

A re-export of :mod:`rawws.sansio.http11`'s ``Headers`` (the same class the handshake uses) and
of :class:`~rawws.errors.MultipleValuesError`. How rawws' ``Headers`` differs from websockets'
(iteration sees every header line) is in its docstring and ``docs/websockets-compat.md``.
"""

from __future__ import annotations

from .aio.client import HeadersLike
from .errors import MultipleValuesError
from .sansio.http11 import Headers

__all__ = ["Headers", "HeadersLike", "MultipleValuesError"]
