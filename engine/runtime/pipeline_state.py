"""What a pipeline run knows about its stages, and what an earlier part of the run recorded.

A pipeline resumed after ``approve`` (or after a crash) re-executes its scheduler from
the start; every stage run whose outcome is already in the stream is restored from it
instead of being run again. ``History`` indexes those earlier events by path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentform.specs.pipeline import Stage

PENDING, RUNNING, WAITING = "pending", "running", "waiting"
SUCCEEDED, FAILED, SKIPPED = "succeeded", "failed", "skipped"
DONE = frozenset({SUCCEEDED, FAILED, SKIPPED})
TERMINAL_EVENTS = {"stage.completed": SUCCEEDED, "stage.failed": FAILED, "stage.skipped": SKIPPED}


@dataclass
class Outcome:
    """How one stage run (or one forEach item) ended."""

    status: str
    output: Any = None
    error: str | None = None
    goto: str | None = None
    failed_items: list[int] | None = None
    fatal: bool = False  # the run's own budget ran out: no continueOnError saves the run
    exhausted: bool = False  # maxVisits ran out and onExhausted: continue kept the last output


@dataclass
class StageState:
    """A stage's current status, last output and how often it has run (its visits)."""

    spec: Stage
    status: str = PENDING
    output: Any = None
    error: str | None = None
    visits: int = 0
    view: dict[str, Any] = field(default_factory=dict)
    last: dict[str, Any] | None = None   # its latest outcome, kept through a loop's reset (loop.previous)

    def settle(self, outcome: Outcome) -> None:
        self.status, self.output, self.error = outcome.status, outcome.output, outcome.error
        self.view["status"], self.view["output"] = outcome.status, outcome.output
        self.last = {"status": outcome.status, "output": outcome.output}

    def reset(self) -> None:
        """Make the stage runnable again (a loop goes back through it)."""
        self.status = PENDING
        self.view["status"] = PENDING


@dataclass(frozen=True)
class Recorded:
    """One earlier event, reduced to what the executor needs."""

    type: str
    ts: float
    data: dict[str, Any]


class History:
    """Earlier events of this run by path: stage outcomes, starts and approvals."""

    def __init__(self, events: list[Any] | None = None):
        self.outcomes: dict[str, Recorded] = {}
        self.started: set[str] = set()
        self.requests: dict[str, Recorded] = {}
        self.resolutions: dict[str, Recorded] = {}
        for event in events or ():
            self.add(event)

    def add(self, event: Any) -> None:
        kind, path = event.type, event.path
        record = Recorded(kind, event.ts, event.data or {})
        if kind in TERMINAL_EVENTS:
            self.outcomes[path] = record
        elif kind == "stage.started":
            self.started.add(path)
        elif kind == "approval.requested":
            self.requests[path] = record
        elif kind == "approval.resolved":
            self.resolutions[path] = record

    def outcome(self, path: str) -> Outcome | None:
        """The recorded end of the stage run at ``path``, if the stream has one."""
        record = self.outcomes.get(path)
        if record is None:
            return None
        return Outcome(
            status=TERMINAL_EVENTS[record.type],
            output=record.data.get("output"),
            error=record.data.get("error"),
        )


def stage_path(pipeline_path: str, name: str, visit: int, index: int | None = None) -> str:
    """``pipe/name``, ``pipe/name#2`` for the 2nd visit, ``pipe/name[3]`` for item 3."""
    segment = name if visit <= 1 else f"{name}#{visit}"
    if index is not None:
        segment = f"{segment}[{index}]"
    return f"{pipeline_path}/{segment}" if pipeline_path else segment


def loop_span(stages: dict[str, Stage], target: str, router: str) -> set[str]:
    """Stages a ``goto target`` from ``router`` re-runs: downstream of target, upstream of router."""
    downstream = {target}
    changed = True
    while changed:
        changed = False
        for name, stage in stages.items():
            if name not in downstream and any(n in downstream for n in stage.needs):
                downstream.add(name)
                changed = True
    upstream, frontier = {router}, [router]
    while frontier:
        for need in stages[frontier.pop()].needs:
            if need not in upstream:
                upstream.add(need)
                frontier.append(need)
    return downstream & upstream


def loop_members(stages: dict[str, Stage]) -> dict[str, frozenset[str]]:
    """For each stage on a loop (a route's span), every stage on the loops through it, itself
    included: what its ``loop.previous`` holds from its second visit on."""
    found: dict[str, set[str]] = {}
    for router, stage in stages.items():
        for route in stage.routes:
            if route.goto not in stages:
                continue
            span = loop_span(stages, route.goto, router)
            for name in span:
                found.setdefault(name, set()).update(span)
    return {name: frozenset(members) for name, members in found.items()}


def loop_view(visit: int, members: frozenset[str], states: dict[str, StageState]) -> dict[str, Any]:
    """``loop`` in the templates of a stage on a loop, at its ``visit``-th visit: ``visit`` and
    ``previous.<stage>`` (the latest ``output`` and ``status`` of each stage on the loop, its own
    previous one included); on the first visit (or before that stage ran) they are absent, so
    that ``loop.previous.review.output | default('')`` applies, at any depth."""
    return {"visit": visit, "previous": {name: dict(states[name].last) if visit > 1 and states[name].last
                                         else _not_yet(name) for name in sorted(members)}}


def _not_yet(stage: str) -> dict[str, Any]:
    from agentform.engine.templates import absent

    hint = (f"loop.previous.{stage} is empty until {stage} has run on an earlier visit of this loop; "
            f"write loop.previous.{stage}.output | default(...)")
    return {"output": absent(hint), "status": absent(hint)}
