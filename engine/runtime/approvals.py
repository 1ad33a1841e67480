"""Approval stages: ask (``approval.requested``), park the run, and answer it later.

Nothing stays alive while a run waits. ``resolve_approval`` (``agentform approve``, any
process, any time later) appends ``approval.resolved`` and resumes the run, whose
pipeline executor rebuilds its state from the stream and finds the decision there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentform.engine.errors import UsageError
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
    """Answer a waiting approval of ``run_id`` and continue the run here; a RunResult."""
    from agentform.engine.runtime import runner

    run = store.get_run(run_id)
    if run.status != "waiting":
        raise UsageError(f"run {run.id} is not waiting for an approval (it is {run.status})")
    pending = pending_approvals(store.read_events(run.id))
    if stage is not None:
        pending = [e for e in pending if _names_stage(e, stage)]
        if not pending:
            raise UsageError(f"run {run.id} has no pending approval for stage '{stage}'")
    if not pending:
        raise UsageError(f"run {run.id} has no pending approval")
    request = pending[0]
    extra: list[tuple[str, str, dict]] = []
    if clock() <= _epoch(request.data.get("expiresAt")):
        extra.append(("approval.resolved", request.path, {
            "stage": request.data.get("stage"), "approved": approve, "by": by, "message": message,
        }))
    # An expired approval gets no answer recorded: the resumed run finds it expired and fails.
    return runner.resume_run(store, run.id, home=home, extra_events=extra, on_event=on_event)


def _names_stage(event: Any, stage: str) -> bool:
    return event.path == stage or event.path.endswith("/" + stage) or event.data.get("stage") == stage


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


def _epoch(text: Any) -> float:
    if not isinstance(text, str):
        return float("inf")
    return datetime.fromisoformat(text).timestamp()
