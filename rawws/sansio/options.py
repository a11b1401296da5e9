"""Connection options: every limit, timeout and the compression switch, in one frozen value.

Owns: the defaults (written here and nowhere else) and their validation. :func:`rawws.serve`
and :func:`rawws.connect` build one :class:`Options` from their keyword arguments and hand the
same object to every connection they make: the sans-I/O protocol reads the limits, the asyncio
connection the flow-control settings and the timeouts (the core keeps no clock; a timeout here
is a number the adapter arms a timer with).

A misconfiguration is an error when the value is built (``ValueError``), never a limit silently
turned off: ``None`` is the one way to say "unlimited" (where that is allowed).
"""

from __future__ import annotations

import dataclasses

__all__ = ["DEFAULT_OPTIONS", "Options"]

_COMPRESSIONS = (None, "deflate")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The options of a connection (both sides). Change one with :func:`dataclasses.replace`.

    Limits of the sans-I/O core:

    * ``max_size``: the largest message received, in bytes, after decompression (``None``:
      unlimited); over it the connection fails with 1009.
    * ``max_frame_size``: the largest frame received (``None``: only ``max_size`` applies).
    * ``max_body_size``: the largest body of a plain HTTP request (413 over it).
    * ``max_line``, ``max_headers``, ``max_head``: the HTTP head of a request or response
      (414 for a long request line, 431 for the rest).

    Flow control, in the asyncio layer:

    * ``max_queue``: messages received and not yet read by ``recv()`` before reading pauses
      (``None``: never pauses).
    * ``write_limit``: the high-water mark of the write buffer, in bytes: ``send()`` waits for
      the buffer to drain below a quarter of it, and automatic pongs are held (at most one is
      owed, RFC 6455 §5.5.3) while the buffer is above it.

    Timeouts, in seconds (``None``: none):

    * ``open_timeout``: the opening handshake (TCP and TLS included on the client).
    * ``ping_interval``, ``ping_timeout``: keepalive pings, and how long a pong may take before
      the connection is closed with 1011.
    * ``close_timeout``: the closing handshake, and how long a close frame owed to the peer may
      wait for the application to answer the messages that came before it.

    Compression: ``compression="deflate"`` offers (client) or accepts (server) permessage-deflate
    with rawws' defaults (RFC 7692); ``None`` turns it off.
    """

    max_size: int | None = 2**20
    max_frame_size: int | None = None
    max_body_size: int = 2**20
    max_line: int = 8192
    max_headers: int = 128
    max_head: int = 65536
    max_queue: int | None = 16
    write_limit: int = 2**16
    open_timeout: float | None = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 10.0
    compression: str | None = "deflate"

    def __post_init__(self) -> None:
        for name in ("max_size", "max_frame_size", "max_queue"):
            _check_number(name, getattr(self, name), optional=True, minimum=1, integer=True)
        for name in ("max_body_size", "write_limit"):
            _check_number(name, getattr(self, name), optional=False, minimum=0, integer=True)
        for name in ("max_line", "max_headers", "max_head"):
            _check_number(name, getattr(self, name), optional=False, minimum=1, integer=True)
        for name in ("open_timeout", "ping_interval", "ping_timeout"):
            _check_number(name, getattr(self, name), optional=True, minimum=0, integer=False)
        _check_number("close_timeout", self.close_timeout, optional=False, minimum=0,
                      integer=False)
        if self.compression not in _COMPRESSIONS:
            raise ValueError(f"unsupported compression: {self.compression!r} "
                             f"(use 'deflate' or None)")


def _check_number(name: str, value: object, *, optional: bool, minimum: int,
                  integer: bool) -> None:
    if value is None and optional:
        return
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (integer and not isinstance(value, int)) or not value >= minimum):
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what} >= {minimum}"
                         f"{' or None' if optional else ''}, not {value!r}")


#: The defaults: what every keyword argument of serve() and connect() starts from.
DEFAULT_OPTIONS = Options()
