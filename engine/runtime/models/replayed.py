"""The replay model: every reply comes from a recorded stream, by path and order; no network.

A ``Tape`` indexes one execution segment's model turns by path (an agent invocation is
named by its path, so the n-th model call at a path is that invocation's n-th turn): the
``message.completed`` data, the ``message.delta`` chunks streamed before it, and the
``usage`` that followed. ``ReplayedModel`` plays them in order, whatever request it is sent;
the agent loop records the request's hash, which is how a replay tells that a changed
instruction changed what the model would have been asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentform.engine.errors import RunError
from agentform.specs.model import SCRIPTED

from . import ModelReply, OnDelta, ToolCall


class ReplayExhausted(RunError):
    """The replay asked a path for more model turns than the recording holds (it diverged)."""


@dataclass(slots=True)
class TapeTurn:
    data: dict[str, Any]                         # the recorded message.completed data
    deltas: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0


class Tape:
    """Recorded model turns by path, each path played from its first turn on."""

    def __init__(self, events: list[Any]):
        self.turns: dict[str, list[TapeTurn]] = {}
        self.cursor: dict[str, int] = {}
        deltas: dict[str, list[str]] = {}
        for event in events:
            kind, path, data = event.type, event.path, event.data or {}
            if kind == "message.delta":
                deltas.setdefault(path, []).append(str(data.get("text", "")))
            elif kind == "message.completed":
                self.turns.setdefault(path, []).append(TapeTurn(data, deltas.pop(path, [])))
            elif kind == "usage" and self.turns.get(path):
                turn = self.turns[path][-1]
                turn.tokens_in, turn.tokens_out = data.get("tokens_in", 0), data.get("tokens_out", 0)
                turn.cost_usd = data.get("cost_usd", 0.0)

    def next(self, path: str) -> TapeTurn | None:
        index = self.cursor.get(path, 0)
        turns = self.turns.get(path, ())
        if index >= len(turns):
            return None
        self.cursor[path] = index + 1
        return turns[index]


class ReplayedModel:
    """Plays Model ``key``'s recorded replies; reads as scripted when the Model was, so the agent
    loop builds (and hashes) the same request as when the run was recorded."""

    def __init__(self, key: str, node: Any, tape: Tape):
        self.key = key
        self.name = node.name
        self.tape = tape
        self.plays_script = node.spec.model == SCRIPTED

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                       agent: str, path: str, on_delta: OnDelta | None) -> ModelReply:
        turn = self.tape.next(path)
        if turn is None:
            raise ReplayExhausted(f"replay: the recording has no further model reply for agent '{agent}' "
                                  f"at {path or agent}")
        if on_delta is not None:
            for text in turn.deltas:
                on_delta(text)
        data = turn.data
        calls = [ToolCall(str(c.get("id")), c.get("name", ""), c.get("arguments"))
                 for c in data.get("tool_calls") or ()]
        script = data.get("script")
        return ModelReply(data.get("content"), calls, turn.tokens_in, turn.tokens_out, turn.cost_usd,
                          data.get("model") or "", tuple(script) if script else None)
