"""Start and resume runs: resolve the target's graph, own the run record, execute, finish.

``start_run_async``/``resume_run_async`` are the coroutines (the Python API and the CLI use
them); ``start_run``/``resume_run`` are synchronous wrappers for callers outside an event
loop. A run records its owner (host:pid) and a heartbeat. The owner reads its run's record
every ``CANCEL_POLL_S`` (one primary-key read): a ``cancel`` from another process, or a
takeover, stops it within that time (in-flight model and tool calls are abandoned; tool
servers are closed after ``run.cancelled`` is recorded).

Resuming takes the run over (``run.resumed``) and executes its target again with the
stream as history: stages and agent invocations that finished are restored from it, an
unfinished invocation replays its recorded turns and goes live where the stream stops.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentform.engine import notify, tracing
from agentform.engine.errors import NotFound, RunError, RunTakenOver, UsageError
from agentform.engine.events import EventWriter, OnEvent
from agentform.engine.graph import Graph, node_key
from agentform.engine.ids import new_run_id
from agentform.engine.redaction import REDACTOR
from agentform.engine.store.base import Event, RunRecord
from agentform.specs import ResourceKey, kind_from_word

from .context import RunContext, RunWaiting
from .result import EXIT_CODES, RunResult

HEARTBEAT_S = float(os.environ.get("AGENTFORM_HEARTBEAT", "2"))
# How often a running owner looks for a cancel or a takeover (cancel takes effect within it).
CANCEL_POLL_S = min(float(os.environ.get("AGENTFORM_CANCEL_POLL", "0.25")), HEARTBEAT_S)
_graph_cache: dict[tuple[int, ResourceKey, int], Graph] = {}


def hostname() -> str:
    """This machine's name (``os.uname``: no socket import on the run path)."""
    try:
        return os.uname().nodename
    except AttributeError:  # not a Unix
        import socket

        return socket.gethostname()


def owner_id() -> str:
    return f"{hostname()}:{os.getpid()}"


def parse_target(target: str) -> ResourceKey:
    """``team/research`` or ``team/ns/research`` (kind as agent, agents or Agent) -> ResourceKey."""
    parts = target.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"'{target}' is not a run target: use agent/NAME, team/NAME or pipeline/NAME (or KIND/NAMESPACE/NAME)")
    kind = kind_from_word(parts[0])
    if kind not in ("Agent", "Team", "Pipeline"):
        raise UsageError(f"'{parts[0]}' cannot be run: use agent, team or pipeline")
    namespace, name = (parts[1], parts[2]) if len(parts) == 3 else ("default", parts[1])
    return ResourceKey(kind, namespace, name)


def target_text(key: ResourceKey) -> str:
    return f"{key.kind.lower()}/{key.namespace}/{key.name}"


def load_graph(store: Any, key: ResourceKey, revision: int | None = None) -> tuple[Graph, int]:
    """The graph of ``key`` at ``revision`` (default: the latest revision) and that revision's number."""
    if revision is None:
        latest = store.latest_revision()
        if latest is None:
            raise NotFound("nothing has been applied yet: run `agentform apply` first")
        revision = latest.number
    cached = _graph_cache.get((id(store), key, revision))
    if cached is not None:
        return cached, revision
    raw = store.get_graph(key, revision)
    if raw is None:
        raise NotFound(f"{key.kind} {key.namespace}/{key.name} is not applied (revision {revision})")
    graph = Graph.model_validate(raw)
    _graph_cache[(id(store), key, revision)] = graph  # revisions are immutable
    return graph, revision


_checked: set[int] = set()


def preflight(graph: Graph) -> None:
    """Refuse up front what this run cannot do (tools not available, unknown prices under a cost budget)."""
    if id(graph) in _checked:  # graphs are cached per revision and immutable
        return
    from .models import check_prices
    from .tools import check_tools

    check_tools(graph)
    check_prices(graph)
    if any(g is graph for g in _graph_cache.values()):
        _checked.add(id(graph))


