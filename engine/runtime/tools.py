"""Tools an agent can call: the team edges (engine-native) and MCP tools (mcp_tools.py).

``ask_<member>(task)`` runs a member to completion; ``transfer_to_<member>(reason)`` hands
the conversation to a member; ``transfer_back(summary)`` returns it. Built-in tools are
in-process MCP servers (builtins/), knowledge bases' ``search_knowledge`` among them; a
built-in that is not registered there is refused by ``check_tools`` before the run starts,
so no run fails half-way for that reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentform.engine.errors import RunError
from agentform.engine.graph import TRANSFER_BACK, Graph, MemberEdge

if TYPE_CHECKING:
    from .context import RunContext

# run(ctx, caller path, arguments, conversation) -> output; ``conversation`` is what a
# delegate is handed (the caller's messages before this turn, without its instructions).
# Member tools (ask, transfer) take a fifth argument: which call of that member this is
# within the caller's invocation (1, 2, ...), so the n-th runs at ``<caller>/<member>#n``.
Runner = Callable[..., Awaitable[Any]]


@dataclass(slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: Runner
    kind: str = "external"            # ask | transfer | back | external
    required: tuple[str, ...] = field(default=())
    timeout: float | None = None      # external tools: seconds per call

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function definition the model sees."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}

    def check_arguments(self, arguments: Any) -> str | None:
        """An LLM-readable complaint about ``arguments``, or None when they fit."""
        if type(arguments) is dict and len(arguments) == 1 and self.kind != "external":
            value = arguments.get(self.required[0])  # the team edges' one text argument
            if type(value) is str:
                return None
        if not isinstance(arguments, dict):
            return f"the arguments of {self.name} must be a JSON object, got: {str(arguments)[:200]}"
        if self.kind == "external":
            return _schema_problem(self, arguments)
        missing = [name for name in self.required if name not in arguments]
        if missing:
            return f"{self.name} needs the argument(s): {', '.join(missing)}"
        props = self.parameters.get("properties", {})
        unknown = [name for name in arguments if name not in props]
        if unknown:
            return f"{self.name} has no argument(s) {', '.join(unknown)}; it takes: {', '.join(props) or 'none'}"
        for name, value in arguments.items():
            if props[name].get("type") == "string" and not isinstance(value, str):
                return f"argument '{name}' of {self.name} must be a string"
        return None


_validators: dict[int, tuple[dict, Any]] = {}


def _schema_problem(tool: Tool, arguments: dict[str, Any]) -> str | None:
    """The first way ``arguments`` break the tool's input schema, in words, or None."""
    cached = _validators.get(id(tool.parameters))
    if cached is None or cached[0] is not tool.parameters:
        import jsonschema

        cls = jsonschema.validators.validator_for(tool.parameters)
        cached = _validators[id(tool.parameters)] = (tool.parameters, cls(tool.parameters))
    error = next(iter(cached[1].iter_errors(arguments)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"bad arguments for {tool.name}{f' at {where}' if where else ''}: {error.message}"


def text_param(name: str, description: str) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "string", "description": description}},
            "required": [name]}


def check_tools(graph: Graph) -> None:
    """Refuse up front a graph whose agents use tools this version cannot run (a built-in that
    is not registered, the workspace tools with no workspace in the run)."""
    from . import builtins

    for key, agent in graph.agents.items():
        for use in agent.spec.tools:
            if use.builtin == "workspace" and not graph.workspaces:
                raise RunError(f"agent {key} uses the workspace tools, but nothing in this run has a workspace: "
                               "run it through a team or pipeline that declares `workspace:`")
            if use.builtin is not None and builtins.get(use.builtin) is None:
                what = f"builtin: {use.builtin}"
                raise RunError(
                    f"agent {key} uses {what} tools, which are not available yet in this version; "
                    f"toolServer (MCP) tools are, and the built-ins {', '.join(builtins.available())}")


def member_description(graph: Graph, edge: MemberEdge) -> str:
    if edge.kind == "Agent":
        agent = graph.agents[edge.target]
    else:
        agent = graph.agents[graph.teams[edge.target].manager]
    return agent.spec.description or f"the {edge.kind.lower()} {edge.name}"


_team_tools: dict[tuple[int, str], tuple[Graph, dict[str, Tool]]] = {}


def team_tools(graph: Graph, team_key: str) -> dict[str, Tool]:
    """The manager's tools in a call of team ``team_key``: one ask_* or transfer_to_* per member.

    Made once per graph (graphs are immutable); callers must not change the returned dict.
    """
    cached = _team_tools.get((id(graph), team_key))
    if cached is not None and cached[0] is graph:
        return cached[1]
    from .team import delegate_to

    tools: dict[str, Tool] = {}
    for edge in graph.teams[team_key].members:
        about = member_description(graph, edge)
        if edge.mode == "orchestrate":
            kind = "agent" if edge.kind == "Agent" else "team"

            async def ask(ctx: RunContext, path: str, args: dict, conversation: list, visit: int,
                          _kind=kind, _target=edge.target) -> Any:
                return await ctx.call_target(_kind, _target, args["task"], path, visit)

            tools[edge.tool] = Tool(edge.tool, f"Ask {edge.name} to do a task and wait for its answer. {about}",
                                    text_param("task", "what to do, with everything it needs to know"),
                                    ask, "ask", ("task",))
        else:
            async def transfer(ctx: RunContext, path: str, args: dict, conversation: list, visit: int,
                               _edge=edge) -> Any:
                return await delegate_to(ctx, _edge, args["reason"], conversation, path, visit)

            tools[edge.tool] = Tool(edge.tool, f"Hand the conversation over to {edge.name}. {about}",
                                    text_param("reason", "why you hand over, and what is expected"),
                                    transfer, "transfer", ("reason",))
    _team_tools[(id(graph), team_key)] = (graph, tools)
    return tools


async def _back(ctx: RunContext, path: str, args: dict, conversation: list) -> Any:
    return args["summary"]


BACK = Tool(TRANSFER_BACK, "Return the conversation to the agent that handed it to you, with a summary.",
            text_param("summary", "what you did and found"), _back, "back", ("summary",))


def back_tool() -> Tool:
    """``transfer_back(summary)`` for an agent that was handed a conversation."""
    return BACK
