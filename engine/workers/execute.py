"""Execute a queued run wherever it stands: first start, continuation, or takeover.

``execute_queued`` is what a worker's job and a detached process call. It reads the run and
acts through the owner compare-and-set only:

- ``queued`` and never started (its stream is ``run.queued`` alone): one takeover appends
  ``run.started`` and the run executes from the beginning;
- ``queued`` after a release (a draining worker gave it back): resumed from its stream;
- ``running`` under an owner whose heartbeat is older than the lease (a worker killed, or
  paused past its lease): released to ``queued`` in one conditional update, which bumps the
  owner epoch (the old owner's appends are rejected from then on), then resumed;
- finished or ``waiting``: nothing to do.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentform.engine.events import OnEvent
from agentform.engine.store.base import RunRecord

from .queue import lease_s

FINISHED = ("succeeded", "failed", "cancelled")


def owner_gone(run: RunRecord, now: float, lease: float) -> bool:
    """A running run's owner is gone: its process is dead on this host, or its heartbeat is
    older than the lease (a paused process counts as gone: the epoch fences it if it wakes)."""
    from agentform.engine.runtime.liveness import owner_process_alive

    if not run.owner:
        return True
    if owner_process_alive(run.owner) is False:
        return True
    beat = run.heartbeat_at or run.started_at or run.created_at
    return now - beat >= lease


def release(store: Any, run: RunRecord, now: float) -> RunRecord:
    """Give ``run`` back to the queue at a new epoch (its owner unchanged, so ``run.resumed``
    names it): whoever wrote under the old epoch is fenced from here on."""
    return store.take_over_run(run.id, expect_status={run.status}, expect_epoch=run.owner_epoch,
                               owner=run.owner or "", now=now, status="queued")


async def start_queued_async(store: Any, run: RunRecord, *, home: Path, on_event: OnEvent | None = None) -> Any:
    """Start a queued run that never started: ``run.started`` commits with the takeover."""
    from agentform.engine import notify, tracing
    from agentform.engine.events import EventWriter
    from agentform.engine.runtime import runner
    from agentform.engine.runtime.context import RunContext

    key = runner.parse_target(run.target)
    graph, _ = await asyncio.to_thread(runner.load_graph, store, key, run.revision)
    runner.preflight(graph)
    notify.expect(run.id, graph)
    now = time.time()
    # In a thread: a worker's other runs go on during the round trip and commit.
    run = await asyncio.to_thread(runner.take_over, store, run, now=now, status="running", started_at=now, events=[
        ("run.started", "", {"target": run.target, "revision": run.revision, "input": run.input,
                             "params": run.params, "thread": run.thread, "owner": runner.owner_id(),
                             "queuedAt": _iso(run.created_at)}),
    ])
    # Traced (OTEL_* set): run.queued and run.started, committed with the takeover, are its past.
    on_event = tracing.observe(run.id, on_event, history=lambda: store.read_events(run.id, limit=run.last_seq))
    stream = EventWriter.for_store(store).open(run.id, run.last_seq, on_event, epoch=run.owner_epoch)
    msgs, cursors = ([], {}) if run.thread is None else runner.thread_state(store, run.thread, run.id)
    ctx = RunContext(run_id=run.id, graph=graph, started_at=datetime.fromtimestamp(now, UTC), stream=stream,
                     home=home, store=store, thread_messages=msgs, script_cursors=cursors)
    return await runner._execute(ctx, stream, key, run.input, run.params, now)


async def execute_queued(store: Any, run_id: str, *, home: Path, on_event: OnEvent | None = None,
                         lease: float | None = None) -> Any:
    """Execute the run as it stands (see the module docstring); None when there is nothing to do."""
    from agentform.engine.runtime.runner import resume_run_async

    lease = lease_s() if lease is None else lease
    deadline = time.monotonic() + 3 * lease
    while True:
        run = await asyncio.to_thread(store.get_run, run_id)
        if run.status == "failed" and (run.error or "").startswith("owner died"):
            # ended by an observer that did not know workers look after it: continue it all the same
            return await resume_run_async(store, run.id, home=home, on_event=on_event, expect=run)
        if run.status in FINISHED or run.status == "waiting":
            return None
        now = time.time()
        if run.status == "queued":
            if run.last_seq <= 1:
                return await start_queued_async(store, run, home=home, on_event=on_event)
            return await resume_run_async(store, run.id, home=home, on_event=on_event, expect=run)
        if owner_gone(run, now, lease):
            await asyncio.to_thread(release, store, run, now)
            continue   # resumed from the released record on the next turn (unless another took it)
        if time.monotonic() > deadline:
            # A live owner executes it (e.g. `agentform resume` in a terminal): not ours. If that
            # owner dies, the sweep finds the run without a job and queues it again.
            return None
        beat = run.heartbeat_at or run.started_at or run.created_at
        await asyncio.sleep(max(0.05, min(lease, beat + lease - now)))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")

