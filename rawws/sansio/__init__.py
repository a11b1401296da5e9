"""The sans-I/O WebSocket core: bytes in, events and bytes out. No asyncio, sockets or clock."""
