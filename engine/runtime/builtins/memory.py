"""memory: key/value notes an agent keeps across runs, per namespace and team.

The scope is the caller's team (``team/NAME``: the team it manages or is a member of, by its
path in the run), or ``agent/NAME`` for an agent outside any team (run on its own, or a
pipeline stage). The notes live in the state store (engine/store/memory.py), so every run of
the team reads what earlier runs wrote; ``agentform memory team/NAME`` lists them.

Every write is an event: the ``tool.call`` of ``memory_set``/``memory_delete`` is durable in
the run's stream before the store is written (as for any tool with a side effect), and its
``tool.result`` follows. A resumed run serves the calls the stream holds from it and runs an
unfinished one again (a write of the same value); replay serves every read and write from
the stream and touches no store. Values pass the redactor before they are stored.
Bounded: keys of ``MAX_KEY`` characters, values of ``MAX_VALUE``, ``MAX_ENTRIES`` per scope.
"""

import asyncio
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from agentform.engine.redaction import redact_text
from agentform.engine.store.memory import MemoryFull

from . import Caller, take_caller

MAX_KEY = 200
MAX_VALUE = 16_384
MAX_ENTRIES = 1000
LIST_LIMIT = 200        # entries one memory_list returns
PREVIEW = 200           # characters of each value memory_list shows
TOOLS = ("memory_set", "memory_get", "memory_list", "memory_delete")

Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY, description="the note's name")]


def scope_of(graph: Any, caller: Caller) -> tuple[str, str]:
    """(namespace, scope) of a caller: its team by its path, else the agent itself."""
    node = caller.node
    key = f"{node.namespace}/{node.name}"
    names = [s.split("#", 1)[0].split("[", 1)[0] for s in caller.path.split("/") if s]
    if names:
        for team in graph.teams.values():   # a manager speaks at its team's path
            if team.manager == key and team.name == names[-1]:
                return team.namespace, f"team/{team.name}"
    if len(names) >= 2:
        for team in graph.teams.values():   # a member runs at <team path>/<member>
            if team.name == names[-2] and any(e.kind == "Agent" and e.target == key for e in team.members):
                return team.namespace, f"team/{team.name}"
    return node.namespace, f"agent/{node.name}"


def _check_key(key: str) -> None:
    if not key.isprintable():
        raise ToolError("a memory key is printable text (no control characters or line breaks)")


def make_server(ctx: Any) -> MCPServer:
    server = MCPServer("memory")

    def where(context: Context) -> tuple[str, str]:
        if ctx.store is None:
            raise ToolError("memory needs the state store, which this run has none of")
        return scope_of(ctx.graph, take_caller(context.request_context.meta))

    @server.tool(description="Remember `value` under `key` for your team's later runs (replaces what "
                 f"the key held). Keys up to {MAX_KEY} characters, values up to {MAX_VALUE}, "
                 f"{MAX_ENTRIES} keys per team.")
    async def memory_set(key: Key, value: Annotated[str, Field(max_length=MAX_VALUE)],
                         context: Context) -> dict[str, Any]:
        namespace, scope = where(context)
        _check_key(key)
        try:
            created = await asyncio.to_thread(ctx.store.memory_put, namespace, scope, key, redact_text(value),
                                              run_id=ctx.run_id, max_entries=MAX_ENTRIES)
        except MemoryFull as exc:
            raise ToolError(str(exc)) from None
        return {"scope": scope, "key": key, "created": created}

    @server.tool(description="What your team remembered under `key` (found: false when nothing).")
    async def memory_get(key: Key, context: Context) -> dict[str, Any]:
        namespace, scope = where(context)
        entry = await asyncio.to_thread(ctx.store.memory_get, namespace, scope, key)
        if entry is None:
            return {"scope": scope, "key": key, "found": False}
        return {"scope": scope, "key": key, "found": True, "value": entry.value}

    @server.tool(description=f"Your team's memory keys (those starting with `prefix`), at most {LIST_LIMIT}, "
                 f"each with the first {PREVIEW} characters of its value; read one whole with memory_get.")
    async def memory_list(context: Context,
                          prefix: Annotated[str, Field(max_length=MAX_KEY)] = "") -> dict[str, Any]:
        namespace, scope = where(context)
        entries = await asyncio.to_thread(ctx.store.memory_list, namespace, scope, prefix, LIST_LIMIT + 1)
        shown = [{"key": e.key, "value": e.value[:PREVIEW], **({"cut": True} if len(e.value) > PREVIEW else {})}
                 for e in entries[:LIST_LIMIT]]
        return {"scope": scope, "entries": shown, "more": len(entries) > LIST_LIMIT}

    @server.tool(description="Forget `key` in your team's memory.")
    async def memory_delete(key: Key, context: Context) -> dict[str, Any]:
        namespace, scope = where(context)
        deleted = await asyncio.to_thread(ctx.store.memory_delete, namespace, scope, key)
        return {"scope": scope, "key": key, "deleted": deleted}

    return server
