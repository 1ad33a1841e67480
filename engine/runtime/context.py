"""What executors of a run get: the graph, the stream, budgets, and calls into agents, teams, pipelines.

One ``RunContext`` per run execution (a fresh run or a resume). The agent loop, teams and
the pipeline executor reach the outside world only through it: events go through ``emit``,
nested targets through ``call_target``, pipeline steps through ``charge_step``, MCP tools
through ``tool_servers()`` / ``call_tool``; ``close`` releases what the run holds.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentform.engine.errors import RunError
from agentform.engine.graph import Graph
from agentform.engine.store.base import Event
from agentform.engine.workspaces.rooms import CURRENT as WORKSPACE  # the workspace around the code

from . import budget as budgets

if TYPE_CHECKING:
    from agentform.engine.events import RunStream


# The idempotency key of the external tool call in progress (``<run>:<path>:<call id>``); MCP
# tools send it as ``params._meta["dev.agentform/idempotency-key"]`` (mcp_tools.py).
TOOL_CALL_KEY: ContextVar[str | None] = ContextVar("agentform_tool_call_key", default=None)

# What agents inside a Team or Pipeline read as ``vars`` and ``params`` in their instructions:
# (vars merged from the outermost container in, the innermost pipeline's params). Set around
# a team or pipeline call; tasks made inside copy it, so concurrent members see their own.
TEMPLATE_SCOPE: ContextVar[tuple[dict[str, Any], dict[str, Any]]] = ContextVar(
    "agentform_template_scope", default=({}, {}))


def enter_scope(vars: dict[str, Any] | None, params: dict[str, Any] | None = None) -> Any:
    """Make ``vars`` (shadowing the enclosing ones) and ``params`` (when given) visible to agents
    inside; returns the token to reset, or None when nothing changes."""
    if not vars and params is None:
        return None
    outer_vars, outer_params = TEMPLATE_SCOPE.get()
    return TEMPLATE_SCOPE.set(({**outer_vars, **vars} if vars else outer_vars,
                               outer_params if params is None else params))


def leave_scope(token: Any) -> None:
    if token is not None:
        TEMPLATE_SCOPE.reset(token)


class RunWaiting(Exception):
    """Control flow, not an error: an executor parks the run (e.g. for an approval); exit code 3."""

    def __init__(self, reason: str = "waiting", data: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.data = data or {}


class Now(dict):
    """The run's start time for templates: ``{{ now }}`` (ISO), ``now.date``, ``now.time``, ``now.iso``, ``now.timestamp``."""

    def __str__(self) -> str:
        return self["iso"]


def now_context(started_at: datetime) -> Now:
    return Now(iso=started_at.isoformat(), date=started_at.date().isoformat(),
               time=started_at.strftime("%H:%M:%S"), timestamp=started_at.timestamp(),
               year=started_at.year)


