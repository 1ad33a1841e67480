"""Models: one async interface, two implementations (``scripted`` offline, litellm online).

``complete(messages, tools, *, agent, path, on_delta)`` takes OpenAI-style chat messages and
tool definitions, calls ``on_delta(text)`` for each streamed chunk, and returns a
``ModelReply``. Provider errors that survive retries and fallbacks raise ``ModelError``.
litellm is imported only by ``litellm_model`` and only when a graph uses a non-scripted Model.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agentform.engine.errors import RunError
from agentform.specs.model import SCRIPTED

if TYPE_CHECKING:
    from agentform.engine.graph import Graph

    from ..context import RunContext

OnDelta = Callable[[str], None]


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: Any          # a dict when the model sent valid JSON, else the raw text


@dataclass(slots=True)
class ModelReply:
    content: Any            # text, or data (a mapping/list) for structured output; None with tool calls only
    tool_calls: list[ToolCall] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    model: str = ""
    script: tuple[str, str, int] | None = None   # scripted: (model key, script key, turn index)


class ModelError(RunError):
    """The provider failed (after retries and fallbacks); the message never holds a secret."""


class ScriptExhausted(RunError):
    """A scripted agent ran out of turns: always fails the run (never a tool error)."""


class Model(Protocol):
    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                       agent: str, path: str, on_delta: OnDelta | None) -> ModelReply: ...


def make_model(ctx: RunContext, key: str) -> Model:
    """The client for Model ``key`` of the run's graph (a replay serves the recorded replies)."""
    node = ctx.graph.models.get(key)
    if node is None:
        raise RunError(f"model {key} is not part of this run's graph")
    tape = getattr(ctx, "replay_tape", None)
    if tape is not None:
        from .replayed import ReplayedModel

        return ReplayedModel(key, node, tape)
    if node.spec.model == SCRIPTED:
        from .scripted import ScriptedModel

        return ScriptedModel(key, node, ctx.script_cursors)
    from .litellm_model import LitellmModel

    return LitellmModel(ctx, key)


def request_hash(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    """``requestHash`` of ``message.completed``: the system prompt, messages and tool schemas
    sent to the model, canonical JSON, SHA-256 (the first 128 bits, hex). Replay compares it to
    tell a changed request (a changed instruction, member list or tool result) from a changed reply."""
    text = None if tools else _plain_messages(messages)
    if text is None:
        text = _CANONICAL.encode([messages, tools])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# made once: json.dumps builds an encoder per call (about a fifth of the hash's cost)
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _plain_messages(messages: list[dict[str, Any]]) -> str | None:
    """``_CANONICAL.encode([messages, []])`` for messages of text only (a scripted run's, on the
    hot path: a quarter cheaper), else None; the text is the same, so is the hash."""
    quote = json.encoder.encode_basestring   # ensure_ascii=False's quoting, in C
    parts = []
    for message in messages:
        if type(message) is not dict:
            return None
        content, role = message.get("content"), message.get("role")
        if len(message) == 2 and type(content) is str and type(role) is str:   # the usual: keys sorted
            parts.append(f'{{"content":{quote(content)},"role":{quote(role)}}}')
            continue
        items = []
        for key in sorted(message):
            value = message[key]
            if type(value) is not str or type(key) is not str:
                return None
            items.append(f"{quote(key)}:{quote(value)}")
        parts.append("{" + ",".join(items) + "}")
    return "[[" + ",".join(parts) + "],[]]"


def price_of(spec: Any) -> tuple[float, float] | None:
    """USD per input and output token (``pricing``, else litellm's table; scripted: 0), or None."""
    from agentform.engine.prices import price_of as lookup

    price = lookup(spec)
    if price is None:
        return None
    return price.input_per_m_tok / 1e6, price.output_per_m_tok / 1e6


def check_prices(graph: Graph) -> None:
    """Refuse a run where a ``maxCostUsd`` covers a Model with no known price (CONTRACT section 7)."""
    if not _has_cost_budget(graph):
        return
    for key, node in graph.models.items():
        if price_of(node.spec) is None:
            raise RunError(
                f"model {key} ({node.spec.model}) has no known price and a maxCostUsd budget applies: "
                "set spec.pricing on the Model or remove maxCostUsd")


def _has_cost_budget(graph: Graph) -> bool:
    for agent in graph.agents.values():
        if agent.spec.budget is not None and agent.spec.budget.max_cost_usd is not None:
            return True
    for team in graph.teams.values():
        if team.budget and team.budget.get("maxCostUsd", team.budget.get("max_cost_usd")) is not None:
            return True
    return any(p.spec.budget is not None and p.spec.budget.max_cost_usd is not None
               for p in graph.pipelines.values())
