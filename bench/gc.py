"""Benchmark: ``gc`` deleting 100,000 events of 1,000 finished runs while a worker writes.

Run as ``python bench/gc.py`` (by ``make bench``). On each backend: 1,000 runs of 100 events
each, finished 40 days ago, are written; a worker (a separate process, as a real worker is)
appends batches of 10 events to runs of its own, one append every 2 ms, and times each
append. After a few seconds of that alone (the baseline), ``Engine.gc("30d")`` deletes the
1,000 runs while the worker goes on. Printed: the time gc took, and the worker's append
latency (p50 / p99 / max) during gc and during the baseline. PostgreSQL uses
``AGENTFORM_TEST_PG`` (default postgresql://postgres@127.0.0.1:5432/test) in a schema of its
own, dropped afterwards; ``AGENTFORM_TEST_PG=skip`` leaves it out.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 1_000
EVENTS_PER_RUN = 100
BASELINE_S = 4.0
WORKER_BATCH = 10
WORKER_PAUSE_S = 0.002
DAY = 86400.0


def populate(store) -> None:
    """RUNS finished runs of EVENTS_PER_RUN events each, 40 days old, written 10 runs per batch."""
    from agentform.engine.store.base import Event, RunRecord

    old = time.time() - 40 * DAY
    for first in range(0, RUNS, 10):
        runs, events = [], []
        for n in range(first, first + 10):
            run_id = f"old{n:023d}"
            runs.append(RunRecord(id=run_id, target="team/default/research", status="succeeded", revision=1,
                                  created_at=old, started_at=old, finished_at=old + 60))
            events += [Event(run_id, seq, old + seq * 0.1, "message.delta" if seq % 20 else "usage",
                             "research/lead", {"text": "The market for heat pumps grew by ", "n": seq})
                       for seq in range(1, EVENTS_PER_RUN + 1)]
        store.append_events(events, new_runs=runs)


def worker(url: str) -> int:
    """The writer: appends until stdin closes, then prints [(start, seconds), ...] as JSON."""
    import threading

    from agentform.engine.store import open_store
    from agentform.engine.store.base import Event, RunRecord

    store = open_store(url)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    runs = [f"live{os.getpid():08d}{i:014d}" for i in range(4)]
    now = time.time()
    for run_id in runs:
        store.create_run(RunRecord(id=run_id, target="team/default/research", status="running", revision=1,
                                   created_at=now, started_at=now))
    seqs = dict.fromkeys(runs, 0)
    timings: list[tuple[float, float]] = []
    print("ready", flush=True)
    turn = 0
    while not stop.is_set():
        run_id = runs[turn % len(runs)]
        turn += 1
        first = seqs[run_id] + 1
        batch = [Event(run_id, s, time.time(), "message.delta", "research/lead", {"text": "more words "})
                 for s in range(first, first + WORKER_BATCH)]
        began = time.time()
        store.append_events(batch, {run_id: {"heartbeat_at": began}})
        timings.append((began, time.time() - began))
        seqs[run_id] = first + WORKER_BATCH - 1
        time.sleep(WORKER_PAUSE_S)   # a worker between batches (a bench, not a test)
    store.close()
    print(json.dumps(timings), flush=True)
    return 0


def _quantiles(values: list[float]) -> str:
    if len(values) < 2:
        return "no appends"
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return (f"p50 {statistics.median(values) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"max {values[-1] * 1000:.1f} ms ({len(values)} appends)")


def measure(name: str, url: str, home: Path) -> None:
    from agentform import Engine

    engine = Engine(home=home, store=url)
    try:
        began = time.perf_counter()
        populate(engine.store)
        print(f"{name:<10} wrote {RUNS:,} finished runs, {RUNS * EVENTS_PER_RUN:,} events "
              f"in {time.perf_counter() - began:.1f} s", flush=True)
        here = Path(__file__).resolve()
        proc = subprocess.Popen([sys.executable, str(here), "--worker", url], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(BASELINE_S)   # the worker alone: the baseline (a bench, not a test)
            base_end = time.time()
            report = engine.gc("30d")
            gc_start, gc_end = base_end, time.time()
            time.sleep(0.5)
        finally:
            proc.stdin.close()
            out = proc.stdout.read()
            proc.wait(timeout=60)
        timings = json.loads(out.strip().splitlines()[-1])
        assert len(report.runs) == RUNS and report.events == RUNS * EVENTS_PER_RUN, report.to_dict()
        with engine.store._read() as cur:
            left = cur.execute("SELECT count(*) FROM events WHERE run_id LIKE 'old%'").fetchone()[0]
        assert left == 0, f"{left} events of deleted runs remain"
        during = [d for s, d in timings if gc_start <= s <= gc_end]
        baseline = [d for s, d in timings if base_end - BASELINE_S + 1 <= s < base_end]
        print(f"{name:<10} gc: {report.events:,} events of {len(report.runs):,} runs in {report.seconds:.2f} s "
              f"({report.events / report.seconds:,.0f} events/s)", flush=True)
        print(f"{name:<10} worker append latency during gc: {_quantiles(during)}", flush=True)
        print(f"{name:<10} worker append latency without gc: {_quantiles(baseline)}", flush=True)
    finally:
        engine.close()


def main() -> int:
    if sys.argv[1:2] == ["--worker"]:
        return worker(sys.argv[2])
    print(f"gc: {RUNS:,} finished runs x {EVENTS_PER_RUN} events deleted while a worker process appends "
          f"{WORKER_BATCH} events every {WORKER_PAUSE_S * 1000:.0f} ms to runs of its own")
    with tempfile.TemporaryDirectory() as tmp:
        measure("sqlite", f"sqlite:///{Path(tmp) / 'state.db'}", Path(tmp) / "home")
    base = os.environ.get("AGENTFORM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    if base == "skip":
        print("postgresql skipped (AGENTFORM_TEST_PG=skip)")
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _pg import temporary_schema

    with temporary_schema(base) as url, tempfile.TemporaryDirectory() as tmp:
        measure("postgresql", url, Path(tmp) / "home")
    return 0


if __name__ == "__main__":
    sys.exit(main())
