"""``mcp [--allow-approve]``: the engine as an MCP server over stdio (api/mcp/)."""

from __future__ import annotations

import typer

from agentform.api.cli import app, globals_of


@app.command("mcp")
def mcp_cmd(
    ctx: typer.Context,
    allow_approve: bool = typer.Option(False, "--allow-approve", help=(
        "Offer the answer_approval tool. Off by default: an LLM client must not pass the human gate.")),
) -> None:
    """Serve the engine to an MCP client (an IDE assistant) over stdin/stdout.

    Tools: list_targets, start_run, get_run, wait_run, read_events, cancel_run, cost (and
    answer_approval with --allow-approve); resources agentform://runs/{id}. Runs started here
    execute in this process and are cancelled when the client disconnects.
    """
    import asyncio

    from agentform import Engine
    from agentform.api.mcp.server import serve_stdio

    options = globals_of(ctx)
    engine = Engine(home=options.home, store=options.store_url)
    try:
        asyncio.run(serve_stdio(engine, allow_approve=allow_approve))
    finally:
        engine.close()
