"""Deterministic replay: execute a recorded run again, with every model and tool response
served from its stream, and compare the new stream with the recorded one path by path.

The replay runs in memory (``MemoryStream``): nothing is written to any store, so a replay
works on a read-only store, on a fresh one, and on a recording exported to a file. It runs
under the recorded run's id and start time, so ``run.id`` and ``now`` render as they did.
Models are ``ReplayedModel`` (models/replayed.py: the recorded replies by path and order);
tools are ``ReplayedTools``: no MCP server is started and no tool is called, a tool call
gets the result recorded under its idempotency key (``<run>:<path>:<call id>``). The one
exception is team-control, a built-in that only acts inside the run (it runs the agents it
creates): it runs again in process, and the agents it runs are replayed like any other.

A recorded stream is cut into execution segments (``run.started`` or ``run.resumed`` up to
the next terminal event). What an execution did not produce itself (``run.started``,
``run.resumed``, an ``approval.resolved`` given with a takeover, a segment written wholly by
a takeover such as an approval's timeout) is copied as input; every other segment is
executed again, as a resume would (with the recorded events before it as history), and
compared (divergence.py). A segment that ended without a terminal event (its process died),
with a cancel or with ``owner died`` only has to be a prefix of the replay, path by path.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentform.engine.errors import UsageError
from agentform.engine.graph import Graph, node_key
from agentform.engine.redaction import REDACTOR
from agentform.engine.store.base import Event
from agentform.specs import ResourceKey, kind_from_word

from .context import RunContext, RunWaiting
from .divergence import Divergence, compare
from .models.replayed import Tape
from .replayed_tools import ReplayedTools

INPUTS = frozenset({"run.started", "run.queued", "run.resumed", "approval.resolved"})
TAKEOVER_ONLY = frozenset({"stage.failed", "run.failed", "run.cancelled", "checkpoint"})
ENDS = frozenset({"run.completed", "run.failed", "run.cancelled", "run.waiting"})


@dataclass
class Recording:
    """What a replay needs of a run: its identity, inputs, graph and stream."""

    run_id: str
    target: str                       # kind/namespace/name
    revision: int
    started_at: float
    input: Any
    params: dict[str, Any]
    events: list[Event]
    graph: dict[str, Any] | None = None          # the pinned graph (an exported recording carries it)
    thread_messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> ResourceKey:
        kind, namespace, name = self.target.split("/")
        return ResourceKey(kind_from_word(kind) or kind, namespace, name)


@dataclass
class ReplayReport:
    """The outcome of a replay: same (exit 0) or the first divergence (exit 1)."""

    run: str
    target: str
    revision: int
    recorded_revision: int
    events: int
    paths: int
    divergence: Divergence | None = None

    @property
    def same(self) -> bool:
        return self.divergence is None

    @property
    def exit_code(self) -> int:
        return 0 if self.same else 1

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "target": self.target, "revision": self.revision,
                "recordedRevision": self.recorded_revision, "same": self.same, "events": self.events,
                "paths": self.paths, "divergence": None if self.divergence is None else self.divergence.to_dict()}


@dataclass
class Segment:
    inputs: list[Event]               # copied into the replay as they were recorded
    body: list[Event]                 # what the execution produced: executed again, compared
    prefix: bool = False              # interrupted: the recording is a prefix of the replay per path

    @property
    def executed(self) -> bool:
        return bool(self.body)


def segments(events: list[Event]) -> list[Segment]:
    """The recorded stream cut into execution segments (see the module's docstring)."""
    out: list[Segment] = []
    current: Segment | None = None
    for event in events:
        begins = event.path == "" and event.type in ("run.started", "run.resumed")
        if begins or current is None:
            current = Segment([], [])
            out.append(current)
        if event.type in INPUTS and not current.body:
            current.inputs.append(event)
        else:
            current.body.append(event)
    for seg in out:
        last = seg.body[-1] if seg.body else None
        ended = last is not None and last.path == "" and last.type in ENDS
        if seg.body and all(e.type in TAKEOVER_ONLY for e in seg.body) and \
                any(e.type == "run.resumed" for e in seg.inputs):
            seg.inputs, seg.body = seg.inputs + seg.body, []   # written by a takeover, nothing executed
        elif not ended or last.type == "run.cancelled" or (last.data or {}).get("reason") == "owner died":
            seg.prefix = True
    return out


class MemoryStream:
    """A run stream that keeps its events in memory (what the executors see of RunStream)."""

    def __init__(self, run_id: str, last_seq: int = 0):
        self.run_id = run_id
        self.seq = last_seq
        self.durable_seq = last_seq
        self.epoch = None
        self.error: BaseException | None = None
        self.tokens_in = 0
        self.tokens_out = 0
        self.cost_usd = 0.0
        self.events: list[Event] = []

    def emit(self, type: str, path: str, data: dict[str, Any], **updates: Any) -> Event:
        if REDACTOR.pattern is not None:
            data = REDACTOR.data(data)
        self.seq += 1
        event = Event(self.run_id, self.seq, time.time(), type, path, data)
        self.events.append(event)
        return event

    def add_usage(self, tokens_in: int, tokens_out: int, cost_usd: float) -> None:
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.cost_usd += cost_usd

    def update(self, **fields: Any) -> None:
        pass

    async def durable(self) -> None:
        self.durable_seq = self.seq

    def flush_sync(self, timeout: float = 30.0) -> None:
        self.durable_seq = self.seq

    def stop(self, error: BaseException) -> None:
        self.error = self.error or error

    def close(self) -> None:
        pass

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error


class _Reader:
    """The store as a replay's executors read it (team-control's read_logs): the run's events so
    far, the recorded ones before this segment, then the replayed ones."""

    def __init__(self, history: list[Event], stream: MemoryStream):
        self.history, self.stream = history, stream

    def read_events(self, run_id: str, after: int = 0, limit: int | None = None) -> list[Event]:
        events = [e for e in (*self.history, *self.stream.events) if e.seq > after]
        return events if limit is None else events[:limit]


async def replay(recording: Recording, graph: Graph, revision: int, *, home: Path) -> ReplayReport:
    """Execute ``recording`` again on ``graph`` (at ``revision``) and compare the streams."""
    from . import runner

    key = recording.key
    if graph.kind != key.kind or graph.root != node_key(key.namespace, key.name):
        raise UsageError(f"the graph given for the replay is not the graph of {recording.target}")
    started = datetime.fromtimestamp(recording.started_at, UTC)
    expected: list[Event] = []
    got: list[Event] = []
    prefixes: list[tuple[list[Event], list[Event]]] = []
    history: list[Event] = []
    for seg in segments(recording.events):
        history = history + seg.inputs
        if not seg.executed:
            continue
        stream = MemoryStream(recording.run_id, history[-1].seq if history else 0)
        resumed = any(e.type == "run.resumed" for e in seg.inputs)
        ctx = RunContext(run_id=recording.run_id, graph=graph, started_at=started, stream=stream,
                         home=home, store=_Reader(list(history), stream),
                         history=list(history) if resumed else None,
                         thread_messages=recording.thread_messages, script_cursors={})
        ctx.replay_tape = Tape(seg.body)
        ctx._tool_servers = ReplayedTools(ctx, recording, seg.body)
        await _execute(ctx, stream, key, recording.input, recording.params, runner)
        if seg.prefix:
            # its end (if any) was an observer's or a cancel's, not something the replay can repeat
            body = [e for e in seg.body if not (e.path == "" and e.type in ENDS)]
            prefixes.append((body, stream.events))
        else:
            expected.extend(seg.body)
            got.extend(stream.events)
        history = history + seg.body
    divergence = compare(expected, got, prefixes)
    paths = {e.path for e in recording.events}
    return ReplayReport(recording.run_id, recording.target, revision, recording.revision,
                        len(recording.events), len(paths), divergence)


async def _execute(ctx: RunContext, stream: MemoryStream, key: ResourceKey, input: Any, params: dict,
                   runner: Any) -> None:
    """Run the segment to its end and record its terminal event as the runner does."""
    status, output, error, extra = "succeeded", None, None, {}
    try:
        output = await runner._dispatch(ctx, key, input, params or {})
    except RunWaiting as waiting:
        status, extra = "waiting", {"reason": waiting.reason, **waiting.data}
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - the recorded run failed the same way, or it diverged
        status, error = "failed", str(exc) or type(exc).__name__
    if REDACTOR.pattern is not None:
        output, error = REDACTOR.data(output), REDACTOR.text(error) if error else error
    if status == "succeeded":
        stream.emit("run.completed", "", {"output": output})
    elif status == "waiting":
        stream.emit("run.waiting", "", extra)
    else:
        stream.emit("run.failed", "", {"error": error})
