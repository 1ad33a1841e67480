"""team-control: an agent makes ephemeral agents and commands them (CONTRACT section 8, "Team modes").

``create_agent(name, instructions, model?, tools?)`` makes an agent at ``<creator path>/<name>``
for the rest of the run; its model and tools are limited to the creator's own (the creator's
Model or one of its fallbacks; tool names the creator itself has, never its team tools), and
its scripted-model key is ``<name>``. ``command_agent(name, task)`` starts the agent in the
background and returns a handle, ``<name>#<n>`` for its n-th command, which runs at
``<creator path>/<name>`` (``<name>#n`` from the second on, as a member's n-th call does).
``check_agent_status``, ``read_logs``, ``list_agents``, ``interrupt_agent``, ``delete_agent`` and
``report_cost`` read and steer them. What a created agent spends counts against the creator's
own budget (tokens and cost) and every budget around it. Every step is in the run's stream:
the creator's tool calls and results at its path, the created agents' events below it.

Agents belong to the creator's path, so a creator's later turns (and its resumed run) find
them; a command still running when the run ends is interrupted, and says so in the stream.
"""


import contextlib
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

from . import Caller, take_caller
from .created import TeamControl


def make_server(ctx: Any) -> MCPServer:
    """The team-control server of one run (its lifespan interrupts running commands at the run's end)."""
    host = TeamControl(ctx)

    @contextlib.asynccontextmanager
    async def lifespan(_server: Any):
        try:
            yield {}
        finally:
            await host.close()

    server = MCPServer("team-control", lifespan=lifespan)

    async def caller(context: Context) -> Caller:
        who = take_caller(context.request_context.meta)
        await host.restore(who)
        return who

    @server.tool(description="Make an agent that lives for the rest of this run, at <your path>/<name>. "
                 "Its model and tools can only be ones you have (default: your model, no tools).")
    async def create_agent(name: str, instructions: str, context: Context, model: str | None = None,
                           tools: list[str] | None = None) -> dict[str, Any]:
        return await host.create_agent(await caller(context), name, instructions, model, tools)

    @server.tool(description="Give one of your agents a task. Returns a handle at once; the agent works "
                 "in the background: read it with check_agent_status(handle).")
    async def command_agent(name: str, task: str, context: Context) -> dict[str, Any]:
        return await host.command_agent(await caller(context), name, task)

    @server.tool(description="The status of a command (handle from command_agent, or an agent's name for "
                 "its latest): running, succeeded (with output), failed or interrupted (with error), and "
                 "its cost. wait: seconds to wait for it to finish first (0: answer at once).")
    async def check_agent_status(handle: str, context: Context, wait: float = 0) -> dict[str, Any]:
        return await host.check_agent_status(await caller(context), handle, wait)

    @server.tool(description="What one of your agents did (or one command of it, by handle): its tasks, "
                 "replies, tool calls and results, the last `tail` entries.")
    async def read_logs(name: str, context: Context, tail: int = 50) -> dict[str, Any]:
        return await host.read_logs(await caller(context), name, tail)

    @server.tool(description="The agents you made in this run, with their commands.")
    async def list_agents(context: Context) -> dict[str, Any]:
        return await host.list_agents(await caller(context))

    @server.tool(description="Delete one of your agents (its running commands are interrupted).")
    async def delete_agent(name: str, context: Context) -> dict[str, Any]:
        return await host.delete_agent(await caller(context), name)

    @server.tool(description="Stop a running command (by handle), or every running command of an agent "
                 "(by name).")
    async def interrupt_agent(handle: str, context: Context) -> dict[str, Any]:
        return await host.interrupt_agent(await caller(context), handle)

    @server.tool(description="Tokens and USD your agents have spent in this run (it counts against your "
                 "budget), per agent and in total.")
    async def report_cost(context: Context) -> dict[str, Any]:
        return await host.report_cost(await caller(context))

    return server
