"""/metrics after a few runs: the values, from the store (any process's runs) and from this
process's own executions. Both stores."""

from __future__ import annotations

import time

import pytest

from agentform import Engine
from agentform.engine.store.base import RunRecord

from .helpers import families, parse, project

W = 'target="agent/default/worker"'


@pytest.fixture(autouse=True)
def _fresh_snapshots():
    from agentform.engine import metrics

    metrics._SNAPSHOTS.clear()   # /metrics reads the store at most every 2 s per store object
    yield
    metrics._SNAPSHOTS.clear()


async def test_metrics_after_a_few_runs(tmp_path, store_url):
    engine = Engine(tmp_path / "home", store=store_url)
    try:
        engine.apply(project(tmp_path / "m"))
        before = parse(engine.process_metrics())
        for _ in range(2):
            assert (await engine.run("agent/worker", input="a")).status == "succeeded"
        team = await engine.run("team/crew", input="b")
        assert team.status == "succeeded" and team.output == "done"
        parked = await engine.run("pipeline/p")
        assert parked.status == "waiting"
        assert (await engine.run("agent/mute", input="c")).status == "failed"
        from agentform.engine.workers.queue import create_queued_run

        queued = create_queued_run(engine.store, "agent/worker", input="later")   # no worker: stays queued
        now = time.time()
        store = engine.store
        store.create_run(RunRecord(id="queued-old", target="agent/default/worker", status="queued", revision=1,
                                   created_at=now - 120))
        # Two runs held by owners: one heartbeat live, one older than the lease (a dead owner).
        store.create_run(RunRecord(id="held-live", target="agent/default/worker", status="running", revision=1,
                                   created_at=now, owner="host-a:1", heartbeat_at=now, started_at=now))
        store.create_run(RunRecord(id="held-dead", target="agent/default/worker", status="running", revision=1,
                                   created_at=now - 600, owner="host-b:2", heartbeat_at=now - 600,
                                   started_at=now - 600))
        text = engine.metrics()
    finally:
        engine.close()
    m = parse(text)
    # Runs by target: started (the queued one has not), ended by status, in the store by status.
    assert m[f"agentform_runs_started_total{{{W}}}"] == 4          # two succeeded, two held
    assert m[f'agentform_runs_finished_total{{{W},status="succeeded"}}'] == 2
    assert m['agentform_runs_finished_total{target="team/default/crew",status="succeeded"}'] == 1
    assert f'agentform_runs_finished_total{{{W},status="failed"}}' not in m
    assert m['agentform_runs_finished_total{target="agent/default/mute",status="failed"}'] == 1
    assert m['agentform_runs_by_target{target="pipeline/default/p",status="waiting"}'] == 1
    assert m[f'agentform_runs_by_target{{{W},status="queued"}}'] == 2
    assert m['agentform_runs{status="succeeded"}'] == 3 and m["agentform_runs_active"] == 3
    # The queue: two runs, the oldest queued two minutes ago.
    assert m["agentform_queue_depth"] == 2
    assert 120 <= m["agentform_queue_oldest_age_seconds"] < 600
    assert queued.status == "queued"
    # Tokens and USD by model and target: 2 x (100, 20) for the worker; the team's boss 120/12 plus
    # its worker 100/20; the pipeline's prep 100/20.
    usage = 'model="scripted",target="{}"'
    assert m["agentform_usage_tokens_total{" + usage.format("agent/default/worker") + ',direction="in"}'] == 200
    assert m["agentform_usage_tokens_total{" + usage.format("agent/default/worker") + ',direction="out"}'] == 40
    assert m["agentform_usage_tokens_total{" + usage.format("team/default/crew") + ',direction="in"}'] == 220
    assert m["agentform_usage_tokens_total{" + usage.format("pipeline/default/p") + ',direction="out"}'] == 20
    team_usd = (220 * 2.0 + 32 * 10.0) / 1e6
    assert m["agentform_usage_cost_usd_total{" + usage.format("team/default/crew") + "}"] == pytest.approx(team_usd)
    assert m['agentform_tokens_total{model="scripted",direction="in"}'] == 520
    # Leases: the live owner holds one; the dead owner's run is counted as expired.
    assert m['agentform_worker_leases{owner="host-a:1"}'] == 1
    assert 'agentform_worker_leases{owner="host-b:2"}' not in m
    assert m["agentform_worker_leases_expired"] == 1
    if store_url.startswith("postgresql"):
        assert m["agentform_workers_live"] == 0
    else:
        assert "agentform_workers_live" not in m
    # This process's own: model and tool calls of the runs above (deltas: the registry is per process).
    def delta(name: str) -> float:
        return m.get(name, 0.0) - before.get(name, 0.0)

    assert delta('agentform_model_call_seconds_count{model="scripted"}') == 6   # 2 + boss 2 + worker 1 + prep 1
    assert delta('agentform_tool_call_seconds_count{tool="ask_worker"}') == 1
    # The boss's first turn took 200 ms (the script's latency): above the 0.1 s bucket, in the sum.
    assert delta('agentform_model_call_seconds_sum{model="scripted"}') >= 0.2
    above = (delta('agentform_model_call_seconds_bucket{model="scripted",le="+Inf"}')
             - delta('agentform_model_call_seconds_bucket{model="scripted",le="0.1"}'))
    assert above >= 1
    assert delta('agentform_tool_call_seconds_bucket{tool="ask_worker",le="+Inf"}') == 1
    assert delta('agentform_process_runs_finished_total{status="succeeded"}') == 3
    assert delta('agentform_process_runs_finished_total{status="failed"}') == 1
    assert delta('agentform_process_runs_finished_total{status="waiting"}') == 1
    assert delta("agentform_event_commit_latency_seconds_count") >= 1
    assert delta("agentform_process_events_total") > 20
    assert {"agentform_sse_subscribers", "agentform_event_append_latency_seconds",
            "process_start_time_seconds"} <= families(text)
