"""The agent loop: instructions, model turns, tool calls (concurrent within a turn), final answer.

Every model reply and tool result goes into the stream in full (``message.completed``,
``tool.result``), so a run can be rebuilt from its events. Tool errors return to the model
as the tool's result; budgets are checked after each reply.

On a resumed run, an invocation the stream already holds is played back (recorded.py):
a completed one returns its recorded output; an unfinished one replays its recorded turns
and tool results, rebuilding its conversation, and goes live where the stream stops. Every
``tool.call`` carries ``idempotencyKey`` (``<run>:<path>:<call id>``), the same on a retry.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from agentform.engine.errors import BudgetExceeded, RunError, StoreError
from agentform.engine.redaction import DeltaHold

from . import budget as budgets
from .context import TOOL_CALL_KEY, RunWaiting
from .models import ModelReply, ScriptExhausted, ToolCall, request_hash
from .recorded import Invocation, RecordedCall, RecordedTurn, idempotency_key, recorded_of
from .tools import Tool

if TYPE_CHECKING:
    from .context import RunContext

# Errors that are not the member's own failure: they end the caller too.
_FATAL = (ScriptExhausted, StoreError, RunWaiting)
_validators: dict[int, tuple[Any, Any]] = {}


async def run_agent(ctx: RunContext, key: str, task: str, path: str, *,
                    tools: dict[str, Tool] | None = None, max_parallel: int = 4,
                    conversation: list[dict[str, Any]] | None = None, workspace: str | None = None,
                    node: Any = None, output: Any = None, extra_instructions: str | None = None) -> Any:
    """Invoke agent ``key`` at ``path`` on ``task`` until its final answer; returns text or data.
    ``node`` is an agent that is not in the graph (one made by team-control during the run);
    ``output`` (an Output) and ``extra_instructions`` (rendered text) are a pipeline stage's."""
    node = node or ctx.graph.agents[key]
    name = node.name
    past = recorded_of(ctx).get(path) if ctx.history else None
    if past is not None:
        if past.completed:   # finished before the resume: its answer comes from the stream
            return past.output
        if past.failed is not None:
            raise RunError(past.failed)
    if past is None or not past.started:
        ctx.emit("agent.started", path, {"agent": name, "task": task})
    try:
        if node.spec.tools:
            tools = await _with_mcp_tools(ctx, node, tools or {})
        answer = await ctx.in_scope(path, f"agent/{name}", node.spec.budget, lambda: _loop(
            ctx, node, task, path, tools or {}, max_parallel, conversation, workspace, past,
            output, extra_instructions), agent=True)
    except Exception as exc:
        if not isinstance(exc, RunWaiting):
            ctx.emit("agent.failed", path, {"agent": name, "error": str(exc) or type(exc).__name__})
        raise
    ctx.emit("agent.completed", path, {"agent": name, "output": answer})
    return answer


