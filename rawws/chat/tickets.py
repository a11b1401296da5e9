"""What a store write promises: a :class:`Ticket`, done when the write is durable.

Owns: the small vocabulary shared by every store implementation and the router: a
:class:`Ticket` (anything with ``done()``, ``result()`` and ``add_done_callback()``; an
``asyncio.Future`` qualifies), :class:`Done` (a ticket that is done at birth: what the memory
store returns, so that nothing waits and the router's output is exactly what it was before
durable stores existed), :class:`Failed`, :class:`Pending` (a value known now whose durability
is decided by another ticket: what the SQLite store returns, one batch ticket shared by every
write of a group commit), and :exc:`StoreUnavailable`.

Does not own: what is stored (:mod:`rawws.chat.store`) or how the router waits
(:class:`rawws.chat.router.Hold`, carried out in order by the hub).

Rules:

1. ``result()`` is only called on a done ticket. It returns the value, or raises the store's
   failure (always a :exc:`StoreUnavailable`), never anything else.
2. A callback added to a ticket that is already done still runs (once, later or at once, as
   ``asyncio.Future`` does it: the caller must not rely on which).
3. Tickets of one store become done in the order their writes were made (a store commits in
   order, or fails everything after the first failure): the hub relies on it to release
   output in order while registering only one callback at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["Done", "Failed", "Pending", "StoreUnavailable", "Ticket"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class StoreUnavailable(Exception):
    """A write could not be made durable (disk full, I/O error, a store shut down or
    overloaded). The request gets the ``unavailable`` error (HTTP 503): nothing was
    acknowledged, so the client may retry (with the same idempotency key)."""


class Ticket(Protocol[T_co]):
    """A store operation's outcome, possibly not known yet."""

    def done(self) -> bool: ...

    def result(self) -> T_co: ...

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None: ...


class Done(Generic[T]):
    """A ticket done at birth, holding ``value``."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def done(self) -> bool:
        return True

    def result(self) -> T:
        return self.value

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        fn(self)

    def __repr__(self) -> str:
        return f"Done({self.value!r})"


class Failed:
    """A ticket failed at birth (the store refused the write before trying it)."""

    __slots__ = ("error",)

    def __init__(self, error: StoreUnavailable) -> None:
        self.error = error

    def done(self) -> bool:
        return True

    def result(self) -> Any:
        raise self.error

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        fn(self)

    def __repr__(self) -> str:
        return f"Failed({self.error!r})"


class Pending(Generic[T]):
    """``value``, known now, durable when ``durable`` is done (and lost if it fails)."""

    __slots__ = ("durable", "value")

    def __init__(self, durable: Ticket[object], value: T) -> None:
        self.durable = durable
        self.value = value

    def done(self) -> bool:
        return self.durable.done()

    def result(self) -> T:
        self.durable.result()  # raises the store's failure
        return self.value

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        self.durable.add_done_callback(lambda _: fn(self))

    def __repr__(self) -> str:
        return f"Pending({self.value!r}, done={self.done()})"
