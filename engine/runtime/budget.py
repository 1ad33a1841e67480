"""Budgets: one type for agent invocations, team calls, pipelines and the run (CONTRACT section 7).

A ``Scope`` holds one Budget and what was spent under it; scopes form a chain (run ⊃ team
call ⊃ agent invocation ...) carried in a context variable, so concurrent member calls each
see their own chain. Usage is charged to every scope of the chain after each model reply;
the first scope over a limit raises ``BudgetExceeded`` (``budget.exceeded`` is emitted once
per scope). ``timeout`` is enforced by the caller with ``asyncio.timeout(scope.timeout)``.

What ``maxSteps`` counts depends on the holder: an agent's, the tool calls of that
invocation; a team's, the member calls (``ask_*``, ``transfer_to_*``) made within the team
call, its nested teams' included; a pipeline's, stage runs, loop visits and forEach items.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from agentform.engine.errors import BudgetExceeded

_LIMITS = (("max_turns", "maxTurns", "turns"), ("max_tokens", "maxTokens", "tokens"),
           ("max_cost_usd", "maxCostUsd", "cost_usd"), ("max_steps", "maxSteps", "steps"))


class Scope:
    """Spending under one budget holder (an agent invocation, a team call, a pipeline, the run)."""

    __slots__ = ("holder", "kind", "path", "parent", "limits", "timeout", "turns", "tokens", "cost_usd",
                 "steps", "max_steps", "exceeded", "depth")

    def __init__(self, holder: str, budget: Any, parent: Scope | None, path: str = ""):
        self.holder = holder
        self.kind = holder.split("/", 1)[0]   # agent | team | pipeline: what a step is here
        self.path = path
        self.parent = parent
        self.depth = 0 if parent is None else parent.depth + 1
        self.limits: list[tuple[str, str, float]] = []
        self.timeout: float | None = None
        if budget is not None:
            for attr, name, used in _LIMITS:
                value = getattr(budget, attr, None)
                if value is not None:
                    self.limits.append((name, used, value))
            if getattr(budget, "timeout", None):
                from agentform.specs import parse_duration

                self.timeout = parse_duration(budget.timeout)
        self.turns = 0
        self.tokens = 0
        self.cost_usd = 0.0
        self.steps = 0
        self.max_steps: int | None = getattr(budget, "max_steps", None)
        self.exceeded: str | None = None

    def chain(self):
        scope: Scope | None = self
        while scope is not None:
            yield scope
            scope = scope.parent

    def within(self, ancestor: Scope) -> bool:
        """True when this scope is ``ancestor`` or nested under it."""
        return any(s is ancestor for s in self.chain())

    def _over(self) -> tuple[str, float, float] | None:
        # maxTurns is checked before a call (check_turn), maxSteps when a step starts.
        for name, used_attr, limit in self.limits:
            if name in ("maxTokens", "maxCostUsd"):
                used = getattr(self, used_attr)
                if used > limit:
                    return name, limit, used
        return None


current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("agentform_scope", default=None)
# An agent's budget covers its own model turns only (not its members'), so the agent
# invocation's scope is kept apart from the chain of team/pipeline/run scopes.
agent_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("agentform_agent", default=None)


def _charged() -> list[Scope]:
    scopes = list(current.get().chain()) if current.get() is not None else []
    own = agent_scope.get()
    if own is not None:
        scopes.insert(0, own)
    return scopes

Emit = Callable[[str, str, dict], None]


def has_limits(budget: Any) -> bool:
    return budget is not None and any(
        getattr(budget, attr, None) is not None for attr in ("max_turns", "max_tokens", "max_cost_usd", "timeout", "max_steps"))


def _exceeded(scope: Scope, found: tuple[str, float, float], emit: Emit) -> BudgetExceeded:
    name, limit, used = found
    if scope.exceeded is None:
        scope.exceeded = name
        emit("budget.exceeded", scope.path,
             {"budget": name, "holder": scope.holder, "limit": limit, "used": used})
    error = BudgetExceeded(name, scope.holder, limit, used)
    error.scope = scope  # type: ignore[attr-defined]
    return error


def charge(emit: Emit, *, turns: int = 0, tokens: int = 0, cost_usd: float = 0.0) -> None:
    """Add one model reply's usage to the agent's scope and every enclosing scope; raise on the outermost crossing."""
    crossed: tuple[Scope, tuple[str, float, float]] | None = None
    for s in _charged():
        s.turns += turns
        s.tokens += tokens
        s.cost_usd += cost_usd
        if s.limits:
            found = s._over()
            if found is not None:
                crossed = (s, found)
    if crossed is not None:
        raise _exceeded(crossed[0], crossed[1], emit)


def check_turn(emit: Emit) -> None:
    """Before a model call: refuse the turn if any maxTurns in force is already used up."""
    for s in _charged():
        if s.exceeded is not None:
            raise _exceeded(s, (s.exceeded, 0, 0), emit)
        for name, _used_attr, limit in s.limits:
            if name == "maxTurns" and s.turns >= limit:
                raise _exceeded(s, (name, limit, s.turns + 1), emit)


def charge_step(emit: Emit) -> None:
    """Count one pipeline step (a stage run, visit or item) against every enclosing pipeline's ``maxSteps``."""
    _count_steps(current.get(), "pipeline", 1, emit)


def charge_calls(emit: Emit, calls: int, member_calls: int) -> None:
    """Count one model reply's tool calls against the agent's ``maxSteps`` and its member calls
    against every enclosing team's; raise before any of them runs when that goes over a limit."""
    crossed = None
    if calls:
        crossed = _count_steps(agent_scope.get(), "agent", calls, None)
    if member_calls:
        crossed = _count_steps(current.get(), "team", member_calls, None) or crossed
    if crossed is not None:
        raise _exceeded(crossed[0], crossed[1], emit)


def _count_steps(scope: Scope | None, kind: str, n: int, emit: Emit | None):
    """Add ``n`` steps to the scopes of ``kind`` in the chain from ``scope``; the outermost
    crossing, raised when ``emit`` is given, else returned."""
    crossed = None
    while scope is not None:
        if scope.kind == kind:
            scope.steps += n
            if scope.max_steps is not None and scope.steps > scope.max_steps:
                crossed = (scope, ("maxSteps", scope.max_steps, scope.steps))
        scope = scope.parent
    if crossed is not None and emit is not None:
        raise _exceeded(crossed[0], crossed[1], emit)
    return crossed


def timeout_error(scope: Scope, emit: Emit) -> BudgetExceeded:
    """The error for a scope whose ``timeout`` ran out."""
    return _exceeded(scope, ("timeout", scope.timeout or 0.0, scope.timeout or 0.0), emit)