async def _loop(ctx: RunContext, node: Any, task: str, path: str, tools: dict[str, Tool],
                max_parallel: int, conversation: list[dict[str, Any]] | None, workspace: str | None,
                past: Invocation | None = None, output: Any = None, extra: str | None = None) -> Any:
    spec = node.spec
    name = node.name
    emit = ctx.emit
    model = ctx.model(node.model)
    output = output or spec.output
    messages: list[dict[str, Any]] = []
    instructions = render_instructions(ctx, spec.instructions, name, workspace)
    if extra:
        instructions = f"{instructions}\n\n{extra}" if instructions else extra
    if instructions:
        messages.append({"role": "system", "content": instructions})
    if conversation is not None:
        messages.extend(conversation)
    else:
        if ctx.thread_messages and "/" not in path:
            messages.extend(ctx.thread_messages)  # the thread's earlier turns, for the run's target
        messages.append({"role": "user", "content": task})
    # The scripted model never reads the conversation: skip building it (the hot path of benchmarks).
    keep = not _is_scripted(model)
    schemas = [t.schema() for t in tools.values()] if tools and keep else []

    hold = DeltaHold()   # a secret split across chunks is redacted whole (engine/redaction.py)

    def on_delta(text: str) -> None:
        text = hold.feed(text)
        if text:
            emit("message.delta", path, {"text": text})

    schema_retry = False
    visits: dict[str, int] = {}   # member tool -> calls so far in this invocation (paths member#n)
    played = past.turns if past is not None else ()
    turn_no = 0
    digest, hashed = "", -1   # requestHash of the request as of ``hashed`` messages (they only grow)
    while True:
        ctx.check_turn()
        recorded: dict[str, RecordedCall] | None = None
        if turn_no < len(played):
            # Recorded before a resume: the reply and its charge, without calling the model again.
            reply = _replayed(ctx, played[turn_no])
            recorded = played[turn_no].calls
        else:
            if hashed != len(messages):
                digest, hashed = request_hash(messages, schemas), len(messages)
            try:
                reply = await model.complete(messages, schemas, agent=name, path=path, on_delta=on_delta)
            finally:
                rest = hold.flush()
                if rest:
                    emit("message.delta", path, {"text": rest})
            _record_reply(ctx, reply, name, path, digest)
        turn_no += 1
        if reply.tool_calls:
            ctx.charge_calls(reply.tool_calls, tools)
            if keep:
                messages.append(_assistant_message(reply))
            back = await _run_tools(ctx, reply.tool_calls, tools, path, max_parallel, messages if keep else None,
                                    visits, recorded)
            if back is not None:
                return back
            continue
        content = reply.content if reply.content is not None else ""
        if output is None:
            return content
        data, problem = _check_output(output.schema_, content)
        if problem is None:
            return data
        if schema_retry:
            raise RunError(f"agent {name}: the final answer does not match output.schema: {problem}")
        schema_retry = True
        messages.append({"role": "assistant", "content": _as_text(content)})
        messages.append({"role": "user", "content":
                         f"Your answer does not match the required JSON Schema: {problem}. "
                         "Reply again with only a JSON value that matches it."})


async def _with_mcp_tools(ctx: RunContext, node: Any, tools: dict[str, Tool]) -> dict[str, Tool]:
    mcp = await ctx.tool_servers().tools_for(node)
    clash = sorted(set(mcp) & set(tools))
    if clash:
        raise RunError(f"agent {node.namespace}/{node.name}: tool {clash[0]} of a tool server "
                       "has the name of a team tool; deny it on that server")
    return {**tools, **mcp}


def _record_reply(ctx: RunContext, reply: ModelReply, name: str, path: str, request: str = "") -> None:
    data: dict[str, Any] = {"agent": name, "content": reply.content, "model": reply.model}
    if request:
        data["requestHash"] = request   # replay tells a changed request from a changed reply by it
    if reply.tool_calls:
        data["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls]
    if reply.script is not None:
        data["script"] = reply.script
    ctx.emit("message.completed", path, data)
    tokens = reply.tokens_in + reply.tokens_out
    if tokens or reply.cost_usd:
        ctx.add_usage(reply.tokens_in, reply.tokens_out, reply.cost_usd)
        ctx.emit("usage", path, {"agent": name, "model": reply.model, "tokens_in": reply.tokens_in,
                                 "tokens_out": reply.tokens_out, "cost_usd": reply.cost_usd})
    ctx.charge(turns=1, tokens=tokens, cost_usd=reply.cost_usd)


def _replayed(ctx: RunContext, turn: RecordedTurn) -> ModelReply:
    """A recorded reply as the model gave it; charged to the budgets again (the run's totals
    already hold it), so a resumed invocation's budget counts its earlier turns."""
    data = turn.data
    calls = [ToolCall(str(c.get("id")), c.get("name", ""), c.get("arguments")) for c in data.get("tool_calls") or ()]
    ctx.charge(turns=1, tokens=turn.tokens_in + turn.tokens_out, cost_usd=turn.cost_usd)
    return ModelReply(data.get("content"), calls, turn.tokens_in, turn.tokens_out, turn.cost_usd,
                      data.get("model") or "")


def _assistant_message(reply: ModelReply) -> dict[str, Any]:
    return {"role": "assistant", "content": _as_text(reply.content) if reply.content is not None else None,
            "tool_calls": [{"id": c.id, "type": "function", "function": {
                "name": c.name,
                "arguments": c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments)}}
                for c in reply.tool_calls]}


