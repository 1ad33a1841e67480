"""Models reached through litellm: streaming, tool calls, retries with backoff, fallbacks, cost.

litellm is imported here only, on first use, with its price map read locally (no network).
Retries are our own loop (exponential backoff on 429, 5xx, timeouts and refused connections)
so that their timing is ours; then each of ``fallbacks`` is tried in order. The API key
is a Secret resolved at the moment of the call and redacted from every error message.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any

from agentform.engine.prices import price_of
from agentform.engine.redaction import redact_text
from agentform.specs.model import SCRIPTED

from . import ModelError, ModelReply, OnDelta, ToolCall

if TYPE_CHECKING:
    from ..context import RunContext

RETRY_BASE_S = float(os.environ.get("AGENTFORM_RETRY_BASE", "0.5"))
RETRY_MAX_S = 20.0
_litellm: Any = None


def litellm_module() -> Any:
    """litellm, imported once, kept offline and quiet."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        _litellm = litellm
    return _litellm


def retryable(exc: BaseException) -> bool:
    """429, 408/409, 5xx, timeouts and connection failures are worth another attempt."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and (status in (408, 409, 429) or status >= 500):
        return True
    return isinstance(exc, (TimeoutError, ConnectionError)) or type(exc).__name__ in (
        "Timeout", "APIConnectionError", "APITimeoutError")


class LitellmModel:
    """A Model and its fallbacks; ``complete`` tries each in order, each with its retries."""

    def __init__(self, ctx: RunContext, key: str):
        self.ctx = ctx
        self.key = key
        node = ctx.graph.models[key]
        self.chain = [key] + [f"{ref.namespace or node.namespace}/{ref.name}" for ref in node.spec.fallbacks]

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                       agent: str, path: str, on_delta: OnDelta | None) -> ModelReply:
        failures: list[str] = []
        for key in self.chain:
            node = self.ctx.graph.models.get(key)
            if node is None:
                failures.append(f"{key}: not part of this revision")
                continue
            try:
                if node.spec.model == SCRIPTED:
                    return await self.ctx.model(key).complete(messages, tools, agent=agent, path=path,
                                                              on_delta=on_delta)
                return await self._with_retries(node, messages, tools, on_delta)
            except ModelError as exc:
                failures.append(str(exc))
        raise ModelError(f"model {self.key} failed for agent {agent}: " + "; then ".join(failures))

    async def _with_retries(self, node: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                            on_delta: OnDelta | None) -> ModelReply:
        attempt = 0
        while True:
            try:
                return await self._call(node, messages, tools, on_delta)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - provider errors of every shape
                from agentform.engine.errors import RunError

                if isinstance(exc, RunError):  # e.g. the API key's Secret is not available
                    raise ModelError(f"{node.namespace}/{node.name}: {exc}") from None
                message = _describe(exc)
                if attempt >= node.spec.retries or not retryable(exc):
                    raise ModelError(f"{node.namespace}/{node.name} ({node.spec.model}): {message}"
                                     + (f" after {attempt + 1} attempts" if attempt else "")) from None
                await asyncio.sleep(min(RETRY_MAX_S, RETRY_BASE_S * (2 ** attempt)))
                attempt += 1

    async def _call(self, node: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                    on_delta: OnDelta | None) -> ModelReply:
        litellm = litellm_module()
        spec = node.spec
        kwargs: dict[str, Any] = {**spec.params, "model": spec.model, "messages": messages, "stream": True,
                                  "stream_options": {"include_usage": True},
                                  # retries are ours: neither litellm nor the OpenAI SDK may retry silently
                                  "num_retries": 0, "max_retries": 0}
        if tools:
            kwargs["tools"] = tools
        if spec.base_url:
            kwargs["api_base"] = spec.base_url
        if spec.api_key is not None:
            from agentform.engine.secrets import resolve_ref

            # resolve_ref registers the key with the redactor before the provider can echo it
            kwargs["api_key"] = resolve_ref(spec.api_key, namespace=node.namespace,
                                            secrets=self.ctx.graph.secrets, home=self.ctx.home)
        stream = await litellm.acompletion(**kwargs)
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        tokens_in = tokens_out = 0
        async for chunk in stream:
            usage = getattr(chunk, "usage", None)
            if usage:
                tokens_in = getattr(usage, "prompt_tokens", 0) or tokens_in
                tokens_out = getattr(usage, "completion_tokens", 0) or tokens_out
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            if delta is None:
                continue
            if delta.content:
                text.append(delta.content)
                if on_delta is not None:
                    on_delta(delta.content)
            for part in getattr(delta, "tool_calls", None) or ():
                slot = calls.setdefault(part.index or 0, {"id": None, "name": "", "arguments": ""})
                if part.id:
                    slot["id"] = part.id
                if part.function is not None:
                    slot["name"] += part.function.name or ""
                    slot["arguments"] += part.function.arguments or ""
        tool_calls = [ToolCall(c["id"] or f"call_{i + 1}", c["name"], _arguments(c["arguments"]))
                      for i, c in (sorted(calls.items()))]
        price = price_of(spec)
        cost = price.cost(tokens_in, tokens_out) if price is not None else 0.0
        content = "".join(text) if text or not tool_calls else None
        return ModelReply(content, tool_calls, tokens_in, tokens_out, cost, spec.model)


def _arguments(raw: str) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # the loop tells the model its arguments were not JSON


def _describe(exc: BaseException) -> str:
    """An error's message with secrets redacted, shortened to one line.

    Redaction comes first, on the full text: cut at 500 characters, a key would leave a
    prefix behind; with its whitespace collapsed, a key holding spaces would no longer match.
    """
    status = getattr(exc, "status_code", None)
    text = " ".join(redact_text(str(exc)).split())[:500]
    return f"{type(exc).__name__}{f' ({status})' if status else ''}: {text}"
