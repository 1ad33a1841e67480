"""think: the model writes a thought down; nothing else happens.

A scratchpad turn for a model that reasons better when it may pause between tool calls
(Anthropic's "think" tool). The thought is the ``tool.call``'s argument, so it is in the
run's stream (and ``logs``) like every call; the tool reads nothing and changes nothing, and
its result is a fixed acknowledgement, so replay and resume serve it like any other.
"""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

MAX_THOUGHT = 32_000   # characters: a thought is a note, not a document


def make_server(ctx: Any) -> MCPServer:
    server = MCPServer("think")

    @server.tool(description="Think before you act: write down your reasoning, a plan, or what you have "
                 "learned so far. It changes nothing and fetches nothing; the thought is recorded.")
    async def think(thought: Annotated[str, Field(max_length=MAX_THOUGHT,
                                                  description="your reasoning, in your own words")]) -> str:
        return "Thought recorded."

    return server
