"""The write queue's vocabulary: an :class:`Op` (one command for Redis) and its
:class:`RedisTicket`. Standard library only, so that :mod:`rawws.chat.bus` uses them without
importing redis-py (only :mod:`rawws.chat.redis_link` does)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, TypeVar

from .tickets import StoreUnavailable

__all__ = ["Op", "RedisTicket", "failed", "stream_id"]

T = TypeVar("T")


class RedisTicket(Generic[T]):
    """A :class:`~rawws.chat.tickets.Ticket` for one op. Callbacks run synchronously when it
    becomes done (the hub releases held output at that very point: :mod:`rawws.chat.redis_link`,
    theory of operation, 2)."""

    __slots__ = ("_callbacks", "_error", "_state", "_value", "ordered", "parse", "w")

    PENDING: Final = 0
    REPLIED: Final = 1  # an ordered op answered, waiting for the reader
    DONE: Final = 2

    def __init__(self, parse: Callable[[Any], T] | None = None, *, w: int = 0) -> None:
        self.parse = parse
        self.w = w
        self.ordered = w > 0
        self._state = self.PENDING
        self._value: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[Any], object]] = []

    def done(self) -> bool:
        return self._state == self.DONE

    @property
    def replied(self) -> bool:
        return self._state >= self.REPLIED

    def result(self) -> T:
        if self._error is not None:
            raise self._error
        value: T = self._value
        return value

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        if self._state == self.DONE:
            fn(self)
        else:
            self._callbacks.append(fn)

    def _reply(self, reply: Any) -> bool:
        """Redis answered: compute the value (a refusal fails the ticket). Returns whether the
        ticket still waits for the reader."""
        try:
            self._value = self.parse(reply) if self.parse is not None else reply
        except Exception as exc:
            self._fail(exc)
            return False
        if self.ordered and self._value is not None:
            self._state = self.REPLIED
            return True
        self._finish()
        return False

    def _finish(self) -> None:
        if self._state == self.DONE:
            return
        self._state = self.DONE
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)

    def _fail(self, error: BaseException) -> None:
        if self._state == self.DONE:
            return
        self._error = error
        self._finish()

    def __repr__(self) -> str:
        state = ("pending", "replied", "done")[self._state]
        return f"RedisTicket({state}, w={self.w})"


def failed(error: StoreUnavailable) -> RedisTicket[Any]:
    ticket: RedisTicket[Any] = RedisTicket()
    ticket._fail(error)
    return ticket


class Op:
    """One command for the write queue: ``args`` (``EVALSHA`` is filled in for a script), or
    ``build()`` called when the batch is assembled (coalesced changes: presence, trims), which
    returns the args or None for nothing to send."""

    __slots__ = ("args", "build", "script", "ticket")

    def __init__(self, ticket: RedisTicket[Any], *, script: str | None = None,
                 args: Sequence[Any] = (),
                 build: Callable[[], Sequence[Any] | None] | None = None) -> None:
        self.ticket = ticket
        self.script = script
        self.args = args
        self.build = build


def stream_id(raw: bytes) -> tuple[int, int]:
    ms, _, seq = raw.partition(b"-")
    return int(ms), int(seq or 0)
