"""Approval stages: ask (``approval.requested``), park the run, and answer it later.

Nothing stays alive while a run waits. ``resolve_approval`` (``agentform approve``, any
process, any time later) takes the run over (one compare-and-set of its status and owner
epoch, with ``approval.resolved`` in the same transaction) and resumes it; its pipeline
executor rebuilds its state from the stream and finds the decision there. Of two answers
at the same moment one wins; the other gets RunTakenOver naming the winner.

A parked run records its earliest approval expiry (``deadline_at``). Whoever first sees
that deadline passed (``runs``, ``approve``, a resume) records the timeout through the
same compare-and-set (``expire_waiting_run``): the run fails without anyone answering.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentform.engine.errors import RunTakenOver, UsageError
from agentform.engine.runtime.pipeline_state import (
    FAILED,
    SUCCEEDED,
    TERMINAL_EVENTS,
    WAITING,
    History,
    Outcome,
)
from agentform.specs.common import parse_duration
from agentform.specs.pipeline import Stage

Clock = Callable[[], float]


def approval_stage(
    stage: Stage, path: str, message: str, history: History, emit: Callable[..., None], clock: Clock
) -> Outcome:
    """The approval at ``path``: ask once, then wait, expire, or take the recorded decision."""
    assert stage.approval is not None
    timeout = str(stage.approval.timeout)
    request = history.requests.get(path)
    if request is None:
        expires = clock() + parse_duration(timeout)
        emit("approval.requested", path, {
            "stage": stage.name, "message": message, "timeout": timeout, "expiresAt": _iso(expires),
        })
        return Outcome(WAITING)
    expires = _epoch(request.data.get("expiresAt"))
    resolution = history.resolutions.get(path)
    if resolution is not None and resolution.ts <= expires:
        data = resolution.data
        decision = {"approved": bool(data.get("approved")), "by": data.get("by"), "message": data.get("message")}
        if decision["approved"]:
            return Outcome(SUCCEEDED, decision)
        said = f": {decision['message']}" if decision["message"] else ""
        return Outcome(FAILED, decision, f"rejected by {decision['by']}{said}")
    if resolution is not None or clock() > expires:
        return Outcome(FAILED, None, (
            f"the approval expired at {_iso(expires)} "
            f"(timeout {timeout}) before it was answered"
        ))
    return Outcome(WAITING)


def pending_approvals(events: list[Any]) -> list[Any]:
    """``approval.requested`` events not answered yet and whose stage has not ended."""
    requests: dict[str, Any] = {}
    for event in events:
        if event.type == "approval.requested":
            requests[event.path] = event
        elif event.type == "approval.resolved" or event.type in TERMINAL_EVENTS:
            requests.pop(event.path, None)
    return list(requests.values())


def resolve_approval(
    store: Any,
    run_id: str,
    *,
    approve: bool,
    by: str,
    message: str | None,
    home: Path,
    stage: str | None = None,
    on_event: Callable[[Any], None] | None = None,
    clock: Clock = time.time,
) -> Any:
    """Synchronous ``resolve_approval_async`` (not from inside a running event loop)."""
    import asyncio

    return asyncio.run(resolve_approval_async(store, run_id, approve=approve, by=by, message=message, home=home,
                                              stage=stage, on_event=on_event, clock=clock))


async def resolve_approval_async(
    store: Any,
    run_id: str,
    *,
    approve: bool,
    by: str,
    message: str | None,
    home: Path,
    stage: str | None = None,
    on_event: Callable[[Any], None] | None = None,
    clock: Clock = time.time,
) -> Any:
    """Answer a waiting approval of ``run_id`` and continue the run here; a RunResult."""
    from agentform.engine.runtime import runner

    run = store.get_run(run_id)
    now = clock()
    if run.status != "waiting":
        if run.status in ("running", "queued"):
            runner.check_resumable(run, now, store)   # a live owner: RunTakenOver names it
        if run.status == "running":
            # The process that continued it (an earlier approve) died: its decision is on record.
            from .liveness import record_owner_died

            run = record_owner_died(store, run, now)
            raise UsageError(f"run {run.id} is not waiting for an approval: the process continuing it "
                             f"died; `agentform resume {run.id}` continues it")
        # A process that took it over (an approve that won a race, a reject, a cancel) is named:
        # the loser of a race arrives here once the winner has already finished the run.
        by = f": the process {run.owner} continued it" if run.owner_epoch > 1 and run.owner else ""
        raise UsageError(f"run {run.id} is not waiting for an approval (it is {run.status}){by}")
    # The stream as of the record read (not what a racing takeover appended since): the
    # takeover below checks that record's epoch, so a loser fails there, naming the winner.
    pending = pending_approvals(store.read_events(run.id, limit=run.last_seq))
    if stage is not None:
        pending = [e for e in pending if _names_stage(e, stage)]
        if not pending:
            raise UsageError(f"run {run.id} has no pending approval for stage '{stage}'")
    if not pending:
        raise UsageError(f"run {run.id} has no pending approval")
    request = pending[0]
    if now > _epoch(request.data.get("expiresAt")) or (run.deadline_at is not None and now > run.deadline_at):
        # A late answer is not recorded: the deadline is, and the run fails.
        record = expire_waiting_run(store, run, now)
        if record.status in ("running", "waiting"):
            raise RunTakenOver(record.id, record.owner, record.status, record.owner_epoch)
        return runner.expired_result(record)
    extra = [("approval.resolved", request.path, {
        "stage": request.data.get("stage"), "approved": approve, "by": by, "message": message,
    })]
    return await runner.resume_run_async(store, run.id, home=home, extra_events=extra, on_event=on_event,
                                         expect=run)


def os_user() -> str:
    """Who answers by default: the OS user of this process."""
    import getpass
    import os

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (containers): fall back to the uid
        return f"uid:{os.getuid()}"


def deadline_of(events: list[Any]) -> float | None:
    """The earliest expiry among the approvals still pending after ``events`` (None: none)."""
    expiries = [_epoch(e.data.get("expiresAt")) for e in pending_approvals(events)]
    finite = [t for t in expiries if t != float("inf")]
    return min(finite) if finite else None


def expire_waiting_run(store: Any, run: Any, now: float) -> Any:
    """Record that ``run`` (waiting, as read) passed its approval deadline: ``run.resumed``,
    ``stage.failed`` at the expired approval and ``run.failed``, status failed, in one
    takeover. Returns the record as it is now (another process's, if it acted first)."""
    from agentform.engine.runtime import runner

    expired = [e for e in pending_approvals(store.read_events(run.id, limit=run.last_seq))
               if _epoch(e.data.get("expiresAt")) < now]
    if not expired:
        return run
    request = min(expired, key=lambda e: _epoch(e.data.get("expiresAt")))
    stage = request.data.get("stage") or request.path.rsplit("/", 1)[-1]
    parts = request.path.split("/")
    pipeline = parts[-2] if len(parts) > 1 else ""
    reason = (f"the approval expired at {request.data.get('expiresAt')} "
              f"(timeout {request.data.get('timeout')}) before it was answered")
    error = f"stage '{stage}' of pipeline '{pipeline}' timed out: {reason}"
    events = [
        ("run.resumed", "", {"previousOwner": run.owner, "previousStatus": run.status, "reason": "deadline"}),
        ("stage.failed", request.path, {"stage": stage, "error": reason}),
        ("run.failed", "", {"error": error, "reason": "timeout"}),
    ]
    try:
        return runner.take_over(store, run, now=now, events=events, status="failed", error=error,
                                finished_at=now, deadline_at=_epoch(request.data.get("expiresAt")))
    except RunTakenOver:
        return store.get_run(run.id)


def _names_stage(event: Any, stage: str) -> bool:
    return event.path == stage or event.path.endswith("/" + stage) or event.data.get("stage") == stage


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


def _epoch(text: Any) -> float:
    if not isinstance(text, str):
        return float("inf")
    return datetime.fromisoformat(text).timestamp()
