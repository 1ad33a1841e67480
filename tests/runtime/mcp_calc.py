"""A small stdio MCP server for the runtime tests (started by the engine as a ToolServer)."""

import logging
import os
import sqlite3
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("calc")
logging.getLogger().setLevel(logging.WARNING)  # building an MCPServer sets root logging to INFO


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@server.tool()
def boom(text: str) -> str:
    """Always fails."""
    raise ValueError(f"boom: {text}")


@server.tool()
def slow(seconds: float) -> str:
    """Sleeps, then answers."""
    time.sleep(seconds)
    return "woke up"


@server.tool()
def crash() -> str:
    """The server process dies mid-call."""
    os._exit(1)


@server.tool()
def last_stored() -> str:
    """The type of the newest event in the engine's store (is the tool.call durable yet?)."""
    with sqlite3.connect(os.environ["CALC_DB"]) as db:
        row = db.execute("SELECT type, data FROM events ORDER BY rowid DESC LIMIT 1").fetchone()
    return f"{row[0]} {row[1]}"


def http_app(token: str):
    """The server over streamable HTTP, refusing requests without ``Authorization: Bearer <token>``."""
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


if __name__ == "__main__":
    server.run()
