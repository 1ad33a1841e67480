"""Event streams on both backends: contiguous seq, rejected gaps, concurrency, followers."""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest

from agentform.engine.errors import NotFound, StoreError
from agentform.engine.store import open_store
from agentform.engine.store.base import Event, RunRecord
from agentform.engine.store.postgres import parse_pg_url

from .store_procs import Child


def new_run(store, run_id: str) -> None:
    store.create_run(RunRecord(id=run_id, target="team/default/research", status="running", revision=1,
                               created_at=time.time()))


def events(run_id: str, first: int, last: int, type_: str = "message.delta") -> list[Event]:
    return [Event(run_id, s, 1000.0 + s, type_, "company/research", {"text": f"chunk {s} ✓", "n": [s]})
            for s in range(first, last + 1)]


def seqs(found: list[Event]) -> list[int]:
    return [e.seq for e in found]


def test_append_and_read_back(store):
    new_run(store, "r1")
    store.append_events(events("r1", 1, 3), {"r1": {"tokens_in": 12, "status": "running"}})
    store.append_events(events("r1", 4, 5))
    got = store.read_events("r1")
    assert got == events("r1", 1, 5)
    assert seqs(store.read_events("r1", after=2)) == [3, 4, 5]
    assert seqs(store.read_events("r1", after=1, limit=2)) == [2, 3]
    run = store.get_run("r1")
    assert (run.last_seq, run.tokens_in) == (5, 12)


def test_new_runs_are_created_in_the_append_transaction(store):
    record = RunRecord(id="fresh", target="team/default/research", status="running", revision=1, created_at=1.0)
    store.append_events(events("fresh", 1, 2), {"fresh": {"tokens_in": 4}}, new_runs=[record])
    assert seqs(store.read_events("fresh")) == [1, 2]
    assert (store.get_run("fresh").last_seq, store.get_run("fresh").tokens_in) == (2, 4)
    # a failing batch creates nothing
    other = RunRecord(id="other", target="team/default/research", status="running", revision=1, created_at=1.0)
    with pytest.raises(StoreError):
        store.append_events(events("other", 2, 2), new_runs=[other])
    with pytest.raises(NotFound):
        store.get_run("other")


def test_run_updates_alone_and_across_runs(store):
    new_run(store, "a")
    new_run(store, "b")
    batch = events("a", 1, 2) + events("b", 1, 1) + events("a", 3, 3)   # interleaved runs
    store.append_events(batch, {"a": {"cost_usd": 0.5, "last_seq": 99}, "b": {"status": "waiting"}})
    assert (store.get_run("a").last_seq, store.get_run("a").cost_usd) == (3, 0.5)
    assert (store.get_run("b").last_seq, store.get_run("b").status) == (1, "waiting")
    store.append_events([], {"b": {"heartbeat_at": 5.0, "last_seq": 42}})
    assert (store.get_run("b").heartbeat_at, store.get_run("b").last_seq) == (5.0, 1)   # the store keeps last_seq


@pytest.mark.parametrize("bad", [
    pytest.param(lambda: events("r1", 5, 6), id="gap-after-stored"),
    pytest.param(lambda: events("r1", 3, 4), id="duplicate-of-stored"),
    pytest.param(lambda: events("r1", 4, 4) + events("r1", 6, 6), id="gap-in-batch"),
    pytest.param(lambda: events("r1", 4, 4) + events("r1", 4, 4), id="duplicate-in-batch"),
    pytest.param(lambda: events("ghost", 1, 1), id="unknown-run"),
])
def test_batches_that_break_the_stream_are_rejected_whole(store, bad):
    new_run(store, "r1")
    new_run(store, "r2")
    store.append_events(events("r1", 1, 3))
    with pytest.raises(StoreError):
        store.append_events(events("r2", 1, 2) + bad(), {"r1": {"status": "failed"}})
    assert seqs(store.read_events("r1")) == [1, 2, 3]
    assert store.read_events("r2") == []                     # the good part of the batch too
    assert (store.get_run("r1").status, store.get_run("r1").last_seq) == ("running", 3)


def test_duplicate_rows_are_caught_by_the_key_even_if_last_seq_lags(store):
    new_run(store, "r1")
    store.append_events(events("r1", 1, 3))
    store.update_run("r1", last_seq=1)          # a lagging counter must not let duplicates in
    with pytest.raises(StoreError):
        store.append_events(events("r1", 2, 3))
    assert seqs(store.read_events("r1")) == [1, 2, 3]


