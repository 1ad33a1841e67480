"""The lean append path: PostgreSQL writes a whole batch in one round trip, and the group-commit
writer puts a new run in the same transaction as its first events (on both backends)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agentform.engine.errors import RunTakenOver, StoreError
from agentform.engine.events import EventWriter
from agentform.engine.store.base import Event, RunRecord
from agentform.engine.store.postgres import PostgresStore

# Values an append must carry through unchanged: full-precision floats, big integers, quotes,
# backslashes, a literal backslash-u-0000 (text, not a NUL), non-ASCII and nesting.
ODD_DATA = {"pi": 3.141592653589793, "big": 2**70, "tiny": 5e-324, "quote": 'say "hi" \\ bye', "esc": "\\u0000",
            "text": "déjà vu ✓ \U0001f600", "nested": {"a": [1, None, True, {"b": []}]}, "empty": {}}


def _run(run_id: str, epoch: int = 0, **fields: Any) -> RunRecord:
    return RunRecord(**{"id": run_id, "target": "team/default/x", "status": "running", "revision": 1,
                        "created_at": 1.0, "owner": "host:1", "owner_epoch": epoch, **fields})


def _events(run_id: str, first: int, last: int) -> list[Event]:
    return [Event(run_id, s, 1764409273.1234567 + s, "message.delta", "company/lead-é/spec", {**ODD_DATA, "n": s})
            for s in range(first, last + 1)]


@contextmanager
def _round_trips(store: PostgresStore, tmp_path: Path) -> Iterator[list[int]]:
    """Count the round trips (ReadyForQuery messages in libpq's protocol trace) of a pool of one;
    the count is in the yielded list once the block ends."""
    from psycopg import pq

    trace = tmp_path / "libpq.trace"
    counted: list[int] = []
    with trace.open("w") as out:
        with store._pool.connection() as conn:
            conn.pgconn.trace(out.fileno())
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield counted
        finally:
            with store._pool.connection() as conn:
                conn.pgconn.untrace()   # flushes libpq's buffer
    counted.append(trace.read_text().count("ReadyForQuery"))


def test_an_append_is_one_round_trip_on_postgresql(pg_store_url, tmp_path):
    store = PostgresStore(pg_store_url, pool_size=1)   # one connection: the trace sees every message
    try:
        store.create_run(_run("old", epoch=3))
        store.append_events(_events("old", 1, 2), epochs={"old": 3})
        batch = _events("old", 3, 5) + _events("new", 1, 2) + _events("old", 6, 6)
        with _round_trips(store, tmp_path) as trips:
            store.append_events(batch, {"old": {"tokens_in": 7, "status": "waiting", "output": {"x": [1]}},
                                        "new": {"cost_usd": 0.25, "last_seq": 99}},
                                new_runs=[_run("new", epoch=1)], epochs={"old": 3, "new": 1})
        assert trips == [1]   # the new run, both runs' fenced updates, six events and the NOTIFY
        assert store.read_events("old") == _events("old", 1, 6)
        assert store.read_events("new") == _events("new", 1, 2)
        old, new = store.get_run("old"), store.get_run("new")
        assert (old.last_seq, old.tokens_in, old.status, old.output, old.owner_epoch) == (6, 7, "waiting", {"x": [1]}, 3)
        assert (new.last_seq, new.cost_usd, new.owner, new.owner_epoch) == (2, 0.25, "host:1", 1)

        # A fenced writer: the one statement is undone whole, and the error says who owns the run.
        store.create_run(_run("other"))
        store.take_over_run("old", expect_status={"waiting"}, expect_epoch=3, owner="host:2", now=5.0)
        with pytest.raises(RunTakenOver) as fenced:
            store.append_events(_events("other", 1, 1) + _events("old", 7, 7), {"other": {"tokens_in": 1}},
                                epochs={"old": 3})
        assert (fenced.value.owner, fenced.value.epoch) == ("host:2", 4)
        assert "this writer's is 3" in str(fenced.value)
        assert store.read_events("other") == [] and store.get_run("other").tokens_in == 0
        assert store.get_run("old").last_seq == 6

        # A new run whose id exists, and a stream that does not continue: typed, nothing written.
        with pytest.raises(StoreError, match="run new already exists"):
            store.append_events(_events("other", 1, 1) + _events("new", 1, 1), new_runs=[_run("new")])
        with pytest.raises(StoreError, match=r"run other: event seq 2 does not continue the stream \(last stored seq is 0\)"):
            store.append_events(_events("other", 2, 2))
        assert store.read_events("other") == [] and store.get_run("other").last_seq == 0
    finally:
        store.close()


class _Recording:
    """The real store, with the writes the writer makes recorded in order."""

    def __init__(self, store: Any):
        self.store = store
        self.calls: list[tuple] = []

    def create_run(self, run: RunRecord) -> None:
        self.calls.append(("create_run", run.id))
        self.store.create_run(run)

    def append_events(self, events: list[Event], run_updates=None, new_runs=(), epochs=None) -> None:
        new_runs = list(new_runs)
        self.calls.append(("append_events", sorted(r.id for r in new_runs), [(e.run_id, e.seq) for e in events]))
        self.store.append_events(events, run_updates, new_runs, epochs)


async def test_the_writer_commits_new_runs_with_their_first_events(store):
    recording = _Recording(store)
    # A window longer than the test: the writer's thread never commits, every batch commits
    # inline when a stream waits for durability, so what one batch holds is deterministic.
    writer = EventWriter(recording, window=3600)
    for run_id in ("a", "b"):
        writer.create_run(_run(run_id, epoch=1))
    streams = [writer.open(run_id, epoch=1) for run_id in ("a", "b")]
    for stream in streams:
        stream.emit("run.started", "", {})
    streams[0].emit("run.completed", "", {"output": "done"}, status="succeeded", output="done")
    await asyncio.gather(*(s.durable() for s in streams))
    assert recording.calls == [("append_events", ["a", "b"], [("a", 1), ("b", 1), ("a", 2)])]
    assert (store.get_run("a").status, store.get_run("a").last_seq, store.get_run("b").last_seq) == ("succeeded", 2, 1)

    # A new run that cannot be created (its id is taken) fails alone: the other one is written.
    recording.calls.clear()
    writer.create_run(_run("a", epoch=1))
    writer.create_run(_run("c", epoch=1))
    clash, fine = writer.open("a", epoch=1), writer.open("c", epoch=1)
    clash.emit("run.started", "", {})
    fine.emit("run.started", "", {})
    with pytest.raises(StoreError, match="already exists"):
        await clash.durable()
    await fine.durable()
    assert [e.type for e in store.read_events("c")] == ["run.started"]
    assert [e.type for e in store.read_events("a")] == ["run.started", "run.completed"]
    assert recording.calls[0] == ("append_events", ["a", "c"], [("a", 1), ("c", 1)])


def test_run_record_writes_are_one_round_trip_each_on_postgresql(pg_store_url, tmp_path):
    store = PostgresStore(pg_store_url, pool_size=1)
    try:
        waiting = _run("w", epoch=2, status="waiting")
        writes = {
            "create_run": lambda: store.create_run(waiting),
            "update_run": lambda: store.update_run("w", heartbeat_at=3.0, deadline_at=9.0),
            "set_run_if": lambda: store.set_run_if("w", expect_status={"waiting"}, expect_epoch=2, error="late"),
            "take_over_run": lambda: store.take_over_run(
                "w", expect_status={"waiting"}, expect_epoch=2, owner="host:2", now=7.5,
                events=[("run.resumed", "", {"previousOwner": "host:1"}), ("checkpoint", "p/a", ODD_DATA)]),
            "create_run queued": lambda: store.create_run(_run("q", status="queued")),
            "claim_run": lambda: store.claim_run("host:3", 8.0),
        }
        trips = {}
        for name, write in writes.items():
            with _round_trips(store, tmp_path) as counted:
                write()
            trips[name] = counted[0]
        assert trips == dict.fromkeys(writes, 1)
        record = store.get_run("w")
        assert (record.status, record.owner, record.owner_epoch, record.last_seq, record.error, record.deadline_at) == \
            ("running", "host:2", 3, 2, "late", 9.0)
        assert [(e.seq, e.ts, e.type, e.path, e.data) for e in store.read_events("w")] == [
            (1, 7.5, "run.resumed", "", {"previousOwner": "host:1"}), (2, 7.5, "checkpoint", "p/a", ODD_DATA)]
        claimed = store.get_run("q")
        assert (claimed.status, claimed.owner, claimed.owner_epoch) == ("running", "host:3", 1)
        # The loser of a takeover writes nothing and learns who won.
        with pytest.raises(RunTakenOver) as lost:
            store.take_over_run("w", expect_status={"running"}, expect_epoch=2, owner="host:4", now=9.0,
                                events=[("run.resumed", "", {})])
        assert (lost.value.owner, lost.value.epoch) == ("host:2", 3)
        assert store.get_run("w").last_seq == 2 and len(store.read_events("w")) == 2
    finally:
        store.close()


def test_the_urls_own_options_reach_every_connection(pg_url):
    # e.g. synchronous_commit=off: an agentform crash still loses nothing acknowledged, a
    # PostgreSQL crash may lose the last moments of appends, and commits stop waiting on the disk.
    from urllib.parse import quote

    # The tests' database defaults to off (tests/conftest.py): another value shows the URL's won.
    schema = f"t_opts_{uuid.uuid4().hex[:8]}"
    url = f"{pg_url}?options={quote('-csynchronous_commit=local -cstatement_timeout=5000')}&schema={schema}"
    store = PostgresStore(url, pool_size=1)
    try:
        with store._pool.connection() as conn:
            shown = [conn.execute(f"SHOW {name}").fetchone()[0]
                     for name in ("synchronous_commit", "statement_timeout", "search_path")]
        assert shown == ["local", "5s", schema]
        store.create_run(_run("r"))
        assert store.get_run("r").id == "r"
    finally:
        store.close()