async def start_run_async(store: Any, target: str, *, input: Any = None, params: dict | None = None,
                          thread: str | None = None, home: Path, on_event: OnEvent | None = None,
                          run_id: str | None = None, wait_workspace: bool = True) -> RunResult:
    """Start a run of ``target`` on the latest revision and execute it to the end (or until it waits).
    ``wait_workspace=False``: WorkspaceBusy (and no run) when another run holds a workspace of it."""
    key = parse_target(target)
    graph, revision = load_graph(store, key)
    params = dict(params or {})
    if key.kind == "Pipeline":
        from .params import coerce_params

        params = coerce_params(graph.pipelines[graph.root], params, _input_text(input))
    elif params:
        raise UsageError(f"-p/params apply to pipelines; {key.kind.lower()}/{key.name} takes -i/input")
    preflight(graph)
    now = time.time()
    run_id = run_id or new_run_id(now)
    held = None
    if not wait_workspace and graph.workspaces:
        from agentform.engine.workspaces.lock import acquire

        held = await acquire(home, list(graph.workspaces), workspace_holder(run_id), wait=False)
    run = RunRecord(id=run_id, target=target_text(key), status="running",
                    revision=revision, created_at=now, thread=thread, input=REDACTOR.data(input),
                    params=REDACTOR.data(params),
                    owner=owner_id(), heartbeat_at=now, started_at=now, owner_epoch=1)
    writer = EventWriter.for_store(store)
    writer.create_run(run)  # written by the writer thread, just before the run's first events
    history_msgs, cursors = ([], {}) if thread is None else thread_state(store, thread, run.id)
    notify.expect(run.id, graph)
    stream = writer.open(run.id, 0, tracing.observe(run.id, on_event), epoch=run.owner_epoch)
    ctx = RunContext(run_id=run.id, graph=graph, started_at=datetime.fromtimestamp(now, UTC),
                     stream=stream, home=home, store=store, thread_messages=history_msgs,
                     script_cursors=cursors)
    ctx.workspace_locks = held
    stream.emit("run.started", "", {"target": run.target, "revision": revision, "input": input,
                                    "params": params, "thread": thread, "owner": run.owner})
    return await _execute(ctx, stream, key, input, params, run.started_at or now)


RESUMABLE = frozenset({"waiting", "queued"})


def check_resumable(run: RunRecord, now: float | None = None, store: Any = None) -> None:
    """Refuse to continue a run that is finished (unless its owner died: ``store`` given, its
    last event says so), or that a live process is executing."""
    from .liveness import died_owner, owner_alive

    if run.status in ("succeeded", "failed", "cancelled") and not (store is not None and died_owner(store, run)):
        raise RunError(f"run {run.id} is {run.status}; only a waiting or queued run, or one whose owner "
                       "died, can be resumed")
    if run.status == "running" and owner_alive(run, now):
        raise RunTakenOver(run.id, run.owner, run.status, run.owner_epoch)


def take_over(store: Any, run: RunRecord, *, now: float, events: list[tuple[str, str, dict]] | tuple = (),
              **fields: Any) -> RunRecord:
    """Make this process the owner of ``run`` as it was read (its status and epoch), appending
    ``events`` in the same transaction; RunTakenOver names the winner when another process was first."""
    if REDACTOR.pattern is not None:
        events = [(t, p, REDACTOR.data(d)) for t, p, d in events]
    record = store.take_over_run(run.id, expect_status={run.status}, expect_epoch=run.owner_epoch,
                                 owner=owner_id(), now=now, events=events, **fields)
    if events:   # a cancel or an expired approval ends the run here, not through a stream
        from agentform.engine.events import announce

        if any(t in notify.EVENTS for t, _, _ in events):
            notify.expect(run.id)    # its pipeline's webhooks, if any, are the sender's to find
        first = record.last_seq - len(events) + 1
        announce(store, [Event(run.id, first + i, now, t, p, d) for i, (t, p, d) in enumerate(events)])
    return record


