"""What ``/metrics`` reports, in the Prometheus text format (0.0.4), written without a client library.

Counts come from the store, so a run that a worker or a CLI process executes elsewhere is
counted the same: runs by status, active runs (running or waiting), tokens and cost by model
(the streams' usage events). Two figures are this process's own: the followers it serves
(SSE subscribers) and how long after an event was emitted this process read it from the
store (``agentform_event_append_latency_seconds``: emit, group commit, and the wake of
followers, as a follower sees it).
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("queued", "running", "waiting", "succeeded", "failed", "cancelled")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """A cumulative histogram with fixed buckets; thread-safe."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.count = 0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        value = max(value, 0.0)
        with self._lock:
            self.counts[bisect.bisect_left(self.buckets, value)] += 1
            self.total += value
            self.count += 1

    def lines(self, name: str) -> list[str]:
        with self._lock:
            counts, total, count = list(self.counts), self.total, self.count
        out, running = [], 0
        for bound, n in zip(self.buckets, counts, strict=False):
            running += n
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{le="+Inf"}} {count}')
        out += [f"{name}_sum {total:.6f}", f"{name}_count {count}"]
        return out


@dataclass
class Snapshot:
    """The store-derived figures at one moment."""

    runs_by_status: dict[str, int]
    tokens_by_model: dict[str, tuple[int, int]] = field(default_factory=dict)
    cost_by_model: dict[str, float] = field(default_factory=dict)

    @property
    def active(self) -> int:
        return self.runs_by_status.get("running", 0) + self.runs_by_status.get("waiting", 0)


_SNAPSHOTS: dict[int, tuple[float, Snapshot]] = {}
_SNAPSHOT_LOCK = threading.Lock()


def snapshot(store: Any, max_age: float = 2.0) -> Snapshot:
    """The store's figures, read at most every ``max_age`` s per store: ``/metrics`` needs no token,
    so scrapes in a loop must not become a query load on the store."""
    import time

    now = time.monotonic()
    with _SNAPSHOT_LOCK:
        cached = _SNAPSHOTS.get(id(store))
        if cached is not None and now - cached[0] < max_age:
            return cached[1]
    snap = _read_snapshot(store)
    with _SNAPSHOT_LOCK:
        _SNAPSHOTS[id(store)] = (now, snap)
    return snap


def _read_snapshot(store: Any) -> Snapshot:
    from agentform.engine.cost import cost_report

    with store._read() as cur:
        rows = cur.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall()
    by_status = dict.fromkeys(STATUSES, 0)
    by_status.update({status: int(n) for status, n in rows})
    report = cost_report(store, by="model")
    return Snapshot(by_status, {r.key: (r.tokens_in, r.tokens_out) for r in report.rows},
                    {r.key: r.cost_usd for r in report.rows})


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(snap: Snapshot, *, subscribers: int, latency: Histogram) -> str:
    lines = [
        "# HELP agentform_runs Runs in the store by status.",
        "# TYPE agentform_runs gauge",
        *(f'agentform_runs{{status="{_label(s)}"}} {n}' for s, n in sorted(snap.runs_by_status.items())),
        "# HELP agentform_runs_active Runs running or waiting for an approval.",
        "# TYPE agentform_runs_active gauge",
        f"agentform_runs_active {snap.active}",
        "# HELP agentform_tokens_total Tokens used, by model and direction, from the streams' usage events.",
        "# TYPE agentform_tokens_total counter",
    ]
    for model, (tokens_in, tokens_out) in sorted(snap.tokens_by_model.items()):
        lines.append(f'agentform_tokens_total{{model="{_label(model)}",direction="in"}} {tokens_in}')
        lines.append(f'agentform_tokens_total{{model="{_label(model)}",direction="out"}} {tokens_out}')
    lines += ["# HELP agentform_cost_usd_total USD spent, by model.", "# TYPE agentform_cost_usd_total counter"]
    lines += [f'agentform_cost_usd_total{{model="{_label(m)}"}} {c:.10f}'
              for m, c in sorted(snap.cost_by_model.items())]
    lines += [
        "# HELP agentform_sse_subscribers Followers of run streams served by this process.",
        "# TYPE agentform_sse_subscribers gauge",
        f"agentform_sse_subscribers {subscribers}",
        "# HELP agentform_event_append_latency_seconds From an event's emit to this process reading it from the store.",
        "# TYPE agentform_event_append_latency_seconds histogram",
        *latency.lines("agentform_event_append_latency_seconds"),
    ]
    return "\n".join(lines) + "\n"
