"""A threaded, blocking API (websockets.sync's): ``rawws.sync.client.connect`` and
``rawws.sync.server.serve``, for scripts and code without an event loop.

Threads over the same sans-I/O core as the asyncio layer (:mod:`rawws.sansio`): the same
handshake, frames, limits, UTF-8 checks and close codes; only the I/O differs (a blocking
socket, a reader thread per connection, a thread per connection on the server).
"""
