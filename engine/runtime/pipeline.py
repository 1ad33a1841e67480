"""The pipeline executor: a DAG of stages with when, routes (bounded loops), forEach, approvals,
and tool stages (a direct call of an MCP tool through the run's tool servers).

Scheduling follows GitHub Actions: every stage whose needs are done starts at once (bounded
by the pipeline's ``maxParallel``); a stage after a failed or skipped need is skipped unless
its ``when`` calls always(), success() or failure(). The scheduler is deterministic given
the stages' outcomes, so a resumed run (after ``approve``) re-executes it from the start and
restores every stage run the stream already holds, by path, instead of running it again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from agentform.engine.errors import AgentformError, BudgetExceeded, RunError
from agentform.engine.graph import PipelineNode

from .approvals import Clock, approval_stage
from .context import RunWaiting, enter_scope, leave_scope, now_context
from .expressions import (
    as_text,
    evaluate,
    render_value,
    status_functions,
    truthy,
    uses_status_function,
)
from .params import check_runnable, coerce_params
from .pipeline_state import (
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    WAITING,
    History,
    Outcome,
    StageState,
    loop_members,
    loop_span,
    loop_view,
    stage_path,
)

__all__ = ["run_pipeline", "coerce_params", "check_runnable"]

# A loop whose routing stage sets no maxVisits (validate warns) still ends.
DEFAULT_MAX_VISITS = 100
_NO_ITEM = object()


async def run_pipeline(ctx: Any, key: str, params: dict[str, Any], parent_path: str) -> Any:
    """Run the pipeline ``key`` of ``ctx.graph`` to its output; RunWaiting when it parks."""
    node = ctx.graph.pipelines.get(key)
    if node is None:
        raise RunError(f"pipeline {key} is not part of this run's graph")
    if not parent_path:
        check_runnable(node, ctx.graph)
    path = f"{parent_path}/{node.name}" if parent_path else node.name
    return await PipelineRun(ctx, node, params, path).execute()


class PipelineRun:
    """One execution of one pipeline (the run's target or a nested stage)."""

    def __init__(self, ctx: Any, node: PipelineNode, params: dict[str, Any], path: str,
                 clock: Clock = time.time):
        self.ctx, self.node, self.spec, self.path, self.clock = ctx, node, node.spec, path, clock
        self.stages = {stage.name: stage for stage in node.spec.stages}
        self.states = {
            name: StageState(stage, view={"status": PENDING, "output": None})
            for name, stage in self.stages.items()
        }
        self.history = _history_of(ctx)
        self.loops = loop_members(self.stages)
        self.slots = asyncio.Semaphore(node.spec.max_parallel)
        self.context: dict[str, Any] = {
            "params": params,
            "stages": {name: state.view for name, state in self.states.items()},
            "workspace": {"path": ctx.workspace_path(node.workspace) or ""},
            "run": {"id": ctx.run_id},
            "now": now_context(ctx.started_at),
        }

    # -- scheduling --------------------------------------------------------------------------
    async def execute(self) -> Any:
        running: dict[asyncio.Task, str] = {}
        scope = enter_scope(self.spec.vars, self.context["params"])   # for the agents inside
        try:
            while True:
                self._start_ready(running)
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    self._settle(running.pop(task), task.result())
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            leave_scope(scope)
        waiting = [name for name, state in self.states.items() if state.status == WAITING]
        if waiting:
            raise RunWaiting(f"stage '{waiting[0]}' of pipeline '{self.node.name}' waits for an approval",
                             {"stages": waiting})
        return self._output()

    def _start_ready(self, running: dict[asyncio.Task, str]) -> None:
        # One pass in topological order: a skip settles at once, so stages after it see it.
        for name in self.node.order:
            state = self.states[name]
            if state.status != PENDING:
                continue
            needs = [self.states[n] for n in state.spec.needs]
            if any(need.status not in DONE for need in needs):
                continue
            gate = self._gate(state, needs)
            if gate is not None:
                self._record_gate(state, gate)
                continue
            state.status = state.view["status"] = RUNNING
            running[asyncio.create_task(self._run_stage(state))] = name

    def _gate(self, state: StageState, needs: list[StageState]) -> Outcome | None:
        """Skip (or fail on a bad ``when``) before the stage runs; None lets it run."""
        when = state.spec.when
        statuses = [need.status for need in needs]
        if not uses_status_function(when):
            for need in needs:
                if need.status in (FAILED, SKIPPED):
                    said = "was skipped" if need.status == SKIPPED else "failed"
                    return Outcome(SKIPPED, error=f"needs '{need.spec.name}', which {said}")
        if when:
            try:
                value = evaluate(when, {**self._context(state, state.visits + 1), **status_functions(statuses)})
            except RunError as exc:
                return Outcome(FAILED, error=f"when: {exc}")
            if not truthy(value):
                return Outcome(SKIPPED, error="its when is false")
        return None

    def _record_gate(self, state: StageState, outcome: Outcome) -> None:
        path = stage_path(self.path, state.spec.name, state.visits + 1)
        if outcome.status == FAILED:
            state.visits += 1
        if path not in self.history.outcomes:
            if outcome.status == SKIPPED:
                self.ctx.emit("stage.skipped", path, {"stage": state.spec.name, "reason": outcome.error})
            else:
                self.ctx.emit("stage.failed", path, {"stage": state.spec.name, "error": outcome.error})
        self._settle(state.spec.name, Outcome(outcome.status, None, outcome.error))

    def _settle(self, name: str, outcome: Outcome) -> None:
        state = self.states[name]
        state.settle(outcome)
        if outcome.status == FAILED and (outcome.fatal or not state.spec.continue_on_error):
            raise RunError(f"stage '{name}' of pipeline '{self.node.name}' failed: {outcome.error}")
        if outcome.status == SUCCEEDED and outcome.goto:
            for again in loop_span(self.stages, outcome.goto, name):
                self.states[again].reset()

    def _output(self) -> Any:
        if self.spec.output is None:
            done = [s for s in (self.states[n] for n in self.node.order) if s.status == SUCCEEDED]
            return done[-1].output if done else None
        try:
            return render_value(self.spec.output, self.context)
        except RunError as exc:
            raise RunError(f"pipeline '{self.node.name}' output: {exc}") from exc

    # -- one stage run -----------------------------------------------------------------------------
    async def _run_stage(self, state: StageState) -> Outcome:
        state.visits += 1
        spec = state.spec
        path = stage_path(self.path, spec.name, state.visits)
        if spec.max_visits is not None and state.visits > spec.max_visits and spec.on_exhausted == "continue":
            state.visits -= 1   # no visit happens: the stage keeps its last output
            return Outcome(SUCCEEDED, state.output, exhausted=True)
        if spec.max_visits is not None and state.visits > spec.max_visits:
            # A stage inside a loop span may bound itself tighter than the routing stage.
            outcome, replayed = Outcome(FAILED, error=(
                f"a loop asks for visit {state.visits}, over its maxVisits of {spec.max_visits}")), False
        elif spec.for_each is not None:
            outcome, replayed = await self._fan_out(state, path)
        else:
            outcome, replayed = await self._attempt(state, path, _NO_ITEM)
        if outcome.status == SUCCEEDED and spec.routes:
            outcome = self._route(state, outcome)
        if not replayed:
            self._finish(state, path, outcome)
        return outcome

    def _route(self, state: StageState, outcome: Outcome) -> Outcome:
        """The first route whose ``when`` holds for this output, bounded by maxVisits (past it,
        ``onExhausted: continue`` keeps this output and goes on as if no route held)."""
        context = {**self._context(state, state.visits), "output": outcome.output}
        for route in state.spec.routes:
            try:
                taken = truthy(evaluate(route.when, context))
            except RunError as exc:
                return Outcome(FAILED, outcome.output, f"route to '{route.goto}': {exc}")
            if not taken:
                continue
            limit = state.spec.max_visits or DEFAULT_MAX_VISITS
            if state.visits >= limit and state.spec.on_exhausted == "continue":
                return Outcome(SUCCEEDED, outcome.output, exhausted=True)
            if state.visits >= limit:
                return Outcome(FAILED, outcome.output, (
                    f"ran {state.visits} times, its maxVisits of {limit}, and its route to "
                    f"'{route.goto}' asks for another visit"
                ))
            return Outcome(SUCCEEDED, outcome.output, goto=route.goto)
        return outcome

    async def _attempt(self, state: StageState, path: str, item: Any) -> tuple[Outcome, bool]:
        """Run the stage's target once (one step); (outcome, True) when restored from the stream."""
        self.ctx.charge_step(path)
        recorded = self.history.outcome(path)
        if recorded is not None:
            return recorded, True
        spec = state.spec
        context = self._context(state, state.visits, item)
        if spec.approval is not None:
            self._started(state, path, item)
            try:
                message = as_text(render_value(spec.approval.message, context))
            except RunError as exc:
                return Outcome(FAILED, error=f"approval message: {exc}"), False
            return approval_stage(spec, path, message, self.history, self.ctx.emit, self.clock), False
        async with self.slots:
            if spec.tool is not None:
                return await self._call_tool(state, path, item, context), False
            return await self._call(state, path, item, context), False

    async def _call(self, state: StageState, path: str, item: Any, context: dict) -> Outcome:
        spec = state.spec
        edge = self.node.targets[spec.name]
        try:
            if spec.input is not None:
                task = render_value(spec.input, context)
            else:
                task = item if item is not _NO_ITEM else self.context["params"].get("input", "")
        except RunError as exc:
            self._started(state, path, item)
            return Outcome(FAILED, error=f"input: {exc}")
        if spec.input is not None or item is not _NO_ITEM:
            self._started(state, path, item, input=task)
        else:
            self._started(state, path, item)
        options: dict[str, Any] = {}
        if spec.output is not None:
            options["output"] = spec.output
        if spec.instructions is not None:
            try:
                options["extra_instructions"] = as_text(render_value(spec.instructions, context))
            except RunError as exc:
                return Outcome(FAILED, error=f"instructions: {exc}")
        try:
            if edge.kind == "pipeline":
                nested = self.ctx.graph.pipelines[edge.target]
                params = coerce_params(nested, {} if spec.input is None else {"input": task}, None)
                output = await self.ctx.run_pipeline(edge.target, None, path, params=params)
            else:
                output = await self.ctx.call_target(edge.kind, edge.target, as_text(task), path, **options)
        except RunWaiting:
            return Outcome(WAITING)
        except BudgetExceeded as exc:
            return Outcome(FAILED, error=str(exc), fatal=_spans_this_pipeline(exc))
        except AgentformError as exc:
            return Outcome(FAILED, error=str(exc))
        return Outcome(SUCCEEDED, output)

    async def _call_tool(self, state: StageState, path: str, item: Any, context: dict) -> Outcome:
        """Call the stage's MCP tool with its rendered arguments; its result is the stage's output."""
        call = state.spec.tool
        try:
            arguments = render_arguments(call.arguments, context)
        except RunError as exc:
            self._started(state, path, item)
            return Outcome(FAILED, error=str(exc))
        self._started(state, path, item, tool=call.name, arguments=arguments)
        server = self.node.targets[state.spec.name].target
        try:
            output = await self.ctx.call_tool(server, call.name, arguments, path)
        except AgentformError as exc:  # the tool's own error, a dead server, a timeout
            return Outcome(FAILED, error=str(exc))
        return Outcome(SUCCEEDED, output)

    async def _fan_out(self, state: StageState, path: str) -> tuple[Outcome, bool]:
        """Run the stage once per item, at most its maxParallel at once, outputs in input order."""
        spec = state.spec
        recorded = self.history.outcome(path)
        try:
            items = evaluate(spec.for_each, self._context(state, state.visits))
        except RunError as exc:
            return recorded or Outcome(FAILED, error=f"forEach: {exc}"), recorded is not None
        if not isinstance(items, (list, tuple)):
            return recorded or Outcome(FAILED, error=(
                f"forEach must evaluate to a list, got {type(items).__name__}")), recorded is not None
        if recorded is not None:
            for index in range(len(items)):
                self.ctx.charge_step(f"{path}[{index}]")
            return recorded, True
        self._started(state, path, _NO_ITEM, items=len(items))
        gate = asyncio.Semaphore(spec.max_parallel or self.spec.max_parallel)
        stop = False

        async def one(index: int, item: Any) -> Outcome | None:
            nonlocal stop
            async with gate:
                if stop:
                    return None
                item_path = f"{path}[{index}]"
                outcome, replayed = await self._attempt(state, item_path, item)
                if not replayed:
                    self._finish(state, item_path, outcome)
                if outcome.status == FAILED and (outcome.fatal or not spec.continue_on_error):
                    stop = True
                return outcome

        outcomes = await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
        failed = [(i, o) for i, o in enumerate(outcomes) if o is not None and o.status == FAILED]
        fatal = any(o.fatal for _, o in failed)
        if failed and (fatal or not spec.continue_on_error):
            return Outcome(FAILED, error=f"item {failed[0][0]}: {failed[0][1].error}", fatal=fatal), False
        if any(o is not None and o.status == WAITING for o in outcomes):
            return Outcome(WAITING), False
        outputs = [o.output if o is not None and o.status == SUCCEEDED else None for o in outcomes]
        return Outcome(SUCCEEDED, outputs, failed_items=[i for i, _ in failed] or None), False

    def _context(self, state: StageState, visit: int, item: Any = _NO_ITEM) -> dict[str, Any]:
        """The template context of a stage: ``item`` in a forEach, ``loop`` on a loop."""
        members = self.loops.get(state.spec.name)
        if members is None and item is _NO_ITEM:
            return self.context
        context = dict(self.context)
        if item is not _NO_ITEM:
            context["item"] = item
        if members is not None:
            context["loop"] = loop_view(max(visit, 1), members, self.states)
        return context

    # -- events ---------------------------------------------------------------------------------
    def _started(self, state: StageState, path: str, item: Any, **extra: Any) -> None:
        if path in self.history.started:
            return
        data = {"stage": state.spec.name, "kind": self.node.targets[state.spec.name].kind,
                "visit": state.visits, **extra}
        self.ctx.emit("stage.started", path, data)

    def _finish(self, state: StageState, path: str, outcome: Outcome) -> None:
        name = state.spec.name
        if outcome.status == SUCCEEDED:
            data: dict[str, Any] = {"stage": name, "output": outcome.output}
            if outcome.goto:
                data["goto"] = outcome.goto
            if outcome.exhausted:
                data["exhausted"] = True   # maxVisits ran out: onExhausted kept this output
            if outcome.failed_items:
                data["failedItems"] = outcome.failed_items
            self.ctx.emit("stage.completed", path, data)
        elif outcome.status == FAILED:
            self.ctx.emit("stage.failed", path, {
                "stage": name, "error": outcome.error, "continueOnError": state.spec.continue_on_error,
            })


def render_arguments(value: Any, context: dict[str, Any], where: str = "arguments") -> Any:
    """A tool stage's arguments with every string rendered (a lone ``{{ expr }}`` keeps its type)."""
    if isinstance(value, str):
        try:
            return render_value(value, context)
        except RunError as exc:
            raise RunError(f"{where}: {exc}") from exc
    if isinstance(value, dict):
        return {k: render_arguments(v, context, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render_arguments(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _spans_this_pipeline(exc: BudgetExceeded) -> bool:
    """Whether the budget that ran out is this pipeline's or an enclosing one (not the stage's own)."""
    from . import budget

    scope, current = getattr(exc, "scope", None), budget.current.get()
    return scope is not None and current is not None and scope in current.chain()


def _history_of(ctx: Any) -> History:
    # Nested pipelines share the run's history: index it once per RunContext.
    cached = getattr(ctx, "_pipeline_history", None)
    if cached is None or cached[0] is not ctx.history:
        cached = (ctx.history, History(ctx.history))
        try:
            ctx._pipeline_history = cached
        except AttributeError:
            pass
    return cached[1]
