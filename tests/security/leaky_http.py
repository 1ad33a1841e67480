"""A streamable-HTTP MCP server behind ``Authorization: Bearer <key>`` whose tool returns the key."""

import logging

from mcp.server.mcpserver import MCPServer


def http_app(token: str):
    server = MCPServer("leaky-http")
    logging.getLogger().setLevel(logging.WARNING)  # building an MCPServer sets root logging to INFO

    @server.tool()
    def whoami() -> str:
        """The bearer token this server accepts, as a plain string."""
        return token

    app = server.streamable_http_app()

    async def guarded(scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    return guarded
