"""Budgets: one type for agent invocations, team calls, pipelines and the run (CONTRACT section 7).

A ``Scope`` holds one Budget and what was spent under it; scopes form a chain (run ⊃ team
call ⊃ agent invocation ...) carried in a context variable, so concurrent member calls each
see their own chain. Usage is charged to every scope of the chain after each model reply;
the first scope over a limit raises ``BudgetExceeded`` (``budget.exceeded`` is emitted once
per scope). ``timeout`` is enforced by the caller with ``asyncio.timeout(scope.timeout)``.
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

    __slots__ = ("holder", "path", "parent", "limits", "timeout", "turns", "tokens", "cost_usd", "steps",
                 "exceeded", "depth")

    def __init__(self, holder: str, budget: Any, parent: Scope | None, path: str = ""):
        self.holder = holder
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
    """Count one pipeline step against every enclosing scope that has ``maxSteps``."""
    crossed = None
    for s in current.get().chain() if current.get() is not None else ():
        s.steps += 1
        for name, _used_attr, limit in s.limits:
            if name == "maxSteps" and s.steps > limit:
                crossed = (s, (name, limit, s.steps))
    if crossed is not None:
        raise _exceeded(crossed[0], crossed[1], emit)


def timeout_error(scope: Scope, emit: Emit) -> BudgetExceeded:
    """The error for a scope whose ``timeout`` ran out."""
    return _exceeded(scope, ("timeout", scope.timeout or 0.0, scope.timeout or 0.0), emit)
