"""What the send APIs accept as a message: ``str``, bytes-like, or fragments of one of them.

Owns the rule shared by the asyncio connection (:mod:`rawws.aio.connection`) and the threaded
one (:mod:`rawws.sync.connection`): a message is ``str`` (text) or bytes-like (binary); an
iterable of them is one fragmented message, all items of one kind (RFC 6455 §5.4). Anything
else is a ``TypeError`` before a byte is sent. Imports nothing from rawws.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["Data", "DataLike", "ExtensionName", "ExtensionParameter", "LoggerLike", "Message",
           "Origin", "StatusLike", "Subprotocol", "check_fragment", "check_fragments",
           "not_a_message"]

#: A received message: ``str`` for text, ``bytes`` for binary.
Message = str | bytes
#: What send() takes as a message or a fragment.
DataLike = str | bytes | bytearray | memoryview

# websockets' typing names (websockets.typing), for annotations written against it.
Data = Message
LoggerLike = logging.Logger | logging.LoggerAdapter[Any]
StatusLike = http.HTTPStatus | int
Origin = str
Subprotocol = str
ExtensionName = str
ExtensionParameter = tuple[str, str | None]


def check_fragment(fragment: object) -> None:
    if not isinstance(fragment, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"a fragment must be str or bytes-like, not {type(fragment).__name__}")


def check_fragments(fragments: list[Any] | tuple[Any, ...]) -> None:
    """Refuse a list or tuple of fragments that could not be sent whole."""
    for fragment in fragments:
        check_fragment(fragment)
    if fragments and any(isinstance(f, str) is not isinstance(fragments[0], str)
                         for f in fragments):
        raise TypeError("the fragments of a message must be all str or all bytes-like")


def not_a_message(message: object) -> TypeError:
    """The error for a message that is neither data nor an iterable of it (a dict is the
    common mistake)."""
    if isinstance(message, Mapping):
        return TypeError("cannot send a dict-like object: send json.dumps() of it (or its "
                         "keys() to send the keys as fragments)")
    return TypeError(f"cannot send {type(message).__name__}: send str, bytes-like, or an "
                     "iterable or async iterable of them (fragments)")
