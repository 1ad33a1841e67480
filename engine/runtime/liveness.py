"""Is a run's owning process still there? ``running`` with a dead owner is shown as failed."""

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
    """The status to show: ``failed (owner died)`` for a running run whose owner is gone."""
    if run.status == "running" and not owner_alive(run, now):
        return "failed (owner died)"
    return run.status
