"""Is a run's owning process still there, and has a waiting run's deadline passed?

``running`` with a dead owner is shown as failed. A waiting run whose approval deadline
has passed is failed for real by the first process that notices (``observe_deadlines``,
called by ``runs``): nobody has to act for a timeout to show.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .runner import HEARTBEAT_S, hostname

# A run whose heartbeat is this old (and whose owner is on another host) is taken as dead.
STALE_AFTER_S = max(30.0, HEARTBEAT_S * 5)


def owner_alive(run: Any, now: float | None = None) -> bool:
    """False when the run's owner process is known to be gone (same host: no such pid; else: stale heartbeat)."""
    if not run.owner:
        return True
    host, _, pid = run.owner.rpartition(":")
    if host == hostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    beat = run.heartbeat_at or run.started_at or run.created_at
    return ((now or time.time()) - beat) < STALE_AFTER_S


def display_status(run: Any, now: float | None = None) -> str:
    """The status to show: ``failed (owner died)`` for a running run whose owner is gone,
    ``failed (timed out)`` for a run whose approval deadline passed."""
    if run.status == "running" and not owner_alive(run, now):
        return "failed (owner died)"
    if run.status == "failed" and run.deadline_at is not None:   # only an expiry leaves it set
        return "failed (timed out)"
    if run.status == "waiting" and run.deadline_at is not None and run.deadline_at < (now or time.time()):
        return "failed (timed out)"   # passed, but not recorded (a read-only store): shown all the same
    return run.status


def observe_run(store: Any, run: Any, now: float | None = None) -> Any:
    """``run`` as it is once a passed approval deadline is recorded (the record itself when none)."""
    now = time.time() if now is None else now
    if run.status == "waiting" and run.deadline_at is not None and run.deadline_at < now:
        from .approvals import expire_waiting_run

        return expire_waiting_run(store, run, now)
    return run


def observe_deadlines(store: Any, now: float | None = None, limit: int = 1000) -> list[Any]:
    """Record the timeout of every waiting run whose approval deadline has passed; the records
    changed. Cheap when nothing expired: one indexed query, no stream read."""
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
    return changed
