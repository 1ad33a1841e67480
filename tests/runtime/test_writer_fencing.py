"""A stream whose write failed stops: nothing of it is written again, and its next emit raises."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentform.engine.errors import RunTakenOver, StoreError
from agentform.engine.events import EventWriter
from agentform.engine.store.base import Event, RunRecord


def _record(run_id: str, epoch: int = 1) -> RunRecord:
    return RunRecord(id=run_id, target="team/default/x", status="running", revision=0, created_at=time.time(),
                     owner="host:1", owner_epoch=epoch)


async def test_after_a_failed_write_no_later_event_of_the_stream_is_written(store):
    writer = EventWriter(store)
    writer.create_run(_record("bad"))
    bad = writer.open("bad", epoch=1)
    bad.emit("run.started", "", {})
    await bad.durable()
    # another process appends behind this writer's back: this stream's seq 2 now clashes
    store.append_events([Event("bad", 2, time.time(), "run.cancelled", "", {})])
    bad.emit("agent.started", "x", {"agent": "x"})
    with pytest.raises(StoreError):
        await bad.durable()
    # seq 3 would continue the store's stream: written, it would mix two writers' events
    with pytest.raises(StoreError):
        bad.emit("agent.completed", "x", {"agent": "x"})
    with pytest.raises(StoreError):
        await bad.durable()
    assert bad not in writer._owners   # nothing of it is queued for a later batch either
    assert [e.type for e in store.read_events("bad")] == ["run.started", "run.cancelled"]


async def test_a_stream_taken_over_is_fenced_and_its_queued_events_are_dropped(store):
    writer = EventWriter(store, window=0)
    writer.create_run(_record("r1"))
    old = writer.open("r1", epoch=1)
    old.emit("run.started", "", {})
    await old.durable()
    taken = store.take_over_run("r1", expect_status={"running"}, expect_epoch=1, owner="host:2",
                                now=time.time(), events=[("run.resumed", "", {"previousOwner": "host:1"})])
    new = writer.open("r1", taken.last_seq, epoch=taken.owner_epoch)
    # Both streams write in the same batches: only the owner's events land, the old one is fenced.
    old.emit("agent.started", "old", {"agent": "old"})
    new.emit("agent.started", "new", {"agent": "new"})
    results = await asyncio.gather(old.durable(), new.durable(), return_exceptions=True)
    assert isinstance(results[0], RunTakenOver) and "taken over by host:2" in str(results[0])
    assert results[1] is None
    with pytest.raises(RunTakenOver):
        old.emit("agent.completed", "old", {"agent": "old"})   # its executor stops here
    old.update(status="failed")   # the heartbeat's update of a stopped stream is dropped too
    new.emit("agent.completed", "new", {"agent": "new"}, status="succeeded")
    await new.durable()
    events = store.read_events("r1")
    assert [(e.type, e.path) for e in events] == [("run.started", ""), ("run.resumed", ""),
                                                 ("agent.started", "new"), ("agent.completed", "new")]
    assert [e.seq for e in events] == [1, 2, 3, 4]
    record = store.get_run("r1")
    assert (record.status, record.owner, record.owner_epoch) == ("succeeded", "host:2", 2)


async def test_a_stopped_stream_drops_what_it_had_queued(store):
    writer = EventWriter(store, window=60)   # its thread waits: this test commits inline, in order
    writer.create_run(_record("r1"))
    writer.create_run(_record("r2"))
    stopped, other = writer.open("r1", epoch=1), writer.open("r2", epoch=1)
    stopped.emit("run.started", "", {})
    other.emit("run.started", "", {})
    await asyncio.gather(stopped.durable(), other.durable())
    stopped.emit("agent.started", "x", {"agent": "x"})
    other.emit("agent.started", "y", {"agent": "y"})
    stopped.emit("agent.completed", "x", {"agent": "x"})
    stopped.stop(RunTakenOver("r1", "host:2", "running", 2))   # as the heartbeat does on a takeover
    with pytest.raises(RunTakenOver):
        stopped.emit("run.completed", "", {})
    await other.durable()
    with pytest.raises(RunTakenOver):
        await stopped.durable()
    assert [e.type for e in store.read_events("r1")] == ["run.started"]
    assert [e.type for e in store.read_events("r2")] == ["run.started", "agent.started"]
