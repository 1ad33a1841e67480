"""deploy/grafana/agentform-dashboard.json queries only metrics agentform exports, by labels they
carry: checked against the /metrics text of a store with a few runs (PostgreSQL, as deployed)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from agentform import Engine
from agentform.engine.store.base import RunRecord
from tests.metrics.helpers import project

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "agentform-dashboard.json"
_METRIC = re.compile(r"\b((?:agentform|process)_[a-z_]+)\b")
_BY = re.compile(r"by \(([^)]*)\)")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? \S+$")


def _labels_by_metric(text: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            names = {pair.split("=", 1)[0] for pair in re.findall(r'[a-z_]+="', match.group(2) or "")}
            found.setdefault(match.group(1), set()).update(n.rstrip('="') for n in names)
    return found


async def test_every_dashboard_query_uses_exported_metrics_and_labels(tmp_path, pg_store_url):
    from agentform.engine import metrics

    metrics._SNAPSHOTS.clear()
    engine = Engine(tmp_path / "home", store=pg_store_url)
    try:
        engine.apply(project(tmp_path / "m"))
        assert (await engine.run("team/crew", input="x")).status == "succeeded"
        now = time.time()
        engine.store.create_run(RunRecord(id="held", target="agent/default/worker", status="running", revision=1,
                                          created_at=now, owner="w:1", heartbeat_at=now, started_at=now))
        text = engine.metrics()
    finally:
        engine.close()
    exported = _labels_by_metric(text)
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(queries) >= 15
    used = set()
    for expr in queries:
        names = _METRIC.findall(expr)
        assert names, expr
        for name in names:
            assert name in exported, f"{name} (in {expr!r}) is not exported"
            used.add(name)
            for group in _BY.findall(expr):
                wanted = {g.strip() for g in group.split(",")} - {"le", "instance"}
                assert wanted <= exported[name], f"{expr!r}: {name} has labels {exported[name]}"
    # Each family the issue names is on the dashboard.
    for family in ("agentform_runs_started_total", "agentform_runs_finished_total", "agentform_runs_active",
                   "agentform_queue_depth", "agentform_queue_oldest_age_seconds", "agentform_usage_tokens_total",
                   "agentform_usage_cost_usd_total", "agentform_model_call_seconds_bucket",
                   "agentform_tool_call_seconds_bucket", "agentform_event_commit_latency_seconds_bucket",
                   "agentform_sse_subscribers", "agentform_worker_leases", "agentform_workers_live"):
        assert family in used, family
