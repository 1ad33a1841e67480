"""Fork: a new run whose past is another run's stream up to a seq, continuing live from there.

The fork's stream starts with a copy of the original's events 1..SEQ (a trailing terminal
event dropped: the fork goes on), its ``run.started`` marked ``forkedFrom: {run, seq}`` and
carrying the fork's revision; they are written with the new run record in one transaction.
The fork is then resumed like any interrupted run (runner.resume_run_async): what the past
holds is played back, not called again (agent answers, stage outcomes, model turns, tool
results), calls unfinished at SEQ are issued again, and ``run.resumed`` marks where the live
execution starts. Before anything is written, every path of the past must be one the graph
of the chosen revision can run (``missing_path``), so a fork never starts half-way into a
team or pipeline that no longer has that member or stage.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from agentform.engine.errors import RunError, UsageError
from agentform.engine.events import OnEvent
from agentform.engine.graph import Graph
from agentform.engine.ids import new_run_id
from agentform.engine.store.base import Event, RunRecord

from .result import RunResult

ENDS = frozenset({"run.completed", "run.failed", "run.cancelled", "run.waiting"})
_SEGMENT = re.compile(r"(?P<name>[^#\[]+)(?:#\d+)?(?:\[\d+\])?")


def missing_path(graph: Graph, path: str) -> str | None:
    """None when ``path`` names an invocation the graph can run; else what the graph lacks."""
    parts = path.split("/")
    root = {"Agent": graph.agents, "Team": graph.teams, "Pipeline": graph.pipelines}[graph.kind].get(graph.root)
    if root is None or parts[0] != root.name:
        return f"'{parts[0]}' is not the run's target"
    where: tuple[str, ...] = (graph.kind.lower(), graph.root)
    for part in parts[1:]:
        found = _SEGMENT.fullmatch(part)
        name = found.group("name") if found else part
        kind, key = where[0], where[1]
        if kind == "team":
            edge = next((m for m in graph.teams[key].members if m.name == name), None)
            if edge is None:
                return f"team {key} has no member '{name}'"
            where = ("agent" if edge.kind == "Agent" else "team", edge.target)
        elif kind == "pipeline":
            if name not in graph.pipelines[key].targets:
                return f"pipeline {key} has no stage '{name}'"
            where = ("stage", key, name)
        elif kind == "stage":
            edge = graph.pipelines[key].targets[where[2]]
            nodes = {"agent": graph.agents, "team": graph.teams, "pipeline": graph.pipelines}.get(edge.kind)
            node = nodes.get(edge.target or "") if nodes is not None else None
            if node is None or node.name != name:
                return f"stage '{where[2]}' of pipeline {key} does not call '{name}'"
            where = (edge.kind, edge.target or "")
        else:   # an agent: only agents it creates at run time live below it
            agent = graph.agents[key]
            if any(use.builtin == "team-control" for use in agent.spec.tools):
                return None
            return f"agent {key} has nothing below it named '{name}'"
    return None


async def fork_run(store: Any, run_id: str, at_seq: int, *, revision: str = "current", home: Path,
                   on_event: OnEvent | None = None) -> RunResult:
    """Fork run ``run_id`` at ``at_seq`` onto the current (or its ``original``) revision and run it."""
    from .runner import load_graph, owner_id, preflight, resume_run_async

    if revision not in ("current", "original"):
        raise UsageError(f"--revision {revision!r}: use current or original")
    run = store.get_run(run_id)
    if not 1 <= at_seq <= run.last_seq:
        raise UsageError(f"--at {at_seq}: run {run.id} has events 1..{run.last_seq}")
    past = store.read_events(run.id, limit=at_seq + 1)
    if len(past) > at_seq:
        # A reply's usage is emitted with it (no await between them): it goes with its reply.
        after, last = past.pop(), past[-1]
        if after.type == "usage" and last.type == "message.completed" and after.path == last.path:
            past.append(after)
    while past and past[-1].path == "" and past[-1].type in ENDS:
        past.pop()
    # A reply still streaming at SEQ is asked for again: its partial chunks are not part of the past.
    answered: set[str] = set()
    for index in range(len(past) - 1, -1, -1):
        event = past[index]
        if event.type == "message.completed":
            answered.add(event.path)
        elif event.type == "message.delta" and event.path not in answered:
            del past[index]
    if not any(e.type == "run.started" for e in past):
        raise UsageError(f"--at {at_seq}: run {run.id} has not started by then; fork at run.started or later")
    kind, namespace, name = run.target.split("/")
    from agentform.specs import ResourceKey, kind_from_word

    key = ResourceKey(kind_from_word(kind) or kind, namespace, name)
    graph, number = load_graph(store, key, run.revision if revision == "original" else None)
    for event in past:
        if event.path:
            lacking = missing_path(graph, event.path)
            if lacking is not None:
                raise RunError(
                    f"cannot fork run {run.id} at seq {at_seq}: its past runs {event.path} (seq {event.seq}), "
                    f"which {run.target} at revision {number} does not have ({lacking}); fork at a seq "
                    "before that path started, or apply manifests that still have it")
    preflight(graph)
    now = time.time()
    fork_id = new_run_id(now)
    tokens_in = tokens_out = 0
    cost = 0.0
    copied: list[Event] = []
    for event in past:
        data = event.data
        if event.type == "run.started":
            data = {**data, "revision": number, "owner": owner_id(), "forkedFrom": {"run": run.id, "seq": at_seq}}
        elif event.type == "usage":
            tokens_in += int(data.get("tokens_in") or 0)
            tokens_out += int(data.get("tokens_out") or 0)
            cost += float(data.get("cost_usd") or 0.0)
        copied.append(Event(fork_id, len(copied) + 1, event.ts, event.type, event.path, data))
    # Queued until this process takes it over in resume_run_async (the same compare-and-set as any resume).
    record = RunRecord(id=fork_id, target=run.target, status="queued", revision=number, created_at=now,
                       thread=run.thread, input=run.input, params=dict(run.params or {}), owner=owner_id(),
                       heartbeat_at=now, started_at=now, owner_epoch=1)
    store.append_events(copied, run_updates={fork_id: {"tokens_in": tokens_in, "tokens_out": tokens_out,
                                                        "cost_usd": round(cost, 10)}}, new_runs=[record])
    return await resume_run_async(store, fork_id, home=home, on_event=on_event)
