"""Processes opening one fresh SQLite store at the same moment all get it.

Switching a new database to WAL needs it to itself, and SQLite's busy handler does not wait
for that: before the fix, one of three processes released at a barrier failed with "database
is locked" in about half the rounds (two `apply` in CI racing on a new home, for example).
"""

from __future__ import annotations

import multiprocessing

ROUNDS = 12
PROCESSES = 3


def _open(path: str, barrier, results) -> None:
    from agentform.engine.store.sqlite import SqliteStore

    barrier.wait()
    try:
        store = SqliteStore(path)
        try:
            mode = store._writer.execute("PRAGMA journal_mode").fetchone()[0]
            results.put(f"ok {mode}")
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_racing_to_open_a_fresh_store_all_get_it(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(ROUNDS):
        path = tmp_path / f"r{round_}" / "state.db"
        barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(str(path), barrier, results)) for _ in range(PROCESSES)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        assert outcomes == ["ok wal"] * PROCESSES, (round_, outcomes)
