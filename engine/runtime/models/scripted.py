"""The offline ``scripted`` model (CONTRACT section 5): each agent plays its own turns in order.

A script key is an agent name or a path suffix (``summarize[2]/summarizer``); for a call
at some path the most specific matching key wins. A key segment without a ``#n`` visit
matches every visit (``worker`` matches ``team/worker#3``), one with it only that visit
(``worker#2``; ``#1`` is the unnumbered first). Cursors live in the run (per model and
script key), so a thread's later runs and a resumed run continue where the stream left off.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

from agentform.specs import Script, parse_duration

from . import ModelError, ModelReply, OnDelta, ScriptExhausted, ToolCall

# A path segment: name, optional ``#n`` visit, optional ``[i]`` forEach item (pipeline_state.stage_path).
_SEGMENT = re.compile(r"([^#\[]+)(?:#(\d+))?(\[\d+\])?")
Segment = tuple[str, int | None, str | None]
Keys = dict[str, list[tuple[list[Segment], str]]]
# per Model node (graphs are cached per revision): (node, turns, keys by agent, script key by (agent, path))
_parsed: dict[int, tuple[Any, dict[str, list[_Turn]], Keys, dict[tuple[str, str], str | None]]] = {}


@dataclass(slots=True, frozen=True)
class _Turn:
    content: Any
    tool_calls: tuple[tuple[str, Any], ...]
    first_call: int          # call_<n> numbering continues across an agent's turns
    latency: float
    tokens_in: int
    tokens_out: int
    words: bool
    error: str | None


def _segment(text: str, visit: int | None) -> Segment:
    """``text`` parsed; ``visit`` is what a segment without ``#n`` means (1 in a path, any in a key)."""
    found = _SEGMENT.fullmatch(text)
    if found is None:
        return text, visit, None
    name, n, item = found.groups()
    return name, int(n) if n else visit, item


def _matches(key: list[Segment], path: list[Segment]) -> bool:
    if len(key) > len(path):
        return False
    for (name, visit, item), (p_name, p_visit, p_item) in zip(key, path[-len(key):], strict=True):
        if name != p_name or item != p_item or (visit is not None and visit != p_visit):
            return False
    return True


def _compile(node: Any) -> tuple[dict[str, list[_Turn]], Keys, dict[tuple[str, str], str | None]]:
    cached = _parsed.get(id(node))
    if cached is not None and cached[0] is node:
        return cached[1], cached[2], cached[3]
    script = Script.model_validate(node.script or {"agents": {}})
    turns: dict[str, list[_Turn]] = {}
    by_agent: Keys = {}
    for key, entries in script.agents.items():
        compiled, n = [], 1
        for t in entries:
            calls = tuple((c.name, c.arguments) for c in t.tool_calls)
            compiled.append(_Turn(t.content, calls, n, parse_duration(t.latency) if t.latency else 0.0,
                                  t.usage.input if t.usage else 0, t.usage.output if t.usage else 0,
                                  t.stream == "words", t.error))
            n += len(calls)
        turns[key] = compiled
        segments = [_segment(part, None) for part in key.split("/")]
        by_agent.setdefault(Script.agent_of(key), []).append((segments, key))
    for candidates in by_agent.values():
        # most specific first: the longest path suffix, then the most segments pinned to a visit
        candidates.sort(key=lambda c: (-len(c[0]), -sum(s[1] is not None for s in c[0])))
    found: dict[tuple[str, str], str | None] = {}
    _parsed[id(node)] = (node, turns, by_agent, found)
    return turns, by_agent, found


class ScriptedModel:
    """Plays a Model's script; ``cursors`` is the run's (model key, script key) -> next turn."""

    def __init__(self, key: str, node: Any, cursors: dict[tuple[str, str], int]):
        self.key = key
        self.name = node.name
        # the key found for (agent, path) depends on the script only: shared by every run
        self.turns, self.by_agent, self._keys = _compile(node)
        self.cursors = cursors
        self.price = (node.spec.pricing.input_per_m_tok / 1e6, node.spec.pricing.output_per_m_tok / 1e6) \
            if node.spec.pricing is not None else (0.0, 0.0)
        self.retries = node.spec.retries

    def script_key(self, agent: str, path: str) -> str | None:
        """The most specific script key matching this call (agent name or path suffix)."""
        found = self._keys.get((agent, path), self)
        if found is not self:
            return found  # type: ignore[return-value]
        segments = [_segment(part, 1) for part in path.split("/")] if path else []
        if not segments or segments[-1][0] != agent:
            segments.append((agent, 1, None))  # a manager speaks at its team's path
        found = None
        for key_segments, key in self.by_agent.get(agent, ()):
            if _matches(key_segments, segments):
                found = key
                break
        if len(self._keys) >= 4096:
            self._keys.clear()  # forEach items make paths without bound in a long-lived process
        self._keys[(agent, path)] = found
        return found

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                       agent: str, path: str, on_delta: OnDelta | None) -> ModelReply:
        key = self.script_key(agent, path)
        if key is None:
            raise ScriptExhausted(
                f"scripted model '{self.name}' has no turns for agent '{agent}' (at {path or agent}): "
                f"add '{agent}:' under 'agents:' in its script")
        attempts = 0
        while True:
            index = self.cursors.get((self.key, key), 0)
            turns = self.turns[key]
            if index >= len(turns):
                raise ScriptExhausted(
                    f"scripted model '{self.name}': agent '{agent}' ran out of turns at turn {index + 1} "
                    f"(script key '{key}' has {len(turns)}; at {path or agent})")
            self.cursors[(self.key, key)] = index + 1
            turn = turns[index]
            if turn.latency:
                await asyncio.sleep(turn.latency)  # the simulated model's own time
            if turn.error is None:
                break
            attempts += 1
            if attempts > self.retries:
                raise ModelError(f"scripted model '{self.name}': provider error for '{agent}': {turn.error}")
        content = turn.content
        if content is not None and on_delta is not None:
            text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
            if turn.words:
                for i, word in enumerate(text.split(" ")):
                    on_delta(word if i == 0 else " " + word)
            elif text:
                on_delta(text)
        calls = [ToolCall(f"call_{turn.first_call + i}", name, args)
                 for i, (name, args) in enumerate(turn.tool_calls)]
        cost = turn.tokens_in * self.price[0] + turn.tokens_out * self.price[1]
        return ModelReply(content, calls, turn.tokens_in, turn.tokens_out, cost, "scripted",
                          (self.key, key, index))