async def resume_run_async(store: Any, run_id: str, *, home: Path,
                           extra_events: list[tuple[str, str, dict]] | tuple = (),
                           on_event: OnEvent | None = None, expect: RunRecord | None = None) -> RunResult:
    """Continue a run: take it over (``run.resumed`` and ``extra_events`` appended with the
    takeover), then re-execute its target with ``ctx.history`` set.

    ``expect``: the record as the caller read it when it decided to continue (approve checks
    the pending approval on it); the takeover fails if the run changed since.
    """
    run = expect or store.get_run(run_id)
    now = time.time()
    if run.status == "waiting" and run.deadline_at is not None and run.deadline_at < now:
        from .approvals import expire_waiting_run

        run = expire_waiting_run(store, run, now)
        if run.status in ("running", "waiting"):   # someone else continued it first
            raise RunTakenOver(run.id, run.owner, run.status, run.owner_epoch)
        return expired_result(run)
    if run.status == "running":
        from .liveness import observe_run

        run = observe_run(store, run, now)   # a dead owner: its segment ends with run.failed first
    check_resumable(run, now, store)
    kind, namespace, name = run.target.split("/")
    key = ResourceKey(kind_from_word(kind) or kind, namespace, name)
    graph, _ = load_graph(store, key, run.revision)
    preflight(graph)
    before = run.last_seq
    notify.expect(run.id, graph)
    run = take_over(store, run, now=now, events=[
        ("run.resumed", "", {"previousOwner": run.owner, "previousStatus": run.status}), *extra_events,
    ], status="running", error=None, deadline_at=None, finished_at=None)
    history = store.read_events(run.id, limit=run.last_seq)
    # Traced (OTEL_* set): the past opened spans this segment may end; run.resumed reaches it below.
    on_event = tracing.observe(run.id, on_event, history=history, past_seq=before)
    stream = EventWriter.for_store(store).open(run.id, run.last_seq, on_event, epoch=run.owner_epoch)
    if on_event is not None:
        for event in history:
            if event.seq > before:
                on_event(event)
    # Totals continue from the record: what earlier executions spent stays counted.
    stream.add_usage(run.tokens_in, run.tokens_out, run.cost_usd)
    cursors = script_cursors(history)
    thread_msgs, thread_cursors = ([], {}) if run.thread is None else thread_state(store, run.thread, run.id)
    for k, v in thread_cursors.items():
        cursors[k] = max(cursors.get(k, 0), v)
    ctx = RunContext(run_id=run.id, graph=graph,
                     started_at=datetime.fromtimestamp(run.started_at or run.created_at, UTC),
                     stream=stream, home=home, store=store, history=history,
                     thread_messages=thread_msgs, script_cursors=cursors)
    return await _execute(ctx, stream, key, run.input, run.params, run.started_at or now)


def expired_result(run: RunRecord) -> RunResult:
    """The result of a continuation that found the run's approval deadline passed."""
    return RunResult(id=run.id, status=run.status, output=run.output, error=run.error, tokens_in=run.tokens_in,
                     tokens_out=run.tokens_out, cost_usd=run.cost_usd, exit_code=EXIT_CODES[run.status])


def start_run(store: Any, target: str, *, input: Any = None, params: dict | None = None,
              thread: str | None = None, home: Path, on_event: OnEvent | None = None) -> RunResult:
    """Synchronous ``start_run_async`` (not from inside a running event loop)."""
    return asyncio.run(start_run_async(store, target, input=input, params=params, thread=thread,
                                       home=home, on_event=on_event))


def resume_run(store: Any, run_id: str, *, home: Path, extra_events: list[tuple[str, str, dict]] | tuple = (),
               on_event: OnEvent | None = None, expect: RunRecord | None = None) -> RunResult:
    """Synchronous ``resume_run_async`` (not from inside a running event loop)."""
    return asyncio.run(resume_run_async(store, run_id, home=home, extra_events=extra_events,
                                        on_event=on_event, expect=expect))


async def _execute(ctx: RunContext, stream, key: ResourceKey, input: Any, params: dict,
                   started: float) -> RunResult:
    task = asyncio.ensure_future(_in_workspaces(ctx, key, input, params))
    beat = _Heartbeat(ctx, stream, task)
    closed = False
    status, output, error, extra = "succeeded", None, None, {}
    try:
        output = await asyncio.shield(task)
    except RunWaiting as waiting:
        status, extra = "waiting", {"reason": waiting.reason, **waiting.data}
    except asyncio.CancelledError:
        # Ctrl-C (the caller cancelled us) or `cancel` seen by the heartbeat.
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        status, error = "cancelled", "cancelled"
    except Exception as exc:  # noqa: BLE001 - every failure ends the run as failed, recorded
        status, error = "failed", str(exc) or type(exc).__name__
    finally:
        beat.stop()
    if status == "succeeded" and beat.cancel_seen:
        status, error = "cancelled", "cancelled"
    if status != "cancelled":
        # Tool servers stop before the run's end is recorded (their logs are complete by then);
        # a cancelled run records its end first and kills them after.
        closed = True
        await ctx.close()
    if beat.taken is not None and stream.error is None:
        taken = beat.taken
        stream.stop(RunTakenOver(ctx.run_id, taken.owner, taken.status, taken.owner_epoch, (
            f"run {ctx.run_id} was taken over by {taken.owner or 'another process'} while this "
            "process executed it; it stopped here")))
    if stream.error is not None:
        # Fenced (or its write failed): the run is no longer ours to end; write nothing more.
        stream.close()
        if not closed:
            await ctx.close()
        stream._raise_if_failed()
    if REDACTOR.pattern is not None:
        # The RunResult leaves the engine too (to the CLI, the API, a parent): the same text as the stream.
        output, error = REDACTOR.data(output), REDACTOR.text(error) if error else error
    now = time.time()
    fields: dict[str, Any] = {"status": status, "heartbeat_at": now}
    if status == "succeeded":
        stream.emit("run.completed", "", {"output": output}, output=output, finished_at=now, **fields)
    elif status == "waiting":
        deadline = await _deadline(ctx, stream)
        if deadline is not None:
            extra["expiresAt"] = _iso(deadline)
        stream.emit("run.waiting", "", extra, deadline_at=deadline, **fields)
    elif status == "cancelled":
        stream.emit("run.cancelled", "", {"reason": error}, error=error, finished_at=now, **fields)
    else:
        stream.emit("run.failed", "", {"error": error}, error=error, finished_at=now, **fields)
    await stream.durable()
    stream.close()
    if not closed:
        await ctx.close()
    return RunResult(id=ctx.run_id, status=status, output=output, error=error,
                     tokens_in=stream.tokens_in, tokens_out=stream.tokens_out,
                     cost_usd=round(stream.cost_usd, 10), exit_code=EXIT_CODES[status])


