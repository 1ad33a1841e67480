"""A stdio MCP server that writes to stderr (what lands in <home>/logs/toolservers/): a line when
it starts and one per call, naming the text it was given."""

import logging
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("talker")
logging.getLogger().setLevel(logging.WARNING)  # building an MCPServer sets root logging to INFO


@server.tool()
def say(text: str) -> str:
    """Say ``text`` on stderr and return it."""
    print(f"talker said {text}", file=sys.stderr, flush=True)
    return text


if __name__ == "__main__":
    print("talker ready", file=sys.stderr, flush=True)
    server.run()
