"""Fan-out: send one message to many connections, serializing each distinct frame once.

Owns: :func:`broadcast`. Connections are grouped by their protocol's ``broadcast_key``: every
connection in a group would produce the same bytes for the message (no compression, or
permessage-deflate without context takeover on our side and with the same settings), so the
frame is serialized (and compressed) once per group and the same ``bytes`` object is queued on
each connection. Connections whose frames depend on their own history (context takeover) or on
a per-frame mask (clients) are encoded one by one.

Written for speed (benchmarks/run.py, fan-out scenario): per connection, a state check, a dict
lookup and an append to its outbox. Called while a read is being handled (a publisher's
message), the frames join that read's write batch: a burst of messages from one read reaches
each subscriber in one ``send()`` (see :mod:`rawws.aio.connection`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from ..errors import ConnectionClosed, InvalidState
from ..sansio.protocol import State
from .connection import Connection, Message

__all__ = ["broadcast"]

_OPEN = State.OPEN


def broadcast(
    connections: Iterable[Connection], message: Message, *, compress: bool | None = None
) -> int:
    """Send ``message`` to every open connection in ``connections``; return how many got it.

    Does not wait for anything: a connection that is closed or closing is skipped, and slow
    connections buffer in their transport (check ``writing_paused`` / ``write_buffer_size`` to
    shed them). Never raises for a closed connection.
    """
    prepared: dict[Hashable, bytes] = {}
    sent = 0
    for ws in connections:
        protocol = ws.protocol
        if protocol.state is not _OPEN or ws.transport_closing:
            continue
        key = protocol.broadcast_key
        try:
            if key is None or protocol.sending_fragmented:
                ws.send_nowait(message, compress=compress)
            else:
                data = prepared.get(key)
                if data is None:
                    data = prepared[key] = protocol.prepare_message(message, compress=compress)
                ws.send_prepared(data)
        except (ConnectionClosed, InvalidState):
            continue
        sent += 1
    return sent
