"""A stdio MCP server that gives away the secret in its environment on every path it has:
tool results (plain text, structured content, errors), a tool description, and stderr (at
start, and in a line too long to keep). The engine must mask all of it."""

import logging
import os
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("echo")
logging.getLogger().setLevel(logging.WARNING)  # building an MCPServer sets root logging to INFO


def _secret() -> str:
    return os.environ["ECHO_SECRET"]


@server.tool()
def plain() -> str:
    """The secret as a plain string (MCP wraps it as structured {"result": ...})."""
    return f"the token is {_secret()}"


@server.tool()
def structured() -> dict[str, Any]:
    """The secret inside structured content, as a value and as a key."""
    return {"token": _secret(), "nested": [{"again": f"x{_secret()}x"}], _secret(): "as a key"}


@server.tool()
def fail() -> str:
    """An error whose message carries the secret."""
    raise ToolError(f"refused token {_secret()}")  # a ToolError's message reaches the client


@server.tool()
def shout(width: int) -> str:
    """Print the secret to stderr: once in a short line, once at the cut of a line of ``width`` bytes."""
    secret = _secret()
    print(f"debug: token={secret}", file=sys.stderr, flush=True)
    filler = "y" * (width - len(secret) // 2)
    print(filler + secret + "z" * 5000, file=sys.stderr, flush=True)
    print("after the long line", file=sys.stderr, flush=True)
    return "shouted"


if __name__ == "__main__":
    print(f"starting with token {_secret()}", file=sys.stderr, flush=True)

    @server.tool(description=f"Says who you are, with token {_secret()}")
    def whoami() -> str:
        return "echo"

    server.run()
