"""Built-in tools: in-process MCP servers, reached through the same client path as ToolServers.

A built-in is registered here by name (what an Agent's ``tools: [{builtin: NAME}]`` says)
with the tool names it offers and a factory, ``"module:function"``, that builds its
``MCPServer`` for one run: ``factory(ctx) -> MCPServer``. The run's ToolServers
(mcp_tools.py) start it under the key ``builtin:NAME`` like any server: list_tools, call_tool,
schema-checked arguments, errors back to the model, redaction of every result. The factory
is imported only when a run uses the built-in, so this module stays free of mcp (``validate``
and ``apply`` read the registry). An unregistered built-in is refused by ``check_tools``
before a run starts.

Which agent is calling travels as ``_meta["dev.agentform/caller"]``: a token the engine sets
per call (never the model), which the server exchanges for the caller's node, path and
budget scopes with ``take_caller``.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

KEY_PREFIX = "builtin:"
CALLER_META = "dev.agentform/caller"
# Per call: a built-in waits for nothing slow (command_agent returns at once); check_agent_status
# may wait, within this bound.
TIMEOUT = "10m"


@dataclass(frozen=True, slots=True)
class Builtin:
    """A registered built-in: its tool names and where its server factory lives."""

    name: str
    tools: tuple[str, ...]
    factory: str                      # "module:function", imported when a run first uses it


@dataclass(frozen=True, slots=True)
class BuiltinSpec:
    """What mcp_tools needs of a server's spec, for an in-process built-in."""

    name: str
    transport: str = "inproc"
    timeout: str = TIMEOUT
    tools: Any = None                 # no server-side allow/deny filter
    env: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    startup: str = "lazy"


_registry: dict[str, Builtin] = {}


def register(name: str, tools: tuple[str, ...], factory: str) -> None:
    """Make built-in ``name`` available to runs (the next issue's workspace and knowledge tools call this)."""
    _registry[name] = Builtin(name, tuple(tools), factory)


def available() -> list[str]:
    return sorted(_registry)


def get(name: str) -> Builtin | None:
    return _registry.get(name)


def tool_names() -> dict[str, tuple[str, ...]]:
    """Every registered built-in's tool names (for clash reports at apply)."""
    return {name: b.tools for name, b in _registry.items()}


def spec_for(key: str) -> BuiltinSpec | None:
    """The spec of server key ``builtin:NAME``, or None when ``key`` names no registered built-in."""
    if not key.startswith(KEY_PREFIX) or key[len(KEY_PREFIX):] not in _registry:
        return None
    return BuiltinSpec(key[len(KEY_PREFIX):])


def make_server(name: str, ctx: Any) -> Any:
    """Build built-in ``name``'s MCPServer for the run ``ctx``."""
    import importlib

    module, function = _registry[name].factory.split(":")
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    try:
        return getattr(importlib.import_module(module), function)(ctx)
    finally:
        # Building an MCPServer configures root logging (a rich handler at INFO): put it back.
        root.setLevel(level)
        root.handlers[:] = handlers


@dataclass(slots=True)
class Caller:
    """Who calls a built-in tool: the agent node, its path, its budget scopes at the call."""

    node: Any
    path: str
    scopes: tuple[Any, Any] = (None, None)   # (budget.current, budget.agent_scope)
    workspace: str | None = None             # graph key of the workspace around the caller


_callers: dict[str, Caller] = {}
_ids = itertools.count(1)


def enroll_caller(caller: Caller) -> str:
    """A one-call token for ``caller``, to send as ``_meta[CALLER_META]``."""
    token = f"c{next(_ids)}"
    _callers[token] = caller
    return token


def take_caller(meta: Any) -> Caller:
    """The caller a tool call's ``_meta`` names (each token is used once)."""
    token = (meta or {}).get(CALLER_META) if isinstance(meta, dict) else getattr(meta, CALLER_META, None)
    caller = _callers.pop(token, None) if isinstance(token, str) else None
    if caller is None:
        from mcp.server.mcpserver.exceptions import ToolError

        raise ToolError("built-in tools are called by the engine's agents only")
    return caller


def drop_caller(token: str) -> None:
    """Forget a token whose call never reached the server (timed out, cancelled)."""
    _callers.pop(token, None)


register("team-control",
         ("create_agent", "command_agent", "check_agent_status", "list_agents", "delete_agent",
          "interrupt_agent", "read_logs", "report_cost"),
         "agentform.engine.runtime.builtins.team_control:make_server")
register("workspace", ("read_file", "write_file", "list_files", "run_command"),
         "agentform.engine.runtime.builtins.workspace:make_server")
register("think", ("think",), "agentform.engine.runtime.builtins.think:make_server")
register("todo", ("todo_write", "todo_read"), "agentform.engine.runtime.builtins.todo:make_server")
register("memory", ("memory_set", "memory_get", "memory_list", "memory_delete"),
         "agentform.engine.runtime.builtins.memory:make_server")
register("fetch", ("fetch",), "agentform.engine.runtime.builtins.fetch:make_server")
# Reached through an Agent's ``tools: [{knowledge: NAME}]`` (not a ``builtin:`` entry): one tool
# however many bases the agent names (mcp_tools.tools_for).
register("knowledge", ("search_knowledge",), "agentform.engine.runtime.builtins.knowledge:make_server")
