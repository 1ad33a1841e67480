"""todo: a task list the agent keeps during a run (``todo_write`` replaces it, ``todo_read`` reads it).

One list per agent per run: an agent's later invocations in the run (``member#2``) find its
list. Every ``todo_write`` returns the whole list, so the stream holds each state; a resumed
or forked run rebuilds an agent's list from the last ``todo_write`` result its history holds
(at a path where that agent spoke), and replay serves the recorded results. Bounded: at most
``MAX_ITEMS`` items of ``MAX_TEXT`` characters.
"""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, ConfigDict, Field

from . import take_caller

MAX_ITEMS = 100
MAX_TEXT = 500
TOOLS = ("todo_write", "todo_read")


class TodoItem(BaseModel):
    """One task of the list."""

    model_config = ConfigDict(extra="forbid")

    content: Annotated[str, Field(min_length=1, max_length=MAX_TEXT, description="what is to be done")]
    status: Literal["pending", "in_progress", "completed"] = "pending"


class Lists:
    """The run's task lists, by agent key; each rebuilt from the run's history on first use."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.lists: dict[str, list[dict[str, str]]] = {}

    def of(self, agent: str) -> list[dict[str, str]]:
        found = self.lists.get(agent)
        if found is None:
            found = self.lists[agent] = rebuilt(self.ctx.history, agent.rsplit("/", 1)[-1])
        return found


def rebuilt(history: list[Any], agent: str) -> list[dict[str, str]]:
    """An agent's list as the stream last recorded it: the last successful ``todo_write`` at a
    path where ``agent`` ran (``agent.started`` names the agent of each path)."""
    paths: set[str] = set()
    last: list[dict[str, str]] = []
    for event in history or ():
        if event.type == "agent.started" and (event.data or {}).get("agent") == agent:
            paths.add(event.path)
        elif event.type == "tool.result" and event.path in paths:
            data = event.data or {}
            output = data.get("output")
            if data.get("name") == "todo_write" and "error" not in data and isinstance(output, dict):
                last = [dict(item) for item in output.get("todos") or ()]
    return last


def _summary(todos: list[dict[str, str]]) -> dict[str, Any]:
    counts = {s: sum(1 for t in todos if t["status"] == s) for s in ("pending", "in_progress", "completed")}
    return {"todos": todos, **counts}


def make_server(ctx: Any) -> MCPServer:
    lists = Lists(ctx)
    server = MCPServer("todo")

    def agent_of(context: Context) -> str:
        node = take_caller(context.request_context.meta).node
        return f"{node.namespace}/{node.name}"

    @server.tool(description="Replace your task list with `todos` (each: content, status pending | "
                 "in_progress | completed). Send the whole list every time; it is returned.")
    async def todo_write(todos: Annotated[list[TodoItem], Field(max_length=MAX_ITEMS)],
                         context: Context) -> dict[str, Any]:
        agent = agent_of(context)
        lists.lists[agent] = [item.model_dump() for item in todos]
        return _summary(lists.lists[agent])

    @server.tool(description="Your task list as you last wrote it in this run.")
    async def todo_read(context: Context) -> dict[str, Any]:
        return _summary(lists.of(agent_of(context)))

    return server
