"""Benchmark: workers on PostgreSQL (procrastinate), throughput, scaling and pickup latency.

    python bench/workers.py [--runs 1000] [--pickup 200] [--soak N] [--json]

1. throughput: ``--runs`` queued runs of a small team (a lead asks three members one after
   the other; each member's model takes 50 ms), executed by 1, 2 and 4 ``agentform worker``
   processes, each ``--concurrency 4``: runs per second from the first ``run.started`` to the
   last ``run.completed`` (worker start-up excluded), and the ratio of 4 workers to 1
   (target: at least 3x);
2. pickup: ``--pickup`` runs enqueued at a steady 20 per second to 4 (then 2) idle workers:
   the time from ``run.queued`` (stamped just before its commit) to ``run.started`` (stamped
   at the takeover that claims it), p50 and p99 (target: p99 under 100 ms). Every worker
   LISTENs on the queue's channel, so each job wakes all of them (procrastinate has no
   wake-one): on a 2-core machine 4 processes racing for each job cost more than 2;
3. ``--soak N``: the fault-injection test (tests/workers/test_faults.py) for N iterations:
   a worker SIGKILLed at a random moment of the 3-level example, another takes over.

Each part uses a throw-away schema of ``AGENTFORM_TEST_PG`` (default
postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
PG = os.environ.get("AGENTFORM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
TARGET = "team/crew"
# The default lease and heartbeat (the tests shorten them to provoke takeovers quickly).
PRODUCTION = {"AGENTFORM_WORKER_LEASE": "30", "AGENTFORM_HEARTBEAT": "2"}


def _setup(url: str, tmp: Path) -> Path:
    from agentform.engine.api import Engine
    from tests.workers.crew import crew

    home = tmp / "home"
    with Engine(home=home, store=url) as engine:
        engine.apply(crew(tmp / "crew", latency_ms=50))
    return home


async def _enqueue(url: str, home: Path, n: int, rate: float | None = None) -> list[str]:
    from agentform.engine.api import Engine

    engine = Engine(home=home, store=url)
    ids = []
    try:
        start = time.monotonic()
        for i in range(n):
            if rate:
                await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            ids.append((await engine.enqueue(TARGET, input="go")).id)
    finally:
        await engine.aclose()
    return ids


def _wait_all(store, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} runs did not finish within {timeout} s")
        for run in store.list_runs(limit=len(ids) + 100):
            if run.id in pending and run.status in ("succeeded", "failed", "cancelled"):
                pending.discard(run.id)
        time.sleep(0.2)


def throughput(workers: int, runs: int) -> dict:
    from _pg import temporary_schema

    from agentform.engine.store import open_store
    from tests.workers.helpers import start_worker, stop

    with tempfile.TemporaryDirectory() as tmp, temporary_schema(PG) as url:
        home = _setup(url, Path(tmp))
        t0 = time.perf_counter()
        ids = asyncio.run(_enqueue(url, home, runs))
        enqueue_s = time.perf_counter() - t0
        procs = [start_worker(url, home, "--concurrency", "4", **PRODUCTION) for _ in range(workers)]
        store = open_store(url)
        try:
            _wait_all(store, ids, timeout=600)
            records = [store.get_run(i) for i in ids]
            cpu = sum(_cpu_s(proc.pid) for proc in procs)
        finally:
            for proc in procs:
                stop(proc, signal.SIGTERM)
            store.close()
    failed = [r.id for r in records if r.status != "succeeded"]
    span = max(r.finished_at for r in records) - min(r.started_at for r in records)
    return {"workers": workers, "runs": runs, "failed": len(failed), "seconds": round(span, 2),
            "runs_per_s": round(runs / span, 1), "enqueue_ms_per_run": round(enqueue_s / runs * 1000, 2),
            "worker_cpu_ms_per_run": round(cpu / runs * 1000, 2), "load_avg": os.getloadavg()[0]}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (its start-up included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pickup(n: int, rate: float = 20.0, workers: int = 4) -> dict:
    from _pg import temporary_schema

    from agentform.engine.store import open_store
    from tests.workers.helpers import start_worker, stop, wait_until

    with tempfile.TemporaryDirectory() as tmp, temporary_schema(PG) as url:
        home = _setup(url, Path(tmp))
        procs = [start_worker(url, home, "--concurrency", "4", **PRODUCTION) for _ in range(workers)]
        store = open_store(url)
        try:
            # idle workers: wait until every one of them has registered its heartbeat
            from agentform.engine.workers.queue import ensure_schema, live_workers

            ensure_schema(store)
            wait_until(lambda: live_workers(store) >= workers, timeout=60, what="the workers to start")
            ids = asyncio.run(_enqueue(url, home, n, rate))
            _wait_all(store, ids, timeout=300)
            delays = []
            for run_id in ids:
                events = {e.type: e for e in store.read_events(run_id, limit=3)}
                delays.append((events["run.started"].ts - events["run.queued"].ts) * 1000)
        finally:
            for proc in procs:
                stop(proc, signal.SIGTERM)
            store.close()
    delays.sort()
    return {"runs": n, "rate_per_s": rate, "workers": workers,
            "p50_ms": round(statistics.median(delays), 1),
            "p99_ms": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))], 1),
            "max_ms": round(delays[-1], 1), "load_avg": os.getloadavg()[0]}


def soak(iterations: int) -> dict:
    from _pg import temporary_schema

    from tests.workers.test_faults import fault_injection

    seed = time.time_ns() % 1_000_000
    with tempfile.TemporaryDirectory() as tmp, temporary_schema(PG) as url:
        t0 = time.perf_counter()
        result = fault_injection(url, Path(tmp) / "home", Path(tmp), iterations, seed)
    return {**result, "seed": seed, "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--pickup", type=int, default=200)
    parser.add_argument("--soak", type=int, default=0, help="also run the fault injection N times")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if PG == "skip":
        print("postgresql skipped (AGENTFORM_TEST_PG=skip)")
        return
    report: dict = {"throughput": []}
    for workers in (1, 2, 4):
        row = throughput(workers, args.runs)
        report["throughput"].append(row)
        if not args.json:
            print(f"throughput: {workers} worker(s) x concurrency 4: {row['runs_per_s']} runs/s "
                  f"({row['runs']} runs in {row['seconds']} s, {row['failed']} failed; "
                  f"enqueue {row['enqueue_ms_per_run']} ms/run; worker CPU {row['worker_cpu_ms_per_run']} ms/run; "
                  f"load average {row['load_avg']:.1f})", flush=True)
    one, four = report["throughput"][0]["runs_per_s"], report["throughput"][-1]["runs_per_s"]
    report["scaling_4_over_1"] = round(four / one, 2)
    if not args.json:
        print(f"scaling: 4 workers / 1 worker = {report['scaling_4_over_1']}x (target >= 3x)", flush=True)
    report["pickup"] = [pickup(args.pickup, workers=n) for n in (4, 2)]
    for p in report["pickup"] if not args.json else ():
        print(f"pickup: {p['runs']} runs at {p['rate_per_s']:.0f}/s to {p['workers']} idle workers: "
              f"p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms, max {p['max_ms']} ms (target p99 < 100 ms; "
              f"load average {p['load_avg']:.1f})", flush=True)
    if args.soak:
        report["soak"] = soak(args.soak)
        if not args.json:
            s = report["soak"]
            print(f"soak: {s['iterations']} SIGKILLs at random moments (seed {s['seed']}), every run completed "
                  f"with its uninterrupted output, in {s['seconds']} s", flush=True)
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
