"""Run records on both backends: create, update, prefixes, listing."""

from __future__ import annotations

import pytest

from agentform.engine.errors import NotFound, StoreError, UsageError
from agentform.engine.store.base import RunRecord


def run(run_id: str, created_at: float = 1.0, status: str = "running", **fields) -> RunRecord:
    return RunRecord(id=run_id, target="team/default/research", status=status, revision=1,
                     created_at=created_at, **fields)


def test_create_and_read_back_every_field(store):
    record = run("01HXAAAA", thread="t1", input={"q": "hi"}, params={"topic": "x"}, owner="host:12",
                 heartbeat_at=2.5, started_at=2.0, tokens_in=3, cost_usd=0.25)
    store.create_run(record)
    assert store.get_run("01HXAAAA") == record
    with pytest.raises(StoreError, match="already exists"):
        store.create_run(record)


def test_update_run(store):
    store.create_run(run("r1"))
    store.update_run("r1", status="succeeded", output="done", finished_at=9.0, tokens_out=7)
    got = store.get_run("r1")
    assert (got.status, got.output, got.finished_at, got.tokens_out) == ("succeeded", "done", 9.0, 7)
    with pytest.raises(NotFound):
        store.update_run("nope", status="failed")
    with pytest.raises(StoreError, match="unknown run field"):
        store.update_run("r1", colour="red")


def test_text_input_round_trips_as_text(store):
    store.create_run(run("r1", input="plain text, not JSON"))
    assert store.get_run("r1").input == "plain text, not JSON"


def test_run_by_prefix(store):
    for run_id in ("01HXAB11", "01HXAB22", "01HXCC33"):
        store.create_run(run(run_id))
    assert store.get_run("01HXC").id == "01HXCC33"              # unique prefix
    assert store.get_run("01HXAB22").id == "01HXAB22"           # exact id
    with pytest.raises(UsageError) as ambiguous:
        store.get_run("01HXAB")
    assert "01HXAB11" in str(ambiguous.value) and "01HXAB22" in str(ambiguous.value)
    with pytest.raises(NotFound):
        store.get_run("01HXZ")
    with pytest.raises(NotFound):
        store.get_run("01hxc")                                  # ids are case-sensitive
    with pytest.raises(UsageError):
        store.get_run("")


def test_list_runs_newest_first_with_filters(store):
    store.create_run(run("a", created_at=1.0, thread="t"))
    store.create_run(run("b", created_at=3.0))
    store.create_run(run("c", created_at=2.0, thread="t", status="succeeded"))
    assert [r.id for r in store.list_runs()] == ["b", "c", "a"]
    assert [r.id for r in store.list_runs(limit=2)] == ["b", "c"]
    assert [r.id for r in store.list_runs(thread="t")] == ["c", "a"]
    assert [r.id for r in store.list_runs(status="running")] == ["b", "a"]
    assert [r.id for r in store.list_runs(thread="t", status="succeeded")] == ["c"]


def test_delete_runs_removes_their_events(store):
    from agentform.engine.store.base import Event

    store.create_run(run("a"))
    store.create_run(run("b"))
    store.append_events([Event("a", 1, 1.0, "run.started", "", {})])
    assert store.delete_runs(["a", "missing"]) == 1
    assert [r.id for r in store.list_runs()] == ["b"]
    assert store.read_events("a") == []


def test_claim_run_takes_the_oldest_queued_run(store):
    store.create_run(run("new", created_at=2.0, status="queued"))
    store.create_run(run("old", created_at=1.0, status="queued"))
    store.create_run(run("busy", created_at=0.5))
    got = store.claim_run("host:1", now=10.0)
    assert (got.id, got.status, got.owner, got.heartbeat_at, got.started_at) == ("old", "running", "host:1", 10.0, 10.0)
    assert store.claim_run("host:1", now=11.0).id == "new"
    assert store.claim_run("host:1", now=12.0) is None


def test_concurrent_workers_never_share_a_run(store):
    import threading

    for i in range(40):
        store.create_run(run(f"q{i:02d}", created_at=float(i), status="queued"))
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (got := store.claim_run(name, now=1.0)) is not None:
            with lock:
                claimed.append(got.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(claimed) == [f"q{i:02d}" for i in range(40)]
    assert store.list_runs(status="queued") == []
