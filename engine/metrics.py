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

    def lines(self, name: str, labels: str = "") -> list[str]:
        """The sample lines; ``labels`` (``model="x"``) go on each of them, before ``le``."""
        with self._lock:
            counts, total, count = list(self.counts), self.total, self.count
        out, running = [], 0
        first, own = (f"{labels},", f"{{{labels}}}") if labels else ("", "")
        for bound, n in zip(self.buckets, counts, strict=False):
            running += n
            out.append(f'{name}_bucket{{{first}le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{{first}le="+Inf"}} {count}')
        out += [f"{name}_sum{own} {total:.6f}", f"{name}_count{own} {count}"]
        return out


@dataclass
class Snapshot:
    """The store-derived figures at one moment."""

    runs_by_status: dict[str, int]
    tokens_by_model: dict[str, tuple[int, int]] = field(default_factory=dict)
    cost_by_model: dict[str, float] = field(default_factory=dict)
    # by target: runs in the store per status, and those that started (a queued one has not)
    runs_by_target: dict[tuple[str, str], int] = field(default_factory=dict)
    started_by_target: dict[str, int] = field(default_factory=dict)
    queue_depth: int = 0
    queue_oldest_age: float = 0.0          # seconds the oldest queued run has waited
    usage: dict[tuple[str, str], tuple[int, int, float]] = field(default_factory=dict)  # (model, target)
    leases: dict[str, int] = field(default_factory=dict)   # owner -> running runs it holds, heartbeat live
    expired_leases: int = 0                # running runs whose owner's heartbeat is older than the lease
    live_workers: int | None = None        # PostgreSQL workers with a live heartbeat (None: SQLite)

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
    import time

    from agentform.engine.workers.queue import lease_s

    now = time.time()
    with store._read() as cur:
        rows = cur.execute("SELECT target, status, count(*), count(started_at) FROM runs "
                           "GROUP BY target, status").fetchall()
        depth, oldest = cur.execute("SELECT count(*), min(created_at) FROM runs WHERE status = 'queued'").fetchone()
        owners = cur.execute(store._q(
            "SELECT owner, live, count(*) FROM (SELECT owner, CASE WHEN heartbeat_at >= ? THEN 1 ELSE 0 END AS live "
            "FROM runs WHERE status = 'running') AS held GROUP BY owner, live"), (now - lease_s(),)).fetchall()
        usage_rows = cur.execute("SELECT e.data, r.target FROM events e JOIN runs r ON r.id = e.run_id "
                                 "WHERE e.type = 'usage'").fetchall()
    by_status = dict.fromkeys(STATUSES, 0)
    by_target: dict[tuple[str, str], int] = {}
    started: dict[str, int] = {}
    for target, status, n, n_started in rows:
        by_status[status] = by_status.get(status, 0) + int(n)
        by_target[(target, status)] = int(n)
        started[target] = started.get(target, 0) + int(n_started)
    leases: dict[str, int] = {}
    expired = 0
    for owner, live, n in owners:
        if live:
            leases[owner or "(none)"] = leases.get(owner or "(none)", 0) + int(n)
        else:
            expired += int(n)
    usage: dict[tuple[str, str], tuple[int, int, float]] = {}
    for raw, target in usage_rows:
        data = store._dec(raw) or {}
        key = (str(data.get("model") or "(unknown)"), target)
        t_in, t_out, usd = usage.get(key, (0, 0, 0.0))
        usage[key] = (t_in + int(data.get("tokens_in") or 0), t_out + int(data.get("tokens_out") or 0),
                      usd + float(data.get("cost_usd") or 0.0))
    tokens: dict[str, tuple[int, int]] = {}
    cost: dict[str, float] = {}
    for (model, _), (t_in, t_out, usd) in usage.items():
        a, b = tokens.get(model, (0, 0))
        tokens[model] = (a + t_in, b + t_out)
        cost[model] = cost.get(model, 0.0) + usd
    return Snapshot(by_status, tokens, cost, by_target, started, int(depth or 0),
                    max(now - oldest, 0.0) if oldest is not None else 0.0, usage, leases, expired,
                    _live_workers(store, now))


