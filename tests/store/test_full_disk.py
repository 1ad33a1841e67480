"""A full disk is reported as a full disk, and what was committed before it stays intact.

SQLite's ``PRAGMA max_page_count`` (a per-connection limit) makes the database "full" at
its current size: the engine then meets the real SQLITE_FULL error, as it would on a full
disk, with nothing mounted or filled on the shared machine.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agentform.engine.errors import StoreError
from agentform.engine.reconcile import apply_path
from agentform.engine.runtime import runner
from agentform.engine.store.sqlite import SqliteStore

FULL = "database or disk is full"
HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"


def _fill(conn: sqlite3.Connection) -> int:
    """Cap the database at its current size; returns the old cap."""
    old = conn.execute("PRAGMA max_page_count").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert conn.execute(f"PRAGMA max_page_count = {pages}").fetchone()[0] == pages
    return old


def test_a_full_disk_during_a_run_names_the_full_disk_and_keeps_earlier_runs(tmp_path):
    store = SqliteStore(tmp_path / "state.db")
    try:
        assert apply_path(store, HELLO, home=tmp_path).exit_code == 0
        first = runner.start_run(store, "agent/greeter", input="hi", home=tmp_path)
        assert first.status == "succeeded"
        before = store.read_events(first.id)
        record = store.get_run(first.id)

        with store._wlock:   # no write of the writer thread in flight while the cap changes
            old_cap = _fill(store._writer)
        with pytest.raises(StoreError) as failed:
            # A large input: the run's first batch cannot fit in the pages left.
            runner.start_run(store, "agent/greeter", input="x" * 200_000, home=tmp_path)
        message = str(failed.value)
        assert FULL in message, message
        assert "rollback" not in message, message
        assert "free space" in message, message

        assert store.read_events(first.id) == before
        assert store.get_run(first.id) == record
        assert store._writer.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

        # Space again: the same store takes the next run (the failed write left no open transaction).
        with store._wlock:
            store._writer.execute(f"PRAGMA max_page_count = {old_cap}")
        again = runner.start_run(store, "agent/greeter", input="hi", home=tmp_path)
        assert again.status == "succeeded", again.error
    finally:
        store.close()

