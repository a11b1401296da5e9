"""Fan-out: send one message to many connections, serializing each distinct frame once.

Owns: :func:`broadcast` and :func:`write_batch`. Connections are grouped by their protocol's
``broadcast_key``: every connection in a group would produce the same bytes for the message (no
compression, or permessage-deflate without context takeover on our side and with the same
settings), so the frame is serialized (and compressed) once per group and the same ``bytes``
object is queued on each connection. Connections whose frames depend on their own history
(context takeover) or on a per-frame mask (clients) are encoded one by one.

Written for speed (benchmarks/run.py, fan-out scenario): per connection, a state check, a dict
lookup and an append to its outbox. Called while a read is being handled (a publisher's
message), the frames join that read's write batch: a burst of messages from one read reaches
each subscriber in one ``send()`` (see :mod:`rawws.aio.connection`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterable, Iterator

from ..errors import ConnectionClosed, InvalidState
from ..sansio.protocol import State
from .connection import Connection, Message, _thread_state

__all__ = ["broadcast", "write_batch"]

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


@contextlib.contextmanager
def write_batch() -> Iterator[None]:
    """Batch the writes made inside the block as the handling of a read batches them
    (:mod:`rawws.aio.connection`, rule 2): each connection written to gets one ``send()`` when
    the block ends (or sooner, when what it was sent reaches its ``write_limit``).

    For fan-out that is not caused by a WebSocket read: a broker's reader delivering a batch of
    messages to thousands of connections writes each one once, not once per message
    (``rawws serve --broker``, benchmarks/cluster.py: fan-out). Inside a read callback, or in
    another ``write_batch()``, it joins the batch already open. Keep the block synchronous: the
    batch is the thread's, and an ``await`` inside it would delay every write of others.
    """
    state = _thread_state()
    if state.batching:
        yield
        return
    state.batching = True
    try:
        yield
    finally:
        state.batching = False
        pending = state.pending
        if pending:
            state.pending = []
            for connection in pending:
                connection._queued = False
                connection._flush()