def test_fifty_concurrent_writers_stay_contiguous(store):
    run_ids = [f"run{i:02d}" for i in range(50)]
    for run_id in run_ids:
        new_run(store, run_id)
    errors: list[BaseException] = []

    def write(run_id: str) -> None:
        try:
            for batch in range(10):
                store.append_events(events(run_id, batch * 5 + 1, batch * 5 + 5), {run_id: {"tokens_out": batch}})
        except BaseException as exc:      # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(r,)) for r in run_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    for run_id in run_ids:
        assert seqs(store.read_events(run_id)) == list(range(1, 51))
        assert store.get_run(run_id).last_seq == 50


def test_writers_in_several_processes_stay_contiguous(store, store_url):
    run_ids = [f"proc{i}" for i in range(4)]
    for run_id in run_ids:
        new_run(store, run_id)
    children = [Child("append", store_url, run_id, "300") for run_id in run_ids[1:]]
    try:
        for start in range(1, 301, 10):                      # this process writes run_ids[0]
            store.append_events(events(run_ids[0], start, start + 9))
        for child in children:
            child.expect("appended")
            assert child.proc.wait(timeout=60) == 0
    finally:
        for child in children:
            child.kill()
    for run_id in run_ids:
        assert seqs(store.read_events(run_id)) == list(range(1, 301))
        assert store.get_run(run_id).last_seq == 300


def test_wait_returns_at_once_or_after_timeout(store):
    new_run(store, "r1")
    assert store.wait_for_events("r1", 0, timeout=0.05) == []
    store.append_events(events("r1", 1, 2))
    assert seqs(store.wait_for_events("r1", 0, timeout=5)) == [1, 2]
    assert store.wait_for_events("r1", 2, timeout=0.05) == []


def test_wait_woken_by_an_append_in_another_thread(store):
    new_run(store, "r1")
    got: list[list[int]] = []
    follower = threading.Thread(target=lambda: got.append(seqs(store.wait_for_events("r1", 0, timeout=60))))
    follower.start()
    store.append_events(events("r1", 1, 1))
    follower.join(timeout=60)
    assert got == [[1]]


def _wait_until_listening(store_url: str) -> None:
    """PostgreSQL: the follower's LISTEN is visible in pg_stat_activity (observable state)."""
    conninfo, _ = parse_pg_url(store_url)
    deadline = time.monotonic() + 30
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while time.monotonic() < deadline:
            (count,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'LISTEN agentform_events_%%'"
            ).fetchone()
            if count:
                return
            time.sleep(0.02)
    raise AssertionError("the follower never started listening")


def test_wait_woken_by_an_append_from_another_process(store, store_url):
    new_run(store, "r1")
    child = Child("wait", store_url, "r1")
    try:
        child.expect("ready")
        if store_url.startswith("postgres"):
            _wait_until_listening(store_url)
        writer = open_store(store_url)           # a separate store object, as another process would
        writer.append_events(events("r1", 1, 3))
        writer.close()
        assert json.loads(child.line()) == [1, 2, 3]
        assert child.proc.wait(timeout=60) == 0
    finally:
        child.kill()


def test_awkward_data_round_trips(store, store_url):
    new_run(store, "r1")
    data = {"text": "naïve ✓ 東京", "literal": "\\u0000 stays", "bin": "a\x00b", "deep": {"x": [1, 2.5, None, True]}}
    store.append_events([Event("r1", 1, 1.0, "tool.result", "a/b", data)])
    got = store.read_events("r1")[0].data
    # JSONB cannot hold NUL: PostgreSQL keeps U+FFFD in its place; SQLite keeps it as is.
    expected_bin = "a\x00b" if store_url.startswith("sqlite") else "a\ufffdb"
    assert got == {**data, "bin": expected_bin}


def test_nan_is_refused_before_anything_is_written(store):
    new_run(store, "r1")
    with pytest.raises(ValueError):
        store.append_events([Event("r1", 1, 1.0, "usage", "", {"usd": float("nan")})])
    assert store.read_events("r1") == [] and store.get_run("r1").last_seq == 0
