"""A queued run on PostgreSQL, its worker killed mid-run and another worker taking it over:
one trace, the run span from the moment it was queued, one segment per worker."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from agentform.engine.api import Engine
from agentform.engine.store import open_store
from tests.runtime.helpers import apply
from tests.workers.helpers import start_worker, stop, wait_until

from .receiver import Receiver
from .test_traces import _finished, _named, _three_levels, _tree_checks

pytestmark = pytest.mark.timeout(300)


async def test_a_worker_takeover_keeps_the_run_one_trace(pg_store_url: str, tmp_path: Path):
    store = open_store(pg_store_url)
    home = tmp_path / "home"
    workers = []
    try:
        apply(store, _three_levels(tmp_path), home)
        engine = Engine(home=home, store=pg_store_url)
        try:
            queued = await engine.enqueue("team/top", input="go")
        finally:
            await engine.aclose()
        with Receiver() as receiver:
            env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}
            workers.append(start_worker(pg_store_url, home, log=tmp_path / "w1.log", **env))
            wait_until(lambda: any(e.type == "agent.started" and e.path == "top/inner/w2"
                                   for e in store.read_events(queued.id)), what="w2 to start")
            receiver.wait_for(_finished("invoke_agent w1"))
            stop(workers[0], signal.SIGKILL)
            workers.append(start_worker(pg_store_url, home, log=tmp_path / "w2.log", **env))
            done = wait_until(lambda: (r := store.get_run(queued.id)).status in ("succeeded", "failed") and r,
                              timeout=90, what="the run to finish on the second worker")
            assert done.status == "succeeded", done.error
            spans = receiver.wait_for(_finished("run team/default/top"))
        events = store.read_events(queued.id)
        _tree_checks(spans, queued.id)
        run = _named(spans, "run team/default/top")
        assert run.start_ns == int(events[0].ts * 1e9) and events[0].type == "run.queued"
        segments = sorted((s for s in spans if s.name == "segment"), key=lambda s: s.start_ns)
        assert [s.attributes["agentform.segment.trigger"] for s in segments] == ["start", "resume"]
        assert segments[1].attributes["agentform.segment.previous_status"] == "queued"   # released, then resumed
        assert all(s.parent_id == run.span_id for s in segments)
        first, second = segments
        assert first.status == 2 and first.attributes["agentform.segment.outcome"] == "taken over"
        assert second.status == 0 and second.attributes["agentform.segment.outcome"] == "completed"
        assert run.start_ns < first.start_ns
        assert len([s for s in spans if s.name.startswith("chat ")]) == \
            len([e for e in events if e.type == "message.completed"])
    finally:
        for worker in workers:
            stop(worker, signal.SIGTERM)
        store.close()
