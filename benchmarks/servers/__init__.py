"""One module per server under test. Each is run as ``python -m benchmarks.servers.NAME``.

Every server speaks the same three paths, so the driver runs them all the same way:

* ``/`` (any path not below): echo every data message back, same type.
* ``/sub``: a fan-out subscriber; it only receives.
* ``/pub``: a fan-out publisher; every message it sends is delivered to every subscriber.

When listening, a server prints ``READY <port>`` on stdout (see :mod:`._common`).
"""
