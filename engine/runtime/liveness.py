"""Is a run's owning process still there, and has a waiting run's deadline passed?

Whoever first notices records it, through the owner compare-and-set, so nobody has to act
for the store to tell the truth: a ``running`` run whose owner is gone gets ``run.failed``
(``data.reason: "owner died"``; ``resume`` continues it), a waiting run whose approval
deadline passed gets its timeout (``observe_run`` for one run: get_run, logs -f, resume,
cancel; ``observe_deadlines`` for a listing: ``runs``). Of two observers one writes; the
other reads the record it left.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .runner import HEARTBEAT_S, hostname

# A run whose heartbeat is this old (and whose owner is on another host) is taken as dead.
STALE_AFTER_S = max(30.0, HEARTBEAT_S * 5)
OWNER_DIED = "owner died"


def owner_process_alive(owner: str) -> bool | None:
    """Is the ``host:pid`` owner's process alive? None when it is not on this host (only its
    heartbeat can tell)."""
    host, _, pid = owner.rpartition(":")
    if host != hostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_alive(run: Any, now: float | None = None) -> bool:
    """False when the run's owner process is known to be gone (same host: no such pid; else: stale heartbeat)."""
    if not run.owner:
        return True
    alive = owner_process_alive(run.owner)
    if alive is not None:
        return alive
    beat = run.heartbeat_at or run.started_at or run.created_at
    return ((now or time.time()) - beat) < STALE_AFTER_S


def display_status(run: Any, now: float | None = None) -> str:
    """The status to show: ``failed (owner died)`` for a running run whose owner is gone,
    ``failed (timed out)`` for a run whose approval deadline passed."""
    if run.status == "running" and not owner_alive(run, now):
        return "failed (owner died)"   # not recorded (a read-only store): shown all the same
    if run.status == "failed" and (run.error or "").startswith(OWNER_DIED):
        return "failed (owner died)"
    if run.status == "failed" and run.deadline_at is not None:   # only an expiry leaves it set
        return "failed (timed out)"
    if run.status == "waiting" and run.deadline_at is not None and run.deadline_at < (now or time.time()):
        return "failed (timed out)"   # passed, but not recorded (a read-only store): shown all the same
    return run.status


def observe_run(store: Any, run: Any, now: float | None = None) -> Any:
    """``run`` as it is once a passed approval deadline or a dead owner is recorded (the record
    itself when neither)."""
    now = time.time() if now is None else now
    if run.status == "waiting" and run.deadline_at is not None and run.deadline_at < now:
        from .approvals import expire_waiting_run

        return expire_waiting_run(store, run, now)
    if run.status == "running" and not owner_alive(run, now):
        return record_owner_died(store, run, now)
    return run


def record_owner_died(store: Any, run: Any, now: float) -> Any:
    """End the segment of ``run`` (running, as read, its owner gone) with ``run.failed``
    (``reason: owner died``), status failed; the record as it is now (another observer's,
    or a resumer's, if it acted first). The owner stays the dead one: ``resume`` names it."""
    from agentform.engine.errors import RunTakenOver
    from agentform.engine.workers.queue import left_to_workers

    if left_to_workers(store, run):
        return run   # queued for workers: the sweep hands it to another worker, which resumes it
    error = f"{OWNER_DIED}: {run.owner} stopped without finishing the run; `agentform resume {run.id}` continues it"
    ended = run.heartbeat_at or run.started_at or now   # its last sign of life: the duration stops there
    try:
        return store.take_over_run(run.id, expect_status={"running"}, expect_epoch=run.owner_epoch,
                                   owner=run.owner or "", now=now, status="failed", error=error,
                                   finished_at=ended, events=[("run.failed", "", {
                                       "error": error, "reason": OWNER_DIED, "owner": run.owner})])
    except RunTakenOver:
        return store.get_run(run.id)


def died_owner(store: Any, run: Any) -> bool:
    """Whether ``run`` failed because its owner died (its last event says so), so ``resume`` may continue it."""
    if run.status != "failed" or not run.last_seq:
        return False
    last = store.read_events(run.id, after=run.last_seq - 1, limit=1)
    return bool(last) and last[0].type == "run.failed" and last[0].data.get("reason") == OWNER_DIED


def observe_deadlines(store: Any, now: float | None = None, limit: int = 1000) -> list[Any]:
    """Record the timeout of every waiting run whose approval deadline has passed, and the end
    of every running run whose owner is gone; the records changed. Cheap when nothing
    happened: two indexed queries, no stream read."""
    from agentform.engine.errors import StoreError

    from .approvals import expire_waiting_run

    now = time.time() if now is None else now
    changed = []
    for run in store.list_runs(limit=limit, status="waiting"):
        if run.deadline_at is not None and run.deadline_at < now:
            try:
                changed.append(expire_waiting_run(store, run, now))
            except StoreError:   # a listing must not fail on a store it cannot write: shown, not recorded
                continue
    for run in store.list_runs(limit=limit, status="running"):
        if not owner_alive(run, now):
            try:
                changed.append(record_owner_died(store, run, now))
            except StoreError:
                continue
    return changed
