"""The tools of a replayed run: as the recording listed them, with the results it recorded.

No MCP server is started and no tool is called: ``tools_for`` builds each agent's tools from
the recording's ``toolserver.ready`` (names, descriptions, input schemas: what the model was
shown, so arguments are checked as they were), and a call gets the result recorded under its
idempotency key (``<run>:<path>:<call id>``, set by the executors while the call runs); a
recorded error is raised so that the agent loop words it as it did. team-control, a built-in
that only acts inside the run (it runs the agents it creates), runs again in process.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from agentform.engine.errors import RunError
from agentform.engine.store.base import Event

from .tools import Tool

if TYPE_CHECKING:
    from .context import RunContext
    from .replay import Recording

# Built-ins that only act inside the run (no process, no network, nothing outside): executed again.
LIVE_BUILTINS = frozenset({"team-control"})


class ReplayedTools:
    """The run's tool servers in a replay: tools as they were listed, results as they were recorded."""

    def __init__(self, ctx: RunContext, recording: Recording, body: list[Event]):
        self.ctx = ctx
        self._live: Any = None
        self.results: dict[str, deque[dict[str, Any]]] = {}
        self.listed: dict[str, list[dict[str, Any]]] = {}
        for event in recording.events:   # servers listed in an earlier segment are not listed again
            if event.type == "toolserver.ready":
                data = event.data or {}
                defs = {str(d.get("name")): d for d in data.get("definitions") or ()}
                refused = set(data.get("refused") or ())
                self.listed[str(data.get("server"))] = [
                    defs.get(n) or {"name": n, "refused": n in refused} for n in data.get("tools") or ()]
        for event in body:
            if event.type == "tool.result":
                data = event.data or {}
                key = f"{recording.run_id}:{event.path}:{data.get('id')}"
                self.results.setdefault(key, deque()).append(data)

    async def start_eager(self) -> None:
        pass

    async def close(self) -> None:
        if self._live is not None:
            await self._live.close()

    async def tools_for(self, agent: Any) -> dict[str, Tool]:
        """The agent's tools as the recording's ``toolserver.ready`` listed them (mcp_tools.py)."""
        from agentform.specs import parse_duration

        from . import builtins
        from .mcp_tools import _allowed

        tools: dict[str, Tool] = {}
        for use in agent.spec.tools:
            if use.builtin in LIVE_BUILTINS:
                tools.update(await self._live_tools(agent, use))
                continue
            if use.builtin is not None:
                key = f"{builtins.KEY_PREFIX}{use.builtin}"
            elif use.knowledge is not None:   # search_knowledge, recorded like any tool
                key = f"{builtins.KEY_PREFIX}knowledge"
            elif use.tool_server is not None:
                key = "/".join(use.tool_server.resolve(agent.namespace))
            else:
                continue
            spec = self.ctx.graph.tool_servers.get(key) or builtins.spec_for(key)
            if spec is None:
                raise RunError(f"tool server {key} is not part of this run's revision")
            timeout = parse_duration(spec.timeout)
            for listed in self.listed.get(key, ()):
                name = str(listed.get("name"))
                if _allowed(name, spec.tools, use.allow, use.deny):
                    tools[name] = self._tool(key, listed, timeout)
        return tools

    async def _live_tools(self, agent: Any, use: Any) -> dict[str, Tool]:
        """A built-in that acts inside the run (team-control: it runs the agents it creates, whose
        model turns and tools are replayed in turn) runs in process, as mcp_tools.tools_for runs it."""
        from . import builtins, mcp_tools

        if self._live is None:
            self._live = mcp_tools.ToolServers(self.ctx)
        server = await self._live._server(f"{builtins.KEY_PREFIX}{use.builtin}")
        return {listed.name: mcp_tools._tool(server, listed, agent) for listed in server.tools
                if mcp_tools._allowed(listed.name, server.spec.tools, use.allow, use.deny)}

    def _tool(self, server: str, listed: dict[str, Any], timeout: float) -> Tool:
        name = str(listed.get("name"))

        async def run(ctx: Any, path: str, args: dict, conversation: list) -> Any:
            return self._result(name)

        if listed.get("refused"):   # mcp_tools._refused_tool: what the model was shown instead
            return Tool(name, f"(unavailable in this run: its definition changed since {server} was pinned)",
                        {"type": "object"}, run, "external", timeout=timeout)
        schema = dict(listed.get("inputSchema") or {"type": "object", "properties": {}})
        return Tool(name, listed.get("description") or name, schema, run, "external",
                    tuple(schema.get("required", ())), timeout=timeout)

    async def call(self, key: str, name: str, arguments: dict[str, Any], *_: Any) -> Any:
        """A pipeline's tool stage: the recorded result (or error) of that stage's call."""
        return self._result(name, stage=True)

    def _result(self, name: str, stage: bool = False) -> Any:
        from .context import TOOL_CALL_KEY

        key = TOOL_CALL_KEY.get()
        queue = self.results.get(key) if key else None
        if not queue:
            raise RunError(f"replay: the recording has no result for this call of {name}")
        data = queue.popleft()
        if "error" not in data:
            return data.get("output")
        error = str(data.get("error"))
        if stage:
            raise RunError(error)
        raise _as_raised(name, error)


def _as_raised(name: str, error: str) -> BaseException:
    """The exception that makes the agent loop write ``error`` again for a call of ``name``."""
    if error.startswith(f"{name} failed: "):
        return RunError(error[len(name) + 9:])
    if error.startswith(f"{name} timed out after "):
        return TimeoutError()
    prefix = f"{name} raised "
    if error.startswith(prefix) and ": " in error[len(prefix):]:
        kind, message = error[len(prefix):].split(": ", 1)
        if kind.isidentifier():
            return type(kind, (Exception,), {})(message)
    return RunError(error)