async def _deadline(ctx: RunContext, stream) -> float | None:
    """The earliest expiry of the approvals the parked run waits for (recorded as ``deadline_at``
    so that whoever lists runs sees a passed deadline without reading the stream)."""
    from .approvals import deadline_of

    await stream.durable()
    last = ctx.history[-1].seq if ctx.history else 0
    recent = await asyncio.to_thread(ctx.store.read_events, ctx.run_id, last)
    return deadline_of([*ctx.history, *recent])


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


async def _in_workspaces(ctx: RunContext, key: ResourceKey, input: Any, params: dict) -> Any:
    """Dispatch once this process holds the run's workspaces, provisioned (a replay takes none)."""
    await ctx.open_workspaces(workspace_holder(ctx.run_id))
    return await _dispatch(ctx, key, input, params)


def workspace_holder(run_id: str) -> str:
    return f"run {run_id} ({owner_id()})"


async def _dispatch(ctx: RunContext, key: ResourceKey, input: Any, params: dict) -> Any:
    root = node_key(key.namespace, key.name)
    ctx.run_input = _input_text(input) or ""
    if ctx.graph.tool_servers:
        await ctx.tool_servers().start_eager()
    if key.kind == "Pipeline":
        return await ctx.run_pipeline(root, None, "", params=params)
    return await ctx.call_target(key.kind.lower(), root, _input_text(input) or "", "")


class _Heartbeat:
    """One executing run as its process's ``_Watch`` sees it: beats every ``HEARTBEAT_S`` and
    stops the run when another process cancelled it or took it over."""

    __slots__ = ("ctx", "stream", "task", "cancel_seen", "taken", "stopped", "beat_at", "watch")

    def __init__(self, ctx: RunContext, stream, task: asyncio.Future):
        self.ctx, self.stream, self.task = ctx, stream, task
        self.cancel_seen = False
        self.taken: RunRecord | None = None   # the record as another process's takeover left it
        self.stopped = False
        loop = asyncio.get_running_loop()
        self.beat_at = loop.time() + HEARTBEAT_S
        self.watch = _Watch.of(loop, ctx.store)
        self.watch.add(self)

    def beat(self, now: float) -> None:
        if now >= self.beat_at:
            self.beat_at = now + HEARTBEAT_S
            self.stream.update(heartbeat_at=time.time())

    def checked(self, record: RunRecord) -> None:
        if self.stopped or self.task.done():
            return
        epoch = self.stream.epoch
        if epoch is not None and record.owner_epoch != epoch:
            self.taken = record   # fenced already: stop before the next side effect
            self.task.cancel()
        elif record.status == "cancelled":
            self.cancel_seen = True
            self.task.cancel()

    def stop(self) -> None:
        self.stopped = True
        self.watch.remove(self)