def _live_workers(store: Any, now: float) -> int | None:
    """Workers (procrastinate's table, in the store's schema) with a heartbeat within the lease."""
    from agentform.engine.workers.queue import is_postgres, lease_s

    if not is_postgres(store):
        return None
    with store._read() as cur:
        if cur.execute("SELECT to_regclass('procrastinate_workers')").fetchone()[0] is None:
            return 0
        row = cur.execute("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > "
                          "now() - make_interval(secs => %s)", (lease_s(),)).fetchone()
    return int(row[0])


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
    lines += _target_lines(snap)
    lines += [
        "# HELP agentform_sse_subscribers Followers of run streams served by this process.",
        "# TYPE agentform_sse_subscribers gauge",
        f"agentform_sse_subscribers {subscribers}",
        "# HELP agentform_event_append_latency_seconds From an event's emit to this process reading it from the store.",
        "# TYPE agentform_event_append_latency_seconds histogram",
        *latency.lines("agentform_event_append_latency_seconds"),
    ]
    return "\n".join(lines) + "\n"


def _target_lines(snap: Snapshot) -> list[str]:
    """Runs, tokens and USD by target; the queue; workers and their leases (all from the store)."""
    lines = ["# HELP agentform_runs_started_total Runs that started, by target (runs in the store: gc lowers it).",
             "# TYPE agentform_runs_started_total counter"]
    lines += [f'agentform_runs_started_total{{target="{_label(t)}"}} {n}' for t, n in sorted(snap.started_by_target.items())]
    lines += ["# HELP agentform_runs_finished_total Runs that ended, by target and status (runs in the store).",
              "# TYPE agentform_runs_finished_total counter"]
    lines += [f'agentform_runs_finished_total{{target="{_label(t)}",status="{s}"}} {n}'
              for (t, s), n in sorted(snap.runs_by_target.items()) if s in ("succeeded", "failed", "cancelled")]
    lines += ["# HELP agentform_runs_by_target Runs in the store by target and status.",
              "# TYPE agentform_runs_by_target gauge"]
    lines += [f'agentform_runs_by_target{{target="{_label(t)}",status="{s}"}} {n}'
              for (t, s), n in sorted(snap.runs_by_target.items())]
    lines += ["# HELP agentform_queue_depth Runs queued for a worker.", "# TYPE agentform_queue_depth gauge",
              f"agentform_queue_depth {snap.queue_depth}",
              "# HELP agentform_queue_oldest_age_seconds How long the oldest queued run has waited (0: none).",
              "# TYPE agentform_queue_oldest_age_seconds gauge",
              f"agentform_queue_oldest_age_seconds {snap.queue_oldest_age:.3f}",
              "# HELP agentform_usage_tokens_total Tokens by model, target and direction (the streams' usage events).",
              "# TYPE agentform_usage_tokens_total counter"]
    for (model, target), (t_in, t_out, _) in sorted(snap.usage.items()):
        label = f'model="{_label(model)}",target="{_label(target)}"'
        lines += [f'agentform_usage_tokens_total{{{label},direction="in"}} {t_in}',
                  f'agentform_usage_tokens_total{{{label},direction="out"}} {t_out}']
    lines += ["# HELP agentform_usage_cost_usd_total USD by model and target.",
              "# TYPE agentform_usage_cost_usd_total counter"]
    lines += [f'agentform_usage_cost_usd_total{{model="{_label(m)}",target="{_label(t)}"}} {u[2]:.10f}'
              for (m, t), u in sorted(snap.usage.items())]
    lines += ["# HELP agentform_worker_leases Running runs held by each owner whose heartbeat is live.",
              "# TYPE agentform_worker_leases gauge"]
    lines += [f'agentform_worker_leases{{owner="{_label(o)}"}} {n}' for o, n in sorted(snap.leases.items())]
    lines += ["# HELP agentform_worker_leases_expired Running runs whose owner's heartbeat is older than the lease.",
              "# TYPE agentform_worker_leases_expired gauge", f"agentform_worker_leases_expired {snap.expired_leases}"]
    if snap.live_workers is not None:
        lines += ["# HELP agentform_workers_live Workers with a heartbeat within the lease (PostgreSQL).",
                  "# TYPE agentform_workers_live gauge", f"agentform_workers_live {snap.live_workers}"]
    return lines
