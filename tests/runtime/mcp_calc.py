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
def last_stored() -> str:
    """The type of the newest event in the engine's store (is the tool.call durable yet?)."""
    with sqlite3.connect(os.environ["CALC_DB"]) as db:
        row = db.execute("SELECT type, data FROM events ORDER BY rowid DESC LIMIT 1").fetchone()
    return f"{row[0]} {row[1]}"


if __name__ == "__main__":
    server.run()
