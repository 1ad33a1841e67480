"""Recordings: a run's stream with what it takes to run it again, from a store or a file.

``logs RUN --export FILE`` writes JSON lines: a header line
``{"recording": "agentform/v1", "run": {...}, "graph": {...}, "threadMessages": [...]}``
(the run's identity and inputs, the graph of its target at the pinned revision, which
carries every agent, model, script content and tool server it reached, and the earlier
turns of its thread), then one event per line exactly as ``logs -o jsonl`` prints them.
``replay FILE`` needs nothing else: no store holds that run or that revision. A plain
``logs -o jsonl`` file (no header) replays too, against the revision applied now.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentform.engine.errors import UsageError
from agentform.engine.store.base import Event

from .replay import Recording

FORMAT = "agentform/v1"


def from_store(store: Any, run_id: str) -> Recording:
    """The recording of run ``run_id`` (id or prefix) as the store holds it."""
    from .runner import _input_text

    run = store.get_run(run_id)
    events = store.read_events(run.id)
    thread: list[dict[str, Any]] = []
    if run.thread is not None:
        earlier = [r for r in store.list_runs(limit=10_000, thread=run.thread)
                   if (r.created_at, r.id) < (run.created_at, run.id)]
        for other in sorted(earlier, key=lambda r: (r.created_at, r.id)):
            if other.input is not None:
                thread.append({"role": "user", "content": _input_text(other.input)})
            if other.status == "succeeded" and other.output is not None:
                thread.append({"role": "assistant", "content": _input_text(other.output)})
    started = run.started_at or (events[0].ts if events else run.created_at)
    return Recording(run.id, run.target, run.revision, started, run.input, dict(run.params or {}), events,
                     None, thread)


def export(store: Any, run_id: str, file: Path) -> tuple[str, int]:
    """Write run ``run_id``'s recording to ``file``; (run id, number of events)."""
    from agentform.engine.errors import NotFound

    recording = from_store(store, run_id)
    graph = store.get_graph(recording.key, recording.revision)
    if graph is None:
        raise NotFound(f"the graph of {recording.target} at revision {recording.revision} is not in the store")
    header = {"recording": FORMAT, "run": {
        "id": recording.run_id, "target": recording.target, "revision": recording.revision,
        "startedAt": recording.started_at, "input": recording.input, "params": recording.params,
    }, "graph": graph, "threadMessages": recording.thread_messages}
    lines = [json.dumps(header, ensure_ascii=False, default=str)]
    lines.extend(json.dumps(e.to_dict(), ensure_ascii=False, default=str) for e in recording.events)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return recording.run_id, len(recording.events)


def read(file: Path) -> Recording:
    """A recording written by ``export`` (or a plain ``logs -o jsonl`` file: no graph in it)."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the recording {file}: {exc.strerror or exc}") from None
    header: dict[str, Any] | None = None
    events: list[Event] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise UsageError(f"{file}:{number}: not a JSON line ({exc})") from None
        if not isinstance(item, dict):
            raise UsageError(f"{file}:{number}: not an event")
        if number == 1 and "recording" in item:
            if item["recording"] != FORMAT:
                raise UsageError(f"{file}:1: recording format {item['recording']!r} is not known "
                                 f"(this version reads {FORMAT})")
            header = item
            continue
        try:
            events.append(Event(str(item["run"]), int(item["seq"]), float(item.get("ts") or 0.0),
                                str(item["type"]), str(item.get("path") or ""), dict(item.get("data") or {})))
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"{file}:{number}: not an event of `agentform logs -o jsonl`") from None
    if not events:
        raise UsageError(f"{file} holds no events: write one with `agentform logs RUN --export FILE`")
    if header is not None:
        run = header.get("run") or {}
        return Recording(str(run.get("id") or events[0].run_id), str(run["target"]), int(run.get("revision") or 0),
                         float(run.get("startedAt") or events[0].ts), run.get("input"), dict(run.get("params") or {}),
                         events, header.get("graph"), list(header.get("threadMessages") or []))
    started = next((e for e in events if e.type == "run.started"), None)
    if started is None or not started.data.get("target"):
        raise UsageError(f"{file} has no run.started event naming the run's target")
    data = started.data
    return Recording(events[0].run_id, str(data["target"]), int(data.get("revision") or 0), started.ts,
                     data.get("input"), dict(data.get("params") or {}), events, None, [])
