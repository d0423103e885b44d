"""The server: the aiohttp app, HTTP API, sessions, the WebSocket fast path, limits, metrics."""
