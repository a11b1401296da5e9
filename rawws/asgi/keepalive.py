"""Keepalive pings for the ASGI shell: uvicorn's ``ws_ping_interval`` / ``ws_ping_timeout``.

Owns: the two timers (next ping, pong deadline), the payload of the ping in flight and the
round-trip time of the last one. A ping goes out ``interval`` seconds after the previous one
was sent; if ``timeout`` is set and its pong has not come back by then, ``on_timeout`` runs
(the shell closes with 1011 "keepalive ping timeout", as uvicorn's classes do).

Does not own: sending (``send_ping`` returns whether the connection could take a ping), or
the pong itself (the core answers the peer's pings; we only match our own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Keepalive"]


class Keepalive:
    __slots__ = ("interval", "last_rtt", "loop", "on_timeout", "payload", "pong_timer",
                 "random", "send_ping", "sent_at", "timeout", "timer")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        interval: float | None,
        timeout: float | None,
        send_ping: Callable[[bytes], bool],
        on_timeout: Callable[[], None],
        random: Callable[[int], bytes],
    ) -> None:
        self.loop = loop
        #: ``None`` (or zero, uvicorn's other spelling) disables keepalive.
        self.interval = interval if interval and interval > 0 else None
        self.timeout = timeout
        self.send_ping = send_ping
        self.on_timeout = on_timeout
        self.random = random
        self.timer: asyncio.TimerHandle | None = None
        self.pong_timer: asyncio.TimerHandle | None = None
        self.payload: bytes | None = None
        self.sent_at = 0.0
        self.last_rtt = 0.0

    def start(self) -> None:
        if self.interval is not None:
            self._schedule()

    def stop(self) -> None:
        for timer in (self.timer, self.pong_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self.pong_timer = None
        self.payload = None

    def pong(self, payload: bytes) -> None:
        """A pong arrived: if it answers our ping, the next one is due ``interval`` after that
        ping was sent."""
        if payload != self.payload:
            return  # unsolicited, or the answer to a ping we gave up on
        self.payload = None
        self.last_rtt = self.loop.time() - self.sent_at
        if self.pong_timer is not None:
            self.pong_timer.cancel()
            self.pong_timer = None
            self._schedule()

    def _schedule(self) -> None:
        assert self.interval is not None
        delay = max(0.0, self.interval - self.last_rtt)
        self.timer = self.loop.call_later(delay, self._ping)

    def _ping(self) -> None:
        self.timer = None
        payload = self.random(4)
        if not self.send_ping(payload):
            return
        self.payload = payload
        self.sent_at = self.loop.time()
        if self.timeout is not None:
            self.pong_timer = self.loop.call_later(self.timeout, self._timed_out)
        else:
            self._schedule()

    def _timed_out(self) -> None:
        self.pong_timer = None
        self.payload = None
        self.on_timeout()