class _Watch:
    """The runs one process executes in one event loop on one store: every ``CANCEL_POLL_S``
    one executor job reads their records (a primary-key read each), so a cancel from any
    process takes effect within that time. A timer, not a task; none while no run lives
    longer than one interval (a short run costs nothing)."""

    _live: dict[tuple[int, int], _Watch] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop, store: Any):
        self.loop, self.store = loop, store
        self.beats: dict[_Heartbeat, None] = {}
        self.handle: asyncio.TimerHandle | None = None
        self.reading = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop, store: Any) -> _Watch:
        watch = cls._live.get((id(loop), id(store)))
        if watch is None or watch.loop is not loop or watch.store is not store:
            watch = cls._live[(id(loop), id(store))] = cls(loop, store)
        return watch

    def add(self, beat: _Heartbeat) -> None:
        self.beats[beat] = None
        if self.handle is None:
            self.handle = self.loop.call_later(CANCEL_POLL_S, self._tick)

    def remove(self, beat: _Heartbeat) -> None:
        self.beats.pop(beat, None)
        if not self.beats:
            if self.handle is not None:
                self.handle.cancel()
                self.handle = None
            self._live.pop((id(self.loop), id(self.store)), None)

    def _tick(self) -> None:
        self.handle = self.loop.call_later(CANCEL_POLL_S, self._tick)
        if self.reading:   # the last read is still out (a slow store): no pile-up
            return
        now = self.loop.time()
        beats = [b for b in self.beats if not b.stopped and not b.task.done()]
        for beat in beats:
            beat.beat(now)
        if beats:
            self.reading = True
            read = self.loop.run_in_executor(None, self._read, [b.ctx.run_id for b in beats])
            read.add_done_callback(lambda done: self._checked(beats, done))

    def _read(self, run_ids: list[str]) -> dict[str, RunRecord]:
        records = {}
        for run_id in run_ids:
            try:
                records[run_id] = self.store.get_run(run_id)
            except Exception:  # noqa: BLE001 - a failed read: the next tick reads again
                continue
        return records

    def _checked(self, beats: list[_Heartbeat], done: asyncio.Future) -> None:
        self.reading = False
        if done.cancelled() or done.exception() is not None:
            return
        records = done.result()
        for beat in beats:
            record = records.get(beat.ctx.run_id)
            if record is not None:
                beat.checked(record)


def _input_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


# -- threads and scripted cursors -----------------------------------------------------------------

def script_cursors(events: list[Event]) -> dict[tuple[str, str], int]:
    """Scripted-model cursors after ``events``: per (model, script key), the next turn index."""
    cursors: dict[tuple[str, str], int] = {}
    for event in events:
        if event.type == "message.completed":
            pos = event.data.get("script")
            if pos:
                key = (pos[0], pos[1])
                cursors[key] = max(cursors.get(key, 0), pos[2] + 1)
    return cursors


def thread_state(store: Any, thread: str, exclude: str) -> tuple[list[dict], dict[tuple[str, str], int]]:
    """The thread's earlier turns as chat messages, and the scripted cursors they leave."""
    runs = [r for r in store.list_runs(limit=10_000, thread=thread) if r.id != exclude]
    runs.sort(key=lambda r: (r.created_at, r.id))
    messages: list[dict] = []
    cursors: dict[tuple[str, str], int] = {}
    for run in runs:
        if run.input is not None:
            messages.append({"role": "user", "content": _input_text(run.input)})
        if run.status == "succeeded" and run.output is not None:
            messages.append({"role": "assistant", "content": _input_text(run.output)})
        for k, v in script_cursors(store.read_events(run.id)).items():
            cursors[k] = max(cursors.get(k, 0), v)
    return messages, cursors


def cancel_run(store: Any, run_id: str) -> tuple[RunRecord, bool]:
    """Cancel a run. A live owner is asked through the store (a compare-and-set of the status
    at its epoch: it stops on its next heartbeat and records ``run.cancelled``); otherwise this
    process takes the run over and records the cancellation. Returns (run, asked_owner)."""
    from .liveness import observe_run, owner_alive

    run = store.get_run(run_id)
    for _ in range(3):   # a race lost to another takeover: look again, once or twice
        run = observe_run(store, run)   # a passed approval deadline has failed it already
        if run.status in ("succeeded", "failed", "cancelled") and run.finished_at is not None:
            raise RunError(f"run {run.id} already {run.status}")
        now = time.time()
        try:
            if run.status == "cancelled" and owner_alive(run, now):
                return run, True   # asked already; its owner has not stopped yet
            if run.status == "running" and owner_alive(run, now):
                return store.set_run_if(run.id, expect_status={"running"}, expect_epoch=run.owner_epoch,
                                        status="cancelled"), True
            events = [("run.cancelled", "", {"reason": "cancelled", "by": owner_id()})]
            if run.status in RESUMABLE:   # its last segment ended: this one starts and ends here
                events.insert(0, ("run.resumed", "", {"previousOwner": run.owner, "previousStatus": run.status}))
            return take_over(store, run, now=now, events=events, status="cancelled", error="cancelled",
                             finished_at=now), False
        except RunTakenOver:
            run = store.get_run(run.id)
    raise RunTakenOver(run.id, run.owner, run.status, run.owner_epoch)
