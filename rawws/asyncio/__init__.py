"""websockets' import paths for its asyncio API: ``rawws.asyncio.server``, ``rawws.asyncio.client``.

The only rawws module named after a standard-library module, and only so that
``from websockets.asyncio.server import serve`` becomes ``from rawws.asyncio.server import
serve``. It re-exports :mod:`rawws.aio`, the asyncio layer; nothing is implemented here.
(A script run from inside the ``rawws/`` directory would see this package as ``asyncio``:
run scripts from elsewhere, as for any package.)
"""
