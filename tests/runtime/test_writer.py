"""The group-commit writer: order, totals with the batch, and a failed write that stays with its run."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentform.engine.errors import StoreError
from agentform.engine.events import EventWriter
from agentform.engine.store.base import Event, RunRecord


def _record(run_id: str) -> RunRecord:
    return RunRecord(id=run_id, target="team/default/x", status="running", revision=0, created_at=time.time())


async def test_many_streams_interleaved_stay_contiguous(store):
    writer = EventWriter(store)
    streams = []
    for i in range(20):
        writer.create_run(_record(f"w{i}"))
        streams.append(writer.open(f"w{i}"))
    for n in range(2000):
        stream = streams[n % 20]
        stream.emit("message.delta", "a/b", {"text": str(n)})
        if n % 97 == 0:
            await asyncio.sleep(0)
    streams[3].add_usage(5, 6, 0.25)
    streams[3].emit("run.completed", "", {"output": "x"}, status="succeeded")
    await asyncio.gather(*(s.durable() for s in streams))
    for i in range(20):
        events = store.read_events(f"w{i}")
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
    record = store.get_run("w3")
    assert (record.status, record.tokens_in, record.tokens_out, record.last_seq) == ("succeeded", 5, 6, 101)
    assert record.cost_usd == pytest.approx(0.25)


async def test_a_failed_write_fails_only_its_run(store):
    writer = EventWriter(store)
    writer.create_run(_record("good"))
    writer.create_run(_record("bad"))
    good, bad = writer.open("good"), writer.open("bad")
    good.emit("run.started", "", {})
    bad.emit("run.started", "", {})
    await asyncio.gather(good.durable(), bad.durable())
    # another process appends to "bad" behind this writer's back: its next seq now clashes
    store.append_events([Event("bad", 2, time.time(), "run.cancelled", "", {})])
    good.emit("agent.started", "x", {"agent": "x"})
    bad.emit("agent.started", "x", {"agent": "x"})
    with pytest.raises(StoreError, match="bad"):
        await asyncio.gather(bad.durable(), good.durable())
    await good.durable()
    assert [e.type for e in store.read_events("good")] == ["run.started", "agent.started"]
    assert [e.type for e in store.read_events("bad")] == ["run.started", "run.cancelled"]
