"""A stdio MCP server for the resume and cancel tests: ``keyed`` logs the idempotency key it
received (``_meta``) and its pid to $KEYS_LOG, sleeps, and answers with that key."""

import logging
import os
import time

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("keys")
logging.getLogger().setLevel(logging.WARNING)  # building an MCPServer sets root logging to INFO
KEY = "dev.agentform/idempotency-key"


def _key(ctx: Context) -> str | None:
    meta = ctx.request_context.meta
    if meta is None:
        return None
    return meta.get(KEY) if isinstance(meta, dict) else getattr(meta, "model_extra", {}).get(KEY)


@server.tool()
def keyed(seconds: float, ctx: Context) -> str:
    """Log the call's idempotency key and this process's pid, sleep, answer with the key."""
    key = _key(ctx)
    with open(os.environ["KEYS_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {key}\n")
    time.sleep(seconds)
    return f"key={key}"


if __name__ == "__main__":
    server.run()
