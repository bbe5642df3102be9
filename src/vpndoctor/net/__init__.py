"""The only code that opens sockets: asyncio transports that drive the sans-I/O protocol machines."""