async def _run_tools(ctx: RunContext, calls: list[ToolCall], tools: dict[str, Tool], path: str,
                     max_parallel: int, messages: list[dict[str, Any]] | None, visits: dict[str, int],
                     recorded: dict[str, RecordedCall] | None = None) -> Any:
    """Run one turn's tool calls concurrently (at most ``max_parallel`` at once); None unless transferred back.

    ``recorded``: what a resumed run's stream holds of this turn's calls (their results are
    taken from it, not run again)."""
    turn = {"transfer": False, "back": None, "members": False}
    # What a delegate is handed: the conversation before this turn, without our instructions.
    conversation = [m for m in messages[:-1] if m.get("role") != "system"] \
        if messages and any(c.name.startswith("transfer_to_") for c in calls) else []
    mine = budgets.current.get()
    if len(calls) == 1:
        results = [await _call_tool(ctx, calls[0], tools, path, turn, conversation, mine, visits, recorded)]
    else:
        gate = asyncio.Semaphore(max_parallel) if len(calls) > max_parallel else None

        async def one(call: ToolCall) -> str:
            if gate is None:
                return await _call_tool(ctx, call, tools, path, turn, conversation, mine, visits, recorded)
            async with gate:
                return await _call_tool(ctx, call, tools, path, turn, conversation, mine, visits, recorded)

        results = await _all(one(call) for call in calls)
    if messages is not None:
        for call, text in zip(calls, results, strict=True):
            messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
    if turn["members"] and "/" not in path and (recorded is None or any(
            c.id not in recorded or recorded[c.id].result is None for c in calls)):
        # Every member call of this turn of the run's top agent has its result on record: a
        # resume restarts from here running none of them again. (Only at the top: an event per
        # nested manager turn would cost the hot path more than it tells; stage.completed marks
        # a pipeline's points.)
        ctx.emit("checkpoint", path, {"agent": _speaker(path), "calls": len(calls)})
    return turn["back"]


async def _call_tool(ctx: RunContext, call: ToolCall, tools: dict[str, Tool], path: str, turn: dict,
                     conversation: list[dict[str, Any]], mine: budgets.Scope | None, visits: dict[str, int],
                     recorded: dict[str, RecordedCall] | None = None) -> str:
    emit = ctx.emit
    past = recorded.get(call.id) if recorded is not None else None
    tool = tools.get(call.name)
    # Team edges are the engine's own calls, not tools with side effects: only external tools get a key.
    key = idempotency_key(ctx.run_id, path, call.id) if tool is not None and tool.kind == "external" else None
    if past is None or not past.called:
        data = {"id": call.id, "name": call.name, "arguments": call.arguments}
        if key is not None:
            data["idempotencyKey"] = key
        emit("tool.call", path, data)
    error: str | None = None
    output: Any = None
    if tool is None:
        error = f"unknown tool '{call.name}'; available tools: {', '.join(tools) or 'none'}"
    else:
        error = tool.check_arguments(call.arguments)
        if error is None and tool.kind in ("transfer", "handoff"):
            if turn["transfer"]:
                error = "only one transfer per turn: the conversation was already handed over in this turn"
            turn["transfer"] = True
    if error is None and tool.kind in ("ask", "transfer"):
        turn["members"] = True
    if past is not None and past.result is not None:
        return _played_result(tool, call, past.result, turn, visits)
    if error is None:
        try:
            if tool.kind == "external":
                if past is not None and past.called:
                    # Called before the resume, no result on record: it may or may not have
                    # happened; the idempotency key lets the tool tell.
                    emit("tool.call", path, {"id": call.id, "name": call.name, "arguments": call.arguments,
                                             "idempotencyKey": key, "retried": True})
                await ctx.durable()  # the call is on record before its side effect
                marked = TOOL_CALL_KEY.set(key)
                try:
                    output = await asyncio.wait_for(tool.run(ctx, path, call.arguments, conversation),
                                                    tool.timeout or ctx.limits.tool_timeout)
                finally:
                    TOOL_CALL_KEY.reset(marked)
            elif tool.kind == "back":
                output = await tool.run(ctx, path, call.arguments, conversation)
            else:
                # Numbered before the first await: the turn's calls start in the order the
                # model gave them (as the one-transfer check above relies on), so member#n
                # is the n-th call of that member in this invocation.
                visit = visits[call.name] = visits.get(call.name, 0) + 1
                output = await tool.run(ctx, path, call.arguments, conversation, visit)
        except _FATAL:
            raise
        except BudgetExceeded as exc:
            scope = getattr(exc, "scope", None)
            if scope is not None and mine is not None and mine.within(scope):
                raise  # our own (or an enclosing) budget ran out: this scope stops
            error = f"{call.name} failed: {exc}"
        except TimeoutError:
            error = f"{call.name} timed out after {tool.timeout or ctx.limits.tool_timeout:g}s"
        except RunError as exc:
            error = f"{call.name} failed: {exc}"
        except Exception as exc:  # noqa: BLE001 - a tool's crash is the model's to handle
            error = f"{call.name} raised {type(exc).__name__}: {exc}"
    if error is not None:
        emit("tool.result", path, {"id": call.id, "name": call.name, "error": error})
        return f"Error: {error}"
    if tool.kind in ("back", "handoff"):   # the invocation ends with this turn
        turn["back"] = output
    emit("tool.result", path, {"id": call.id, "name": call.name, "output": output})
    return _as_text(output)


