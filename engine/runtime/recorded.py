"""What a run's stream already holds about each agent invocation, for ``resume`` (and replay).

The stream is the source of truth: an agent invocation is named by its path (a member's
n-th call is ``member#n``, a stage visit ``stage#n``, a forEach item ``stage[i]``), so the
events at one path are one invocation's. ``Recorded`` indexes them once per execution:
whether the invocation started, how it ended, and its model turns, each with the tool
calls it asked for and the results that came back. The agent loop plays those turns
instead of calling the model or the tools again, and goes live at the first turn the
stream does not hold (a model call in flight is issued again; a tool call without its
result runs again, marked ``retried``).

Tool calls are matched to results within their turn (a provider may reuse a call id
across turns, the tests' OpenAI stub does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class RecordedCall:
    called: bool = False                 # its ``tool.call`` is in the stream
    result: dict[str, Any] | None = None  # the ``tool.result`` data (``output`` or ``error``)


@dataclass(slots=True)
class RecordedTurn:
    """One model reply (``message.completed``) and what its tool calls returned."""

    data: dict[str, Any]
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    calls: dict[str, RecordedCall] = field(default_factory=dict)


@dataclass(slots=True)
class Invocation:
    started: bool = False
    completed: bool = False
    output: Any = None
    failed: str | None = None
    turns: list[RecordedTurn] = field(default_factory=list)
    handed_back: bool = False            # a delegate's return (``handoff`` with ``summary``) is on record
    handed_off: bool = False             # a handoff-mode transfer (``handoff`` with ``reason``) is on record
    direct_call: bool = False            # a tool stage's ``tool.call`` (no model turn) is in the stream


class Recorded:
    """The invocations of a run's earlier executions, by path (empty for a fresh run)."""

    __slots__ = ("by_path",)

    def __init__(self, events: list[Any] | None = None):
        self.by_path: dict[str, Invocation] = {}
        for event in events or ():
            self._add(event)

    def __bool__(self) -> bool:
        return bool(self.by_path)

    def get(self, path: str) -> Invocation | None:
        return self.by_path.get(path)

    def _add(self, event: Any) -> None:
        kind = event.type
        if not (kind.startswith(("agent.", "message.completed", "tool.", "usage", "handoff"))):
            return
        inv = self.by_path.get(event.path)
        if inv is None:
            inv = self.by_path[event.path] = Invocation()
        data = event.data or {}
        if kind == "agent.started":
            inv.started = True
        elif kind == "agent.completed":
            inv.completed, inv.output = True, data.get("output")
        elif kind == "agent.failed":
            inv.failed = data.get("error") or "failed"
        elif kind == "message.completed":
            inv.turns.append(RecordedTurn(data))
        elif kind == "usage" and inv.turns:
            turn = inv.turns[-1]
            turn.tokens_in, turn.tokens_out = data.get("tokens_in", 0), data.get("tokens_out", 0)
            turn.cost_usd = data.get("cost_usd", 0.0)
        elif kind == "tool.call":
            if inv.turns:
                inv.turns[-1].calls.setdefault(str(data.get("id")), RecordedCall()).called = True
            else:   # a pipeline's tool stage calls with no model turn
                inv.direct_call = True
        elif kind == "tool.result" and inv.turns:
            inv.turns[-1].calls.setdefault(str(data.get("id")), RecordedCall()).result = data
        elif kind == "handoff" and "summary" in data:
            inv.handed_back = True
        elif kind == "handoff":
            inv.handed_off = True


def recorded_of(ctx: Any) -> Recorded:
    """The run's recorded invocations, indexed once per execution (empty for a fresh run)."""
    cached = getattr(ctx, "_recorded", None)
    if cached is None or cached[0] is not ctx.history:
        cached = (ctx.history, Recorded(ctx.history))
        ctx._recorded = cached
    return cached[1]


def idempotency_key(run_id: str, path: str, call_id: str) -> str:
    """``<run>:<path>:<call id>``: the same for a call and its retry after a resume (CONTRACT §8)."""
    return f"{run_id}:{path}:{call_id}"