def join_path(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def visit_name(name: str, visit: int) -> str:
    """A path segment for the ``visit``-th call of ``name`` within one parent: ``name``, ``name#2``, ..."""
    return name if visit <= 1 else f"{name}#{visit}"


@dataclass
class Limits:
    """Process-wide knobs of the agent loop (overridable in tests)."""

    tool_timeout: float = 600.0


class RunContext:
    """The executing run: identity, pinned graph, stream, budgets, nested calls."""

    def __init__(self, *, run_id: str, graph: Graph, started_at: datetime, stream: RunStream,
                 home: Path, store: Any = None, history: list[Event] | None = None,
                 thread_messages: list[dict[str, Any]] | None = None,
                 script_cursors: dict[tuple[str, str], int] | None = None):
        self.run_id = run_id
        self.graph = graph
        self.started_at = started_at
        self.history: list[Event] = history or []
        self.home = Path(home)
        self.store = store
        self.thread_messages = thread_messages or []
        self.run_input = ""   # the run's input as text ({{ run.input }}), set when it is dispatched
        self.workspace_locks: Any = None   # engine/workspaces/lock.HeldLocks while executing
        self.script_cursors: dict[tuple[str, str], int] = script_cursors or {}
        self.limits = Limits()
        self._stream = stream
        self._models: dict[str, Any] = {}
        self._now: Now | None = None
        self._budgets: dict[str, Any] = {}
        self._tool_servers: Any = None

    # -- the stream ---------------------------------------------------------------------------
    def emit(self, type: str, path: str, data: dict[str, Any]) -> None:
        """Append one event to the run's stream (seq assigned by the writer, persisted in order)."""
        self._stream.emit(type, path, data)

    async def durable(self) -> None:
        """Wait until every event emitted so far is persisted (before an external side effect)."""
        await self._stream.durable()

    def add_usage(self, tokens_in: int, tokens_out: int, cost_usd: float) -> None:
        self._stream.add_usage(tokens_in, tokens_out, cost_usd)

    # -- nested targets ---------------------------------------------------------------------------
    async def call_target(self, kind: Literal["agent", "team", "pipeline"], key: str, task: Any,
                          parent_path: str, visit: int = 1, **agent_options: Any) -> Any:
        """Run an agent, team or pipeline of this graph to completion and return its output;
        ``visit`` > 1 names the n-th call of an agent or team within one parent (``name#n``);
        ``agent_options`` (``output``, ``extra_instructions``) are an agent stage's overrides."""
        if kind == "agent":
            node = self.graph.agents.get(key)
            if node is None:
                raise RunError(f"agent {key} is not part of this run's graph")
            return await _executors().run_agent(self, key, _task_text(task),
                                                join_path(parent_path, visit_name(node.name, visit)),
                                                **agent_options)
        if kind == "team":
            node = self.graph.teams.get(key)
            if node is None:
                raise RunError(f"team {key} is not part of this run's graph")
            return await _executors().run_team(self, key, _task_text(task),
                                               join_path(parent_path, visit_name(node.name, visit)))
        if kind == "pipeline":
            return await self.run_pipeline(key, task, parent_path)
        raise RunError(f"cannot call a {kind!r}")

    async def run_pipeline(self, key: str, task: Any, parent_path: str, params: dict | None = None) -> Any:
        """A pipeline of this graph under its own budget scope (P's executor does the stages)."""
        from . import params as pipeline_params
        from . import pipeline

        node = self.graph.pipelines.get(key)
        if node is None:
            raise RunError(f"pipeline {key} is not part of this run's graph")
        if params is None:
            raw = task if isinstance(task, dict) else {}
            params = pipeline_params.coerce_params(node, raw, None if isinstance(task, dict) else task)
        path = join_path(parent_path, node.name)
        room = WORKSPACE.set(node.workspace) if node.workspace else None
        try:
            return await self.in_scope(path, f"pipeline/{node.name}", node.spec.budget,
                                       lambda: pipeline.run_pipeline(self, key, params, parent_path))
        finally:
            if room is not None:
                WORKSPACE.reset(room)

    # -- budgets ------------------------------------------------------------------------------
    async def in_scope(self, path: str, holder: str, budget: Any, work, *, agent: bool = False) -> Any:
        """Run ``work()`` under a new budget scope (and its timeout) nested in the current one.

        ``holder`` names who holds the budget (``agent/researcher``, ``team/research``, ...);
        an agent's scope (``agent=True``) counts that invocation's own model turns only.
        """
        var = budgets.agent_scope if agent else budgets.current
        if not budgets.has_limits(budget):
            if agent and budgets.agent_scope.get() is not None:
                token = var.set(None)  # a member without a budget: not charged to its caller's
                try:
                    return await work()
                finally:
                    var.reset(token)
            return await work()
        scope = budgets.Scope(holder, budget, None if agent else budgets.current.get(), path)
        token = var.set(scope)
        try:
            if scope.timeout is None:
                return await work()
            timer = asyncio.timeout(scope.timeout)
            try:
                async with timer:
                    return await work()
            except TimeoutError:
                if timer.expired():
                    raise budgets.timeout_error(scope, self.emit) from None
                raise
        finally:
            var.reset(token)

    def charge(self, *, turns: int = 0, tokens: int = 0, cost_usd: float = 0.0) -> None:
        """Charge one model reply to every enclosing budget (raises BudgetExceeded)."""
        budgets.charge(self.emit, turns=turns, tokens=tokens, cost_usd=cost_usd)

    def check_turn(self) -> None:
        budgets.check_turn(self.emit)

    def charge_step(self, path: str) -> None:
        """Count a pipeline step against every enclosing ``maxSteps`` (raises BudgetExceeded)."""
        budgets.charge_step(self.emit)

    def charge_calls(self, calls: list[Any], tools: dict[str, Any]) -> None:
        """Count one reply's tool calls against the agent's ``maxSteps`` and its member calls
        (``ask_*``, ``transfer_to_*``) against the enclosing teams' (raises BudgetExceeded)."""
        members = 0
        for call in calls:
            tool = tools.get(call.name)
            if tool is not None and tool.kind in ("ask", "transfer", "handoff"):
                members += 1
        budgets.charge_calls(self.emit, len(calls), members)

    def budget_of(self, raw: dict[str, Any] | None) -> Any:
        """A team's budget (kept as plain data in the graph) as a Budget."""
        if not raw:
            return None
        key = repr(sorted(raw.items()))
        cached = self._budgets.get(key)
        if cached is None:
            from agentform.specs import Budget

            cached = self._budgets[key] = Budget.model_validate(raw)
        return cached

    # -- tool servers -------------------------------------------------------------------------------
    def tool_servers(self) -> Any:
        """The run's MCP tool servers (mcp is imported only when a run uses one)."""
        if self._tool_servers is None:
            from .mcp_tools import ToolServers

            self._tool_servers = ToolServers(self)
        return self._tool_servers

    async def call_tool(self, server: str, name: str, arguments: dict[str, Any], path: str) -> Any:
        """Call tool ``name`` of MCP server ``server`` (a graph key) directly, as a pipeline ``tool``
        stage does: ``tool.call`` (durable first) and ``tool.result`` at ``path``; RunError on failure."""
        from .recorded import idempotency_key, recorded_of

        servers = self.tool_servers()
        call_id = f"call_{path}"
        key = idempotency_key(self.run_id, path, call_id)
        data = {"id": call_id, "name": name, "arguments": arguments, "server": server, "idempotencyKey": key}
        past = recorded_of(self).get(path) if self.history else None
        if past is not None and past.direct_call:
            data["retried"] = True   # called before a resume with no result on record
        self.emit("tool.call", path, data)
        await self.durable()
        marked = TOOL_CALL_KEY.set(key)
        try:
            output = await servers.call(server, name, arguments)
        except Exception as exc:
            self.emit("tool.result", path, {"id": call_id, "name": name, "error": str(exc)})
            raise RunError(f"tool {name} of {server} failed: {exc}") from None
        finally:
            TOOL_CALL_KEY.reset(marked)
        self.emit("tool.result", path, {"id": call_id, "name": name, "output": output})
        return output

    async def close(self) -> None:
        """Release what the run holds (its tool servers, then its workspaces' locks)."""
        try:
            if self._tool_servers is not None:
                await self._tool_servers.close()
        finally:
            locks, self.workspace_locks = self.workspace_locks, None
            if locks is not None:
                locks.release()

    async def open_workspaces(self, holder: str, *, wait: bool = True) -> None:
        """Lock and provision the graph's workspaces (engine/workspaces/rooms.py); a wait for
        another run's lock is shown as ``workspace.waiting`` naming the holder."""
        if not self.graph.workspaces:
            return
        from agentform.engine.workspaces.rooms import open_workspaces

        def waiting(workspace: str, other: str) -> None:
            self.emit("workspace.waiting", "", {"workspace": workspace, "holder": other})

        self.workspace_locks = await open_workspaces(self.graph, self.home, holder, wait=wait, on_wait=waiting,
                                                     held=self.workspace_locks, store=self.store)

    # -- models, templates, workspaces --------------------------------------------------------------
    def model(self, key: str) -> Any:
        """The model client for a Model key of this graph (one per run)."""
        client = self._models.get(key)
        if client is None:
            from .models import make_model

            client = self._models[key] = make_model(self, key)
        return client

    def workspace_path(self, key: str | None) -> str | None:
        """The folder of a workspace of this graph as its tools see it (default: the one in
        effect here, else the run target's), or None."""
        from agentform.engine.workspaces.rooms import config_for, root_workspace

        key = key or WORKSPACE.get() or root_workspace(self.graph)
        if not key or key not in self.graph.workspaces:
            return None
        from agentform.engine.workspaces.backend import backend_for

        config = config_for(self.graph, key, self.home)
        return backend_for(config.backend).path(config)

    def template_context(self, agent_name: str, workspace: str | None = None) -> dict[str, Any]:
        if self._now is None:
            self._now = now_context(self.started_at)
        vars, params = TEMPLATE_SCOPE.get()
        return {"agent": {"name": agent_name}, "now": self._now,
                "run": {"id": self.run_id, "input": self.run_input},
                "workspace": {"path": self.workspace_path(workspace) or ""}, "vars": vars, "params": params}


class _Executors:
    """The agent and team executors, imported on first use (they import this module)."""

    def __init__(self) -> None:
        from .agent_loop import run_agent
        from .team import run_team

        self.run_agent = run_agent
        self.run_team = run_team


_loaded: _Executors | None = None


def _executors() -> _Executors:
    global _loaded
    if _loaded is None:
        _loaded = _Executors()
    return _loaded


def _task_text(task: Any) -> str:
    if task is None:
        return ""
    if isinstance(task, str):
        return task
    import json

    return json.dumps(task, ensure_ascii=False, default=str)