def _played_result(tool: Tool | None, call: ToolCall, result: dict[str, Any], turn: dict,
                   visits: dict[str, int]) -> str:
    """A tool result the stream holds, as the model read it then (member calls still count
    their visits, so later calls keep their ``member#n`` paths)."""
    if tool is not None and tool.kind in ("ask", "transfer"):
        visits[call.name] = visits.get(call.name, 0) + 1
    if "error" in result:
        return f"Error: {result['error']}"
    output = result.get("output")
    if tool is not None and tool.kind in ("back", "handoff"):
        turn["back"] = output
    return _as_text(output)


def recorded_messages(turns: list[RecordedTurn]) -> list[dict[str, Any]]:
    """The messages recorded ``turns`` added to a conversation (each reply with its tool calls,
    then their results), as this loop built them when it ran them."""
    messages: list[dict[str, Any]] = []
    for turn in turns:
        calls = [ToolCall(str(c.get("id")), c.get("name", ""), c.get("arguments"))
                 for c in turn.data.get("tool_calls") or ()]
        messages.append(_assistant_message(ModelReply(turn.data.get("content"), calls, 0, 0, 0.0, "")))
        for call in calls:
            past = turn.calls.get(call.id)
            result = past.result if past is not None and past.result is not None else {}
            text = f"Error: {result['error']}" if "error" in result else _as_text(result.get("output"))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
    return messages


def builds_conversation(model: Any) -> bool:
    """Whether this loop keeps the conversation for ``model`` (the scripted model never reads it)."""
    return not _is_scripted(model)


def _speaker(path: str) -> str:
    return path.rsplit("/", 1)[-1].split("#", 1)[0]


async def _all(coros) -> list[Any]:
    """Run coroutines as concurrent tasks; the first failure cancels the rest and is raised.

    Like asyncio.TaskGroup, with less overhead per task (this is the hot path of a team turn).
    """
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(c) for c in coros]

    def on_done(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            for other in tasks:
                other.cancel()

    for task in tasks:
        task.add_done_callback(on_done)
    try:
        return [await task for task in tasks]
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception() from None
        raise


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _is_scripted(model: Any) -> bool:
    # a replay of a scripted run builds the same (conversation-free) requests: models/replayed.py
    return type(model).__name__ == "ScriptedModel" or getattr(model, "plays_script", False)


def _check_output(schema: dict[str, Any], content: Any) -> tuple[Any, str | None]:
    """Parse and validate a final answer against ``output.schema``: (data, problem or None)."""
    data = content
    if isinstance(content, str):
        text = content.strip()
        if text.startswith("```"):
            text = text.strip("`").removeprefix("json").strip()
        try:
            data = json.loads(text)
        except ValueError as exc:
            return content, f"the answer is not JSON ({exc})"
    cached = _validators.get(id(schema))
    if cached is None or cached[0] is not schema:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema)
        cached = _validators[id(schema)] = (schema, cls(schema))
    error = next(iter(cached[1].iter_errors(data)), None)
    if error is None:
        return data, None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return data, f"at {where}: {error.message}"


def render_instructions(ctx: RunContext, source: str, agent: str, workspace: str | None) -> str:
    """The agent's instructions rendered with ``agent.name``, ``now``, ``run.id``, ``workspace.path``."""
    if not source or ("{" not in source):
        return source
    from agentform.engine.templates import TemplateError, render

    try:
        return render(source, ctx.template_context(agent, workspace))
    except TemplateError as exc:
        raise TemplateError(f"instructions of agent '{agent}': {exc}") from exc
