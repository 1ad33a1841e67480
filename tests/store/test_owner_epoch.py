"""One owner per run, on both backends: the takeover compare-and-set and the epoch fence on appends."""

from __future__ import annotations

import threading

import pytest

from agentform.engine.errors import NotFound, RunTakenOver
from agentform.engine.store.base import Event, RunRecord


def _waiting(store, run_id: str = "r1", epoch: int = 1) -> RunRecord:
    record = RunRecord(id=run_id, target="pipeline/default/p", status="waiting", revision=1, created_at=1.0,
                       owner="host:1", owner_epoch=epoch, deadline_at=50.0)
    store.create_run(record)
    store.append_events([Event(run_id, 1, 1.0, "run.started", "", {}),
                         Event(run_id, 2, 2.0, "run.waiting", "", {})], epochs={run_id: epoch})
    return store.get_run(run_id)


def test_take_over_sets_status_owner_and_bumps_the_epoch_in_one_step(store):
    _waiting(store)
    got = store.take_over_run("r1", expect_status={"waiting"}, expect_epoch=1, owner="host:2", now=10.0,
                              events=[("run.resumed", "", {"previousOwner": "host:1"}),
                                      ("approval.resolved", "p/ship", {"approved": True})],
                              deadline_at=None)
    assert (got.status, got.owner, got.owner_epoch, got.heartbeat_at, got.deadline_at) == \
        ("running", "host:2", 2, 10.0, None)
    assert got.last_seq == 4 and store.get_run("r1") == got
    events = store.read_events("r1")
    assert [(e.seq, e.type, e.ts) for e in events[2:]] == [(3, "run.resumed", 10.0), (4, "approval.resolved", 10.0)]


def test_the_loser_of_a_takeover_gets_the_owner_and_writes_nothing(store):
    _waiting(store)
    store.take_over_run("r1", expect_status={"waiting"}, expect_epoch=1, owner="host:2", now=10.0)
    with pytest.raises(RunTakenOver) as lost:
        store.take_over_run("r1", expect_status={"waiting"}, expect_epoch=1, owner="host:3", now=11.0,
                            events=[("approval.resolved", "p/ship", {})])
    assert str(lost.value) == "run r1 is already being continued by host:2"
    assert (lost.value.owner, lost.value.status, lost.value.epoch) == ("host:2", "running", 2)
    # The right epoch but the wrong status loses too.
    with pytest.raises(RunTakenOver):
        store.take_over_run("r1", expect_status={"waiting"}, expect_epoch=2, owner="host:3", now=11.0)
    record = store.get_run("r1")
    assert (record.owner, record.owner_epoch, record.last_seq) == ("host:2", 2, 2)
    assert len(store.read_events("r1")) == 2
    with pytest.raises(NotFound):
        store.take_over_run("nope", expect_status={"waiting"}, expect_epoch=1, owner="host:3", now=1.0)


def test_racing_takeovers_have_exactly_one_winner(store):
    for i in range(10):
        _waiting(store, f"r{i}")
    wins: list[tuple[str, str]] = []
    losses: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def contender(name: str) -> None:
        barrier.wait()
        for i in range(10):
            try:
                store.take_over_run(f"r{i}", expect_status={"waiting"}, expect_epoch=1, owner=name, now=5.0,
                                    events=[("approval.resolved", "p/ship", {"by": name})])
            except RunTakenOver as exc:
                with lock:
                    losses.append(exc.owner)
            else:
                with lock:
                    wins.append((f"r{i}", name))

    threads = [threading.Thread(target=contender, args=(f"c{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r for r, _ in wins) == [f"r{i}" for i in range(10)]
    assert len(losses) == 50
    for run_id, name in wins:
        events = store.read_events(run_id)
        assert [e.seq for e in events] == [1, 2, 3]
        assert [e.data for e in events if e.type == "approval.resolved"] == [{"by": name}]
        assert store.get_run(run_id).owner == name


def test_appends_are_fenced_by_the_writers_epoch(store):
    _waiting(store)
    store.take_over_run("r1", expect_status={"waiting"}, expect_epoch=1, owner="host:2", now=10.0)
    stale = [Event("r1", 3, 11.0, "agent.started", "p/x", {})]
    with pytest.raises(RunTakenOver, match="taken over by host:2"):
        store.append_events(stale, run_updates={"r1": {"heartbeat_at": 99.0}}, epochs={"r1": 1})
    with pytest.raises(RunTakenOver):   # a record update alone is fenced as well
        store.append_events([], run_updates={"r1": {"status": "failed"}}, epochs={"r1": 1})
    record = store.get_run("r1")
    assert (record.last_seq, record.heartbeat_at, record.status) == (2, 10.0, "running")
    assert len(store.read_events("r1")) == 2
    store.append_events(stale, epochs={"r1": 2})   # the owner's epoch writes
    assert store.get_run("r1").last_seq == 3


def test_a_fenced_run_sinks_its_whole_batch_and_nothing_else(store):
    _waiting(store, "a")
    _waiting(store, "b")
    store.take_over_run("b", expect_status={"waiting"}, expect_epoch=1, owner="host:2", now=10.0)
    batch = [Event("a", 3, 3.0, "run.resumed", "", {}), Event("b", 3, 3.0, "run.resumed", "", {})]
    with pytest.raises(RunTakenOver):
        store.append_events(batch, epochs={"a": 1, "b": 1})
    assert store.get_run("a").last_seq == 2 and len(store.read_events("a")) == 2   # one transaction
    store.append_events(batch[:1], epochs={"a": 1})
    assert store.get_run("a").last_seq == 3


def test_set_run_if_checks_status_and_epoch_and_keeps_the_owner(store):
    store.create_run(RunRecord(id="r1", target="t", status="running", revision=1, created_at=1.0,
                               owner="host:1", owner_epoch=3))
    got = store.set_run_if("r1", expect_status={"running"}, expect_epoch=3, status="cancelled")
    assert (got.status, got.owner, got.owner_epoch) == ("cancelled", "host:1", 3)
    with pytest.raises(RunTakenOver):
        store.set_run_if("r1", expect_status={"running"}, expect_epoch=3, status="cancelled")
    with pytest.raises(RunTakenOver):
        store.set_run_if("r1", expect_status={"cancelled"}, expect_epoch=2, status="failed")
    assert store.get_run("r1").status == "cancelled"


def test_a_workers_claim_is_a_takeover(store):
    store.create_run(RunRecord(id="q1", target="t", status="queued", revision=1, created_at=1.0, owner_epoch=1))
    got = store.claim_run("worker:1", now=5.0)
    assert (got.id, got.owner, got.owner_epoch) == ("q1", "worker:1", 2)
    with pytest.raises(RunTakenOver, match="taken over by worker:1"):
        store.append_events([Event("q1", 1, 5.0, "run.started", "", {})], epochs={"q1": 1})
