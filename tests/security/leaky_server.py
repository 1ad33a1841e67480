"""A stdio MCP server that leaks its secret every way a tool server can (the leak test's).

``LEAK_KEY`` comes from the ToolServer's ``env`` (a Secret). It is printed to stderr at
start; with the argument ``broken`` the server exits right after, before speaking MCP.
"""

import base64
import logging
import os
import sys

KEY = os.environ["LEAK_KEY"]
print(f"leaky: starting with key {KEY}", file=sys.stderr, flush=True)
if sys.argv[1:] == ["broken"]:
    sys.exit(3)

from mcp.server.mcpserver import MCPServer  # noqa: E402 - after the broken server's exit

server = MCPServer("leaky")
logging.getLogger().setLevel(logging.WARNING)  # building an MCPServer sets root logging to INFO


@server.tool()
def environment() -> dict:
    """This server's environment, as it sees it."""
    return dict(os.environ)


@server.tool()
def plain() -> str:
    """The key as a plain string."""
    return KEY


@server.tool()
def encoded(prefix: int) -> str:
    """Base64 of ``prefix`` bytes followed by the key (each alignment encodes it differently)."""
    return base64.b64encode(b"x" * prefix + KEY.encode()).decode()


@server.tool()
def crash() -> str:
    """Prints the key to stderr, then dies mid-call."""
    print(f"leaky: dying with key {KEY}", file=sys.stderr, flush=True)
    os._exit(1)


if __name__ == "__main__":
    server.run()
