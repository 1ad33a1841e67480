"""Benchmark: events appended per second through ``Store.append_events``, on each backend.

Run as ``python bench/events.py`` (by ``make bench``). For batch sizes of 100 and 1000 it
appends 20,000 events of a realistic mix (token deltas, tool calls, usage) to one run, in
group-commit batches with the run totals updated in the same transaction, and prints the
median of 5 trials (wall and this process's CPU time per event: on PostgreSQL the server's
work is on another process, so the two differ), then the follower latency: from an append on one store object to
``wait_for_events`` returning on another (as ``logs -f`` in a second process sees it: SQLite
polls, PostgreSQL is woken by NOTIFY). Target (issue 5): at least 20,000 events/s on SQLite. PostgreSQL uses
``AGENTFORM_TEST_PG`` (default postgresql://postgres@127.0.0.1:5432/test) in a schema of its
own, dropped afterwards; ``AGENTFORM_TEST_PG=skip`` leaves it out.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from agentform.engine.store import open_store
from agentform.engine.store.base import Event, RunRecord

TRIALS = 5
EVENTS = 20_000
BATCHES = (100, 1000)
TARGET_SQLITE = 20_000


def make_events(run_id: str, n: int) -> list[Event]:
    """A run's stream: mostly message.delta, with a tool call/result and usage every 20 events."""
    out = []
    for seq in range(1, n + 1):
        path = f"company/research/specialist-{seq % 4}"
        if seq % 20 == 0:
            out.append(Event(run_id, seq, time.time(), "usage", path,
                             {"agent": "specialist", "model": "scripted", "input": 120, "output": 40, "usd": 0.00012}))
        elif seq % 10 == 0:
            out.append(Event(run_id, seq, time.time(), "tool.call", path,
                             {"agent": "specialist", "id": f"call_{seq}", "name": "read_file",
                              "arguments": {"path": "notes/sources.md"}}))
        else:
            out.append(Event(run_id, seq, time.time(), "message.delta", path,
                             {"agent": "specialist", "text": "The market for heat pumps grew by "}))
    return out


def trial(store, batch: int) -> tuple[float, float]:
    """Events per second for one fresh run appended in batches of ``batch``, and CPU s per event."""
    run_id = f"bench-{secrets.token_hex(6)}"
    store.create_run(RunRecord(id=run_id, target="team/default/research", status="running", revision=1,
                               created_at=time.time()))
    events = make_events(run_id, EVENTS)
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, EVENTS, batch):
        chunk = events[start:start + batch]
        store.append_events(chunk, {run_id: {"tokens_in": start, "tokens_out": start // 3, "heartbeat_at": time.time()}})
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert store.get_run(run_id).last_seq == EVENTS
    return EVENTS / elapsed, cpu / EVENTS


def _follow(store, run_id: str, after: int, started: threading.Event, woke: list[float]) -> None:
    started.set()
    if store.wait_for_events(run_id, after, timeout=30):
        woke.append(time.perf_counter())


def follow_latency(url: str, store, rounds: int = 21) -> float:
    """Median seconds from the start of an append to a follower (another store object) seeing it."""
    follower = open_store(url)
    run_id = f"follow-{secrets.token_hex(6)}"
    store.create_run(RunRecord(id=run_id, target="team/default/research", status="running", revision=1,
                               created_at=time.time()))
    latencies = []
    try:
        for seq in range(1, rounds + 1):
            woke: list[float] = []
            started = threading.Event()
            thread = threading.Thread(target=_follow, args=(follower, run_id, seq - 1, started, woke))
            thread.start()
            started.wait()
            time.sleep(0.06)   # let the follower settle into its wait (a bench, not a test)
            sent = time.perf_counter()
            store.append_events(make_events(run_id, seq)[seq - 1:])
            thread.join()
            latencies.append(woke[0] - sent)
    finally:
        follower.close()
    return statistics.median(latencies)


def measure(name: str, url: str) -> None:
    store = open_store(url)
    try:
        for batch in BATCHES:
            trials = [trial(store, batch) for _ in range(TRIALS)]
            rates = [t[0] for t in trials]
            median = statistics.median(rates)
            cpu_us = statistics.median(t[1] for t in trials) * 1e6
            note = ""
            if name == "sqlite":
                note = f"  (target >= {TARGET_SQLITE:,}: {'ok' if median >= TARGET_SQLITE else 'MISSED'})"
            print(f"{name:<10} batch {batch:>5}: {median:>10,.0f} events/s, CPU {cpu_us:.1f} us/event  "
                  f"(median of {TRIALS}, min {min(rates):,.0f}, max {max(rates):,.0f}){note}", flush=True)
        print(f"{name:<10} follower latency: {follow_latency(url, store) * 1000:.1f} ms "
              "(median of 21, append start to wait_for_events returning on another store object)", flush=True)
    finally:
        store.close()


def main() -> int:
    print(f"append_events: {EVENTS:,} events per trial, one run, run totals updated per batch")
    with tempfile.TemporaryDirectory() as tmp:
        measure("sqlite", f"sqlite:///{Path(tmp) / 'state.db'}")
    base = os.environ.get("AGENTFORM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    if base == "skip":
        print("postgresql skipped (AGENTFORM_TEST_PG=skip)")
        return 0
    from _pg import temporary_schema

    with temporary_schema(base) as url:
        measure("postgresql", url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
