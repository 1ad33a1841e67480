"""Approvals over HTTP: with several waiting, an answer names its stage; each answer continues
the run in the server, as `agentform approve` does; rejecting fails the run. Both stores."""

from __future__ import annotations

import httpx
from http_helpers import cli, doc, project, stored_stream, wait_for

INNER = {"stages": [{"name": "ok", "approval": {"message": "inner?"}},
                    {"name": "w", "agent": "worker", "needs": ["ok"], "input": "{{ stages.ok.output.approved }}"}],
         "output": "{{ stages.w.output }}"}
OUTER = {"stages": [{"name": "gate", "approval": {"message": "outer?"}}, {"name": "sub", "pipeline": "inner"},
                    {"name": "fan", "agent": "worker", "needs": ["gate"], "forEach": "[1, 2]"}],
         "output": "{{ stages.sub.output }} {{ stages.fan.output | join(',') }}"}


def _parked(served, store_url, tmp_path) -> str:
    folder = project(tmp_path / "m", {"worker": [{"content": "w1"}, {"content": "w2"}, {"content": "w3"}]}, [
        doc("Agent", "worker", {"model": "m"}), doc("Pipeline", "inner", INNER), doc("Pipeline", "outer", OUTER)])
    assert cli("apply", str(folder), home=served.home, store_url=store_url).returncode == 0
    parked = cli("run", "pipeline/outer", home=served.home, store_url=store_url)
    assert parked.returncode == 3, parked.stderr
    return httpx.get(f"{served.url}/api/v1/runs").json()["items"][0]["id"]


def _status(served, run_id: str) -> str:
    return httpx.get(f"{served.url}/api/v1/runs/{run_id}").json()["status"]


def test_several_waiting_approvals_are_answered_by_stage(serve_factory, store_url, tmp_path):
    served = serve_factory()
    run_id = _parked(served, store_url, tmp_path)
    auth = {"Authorization": f"Bearer {served.engine.token_create(['approve'], name='ana').token}"}
    url = f"{served.url}/api/v1/runs/{run_id}/approval"
    several = httpx.post(url, json={"decision": "approve"}, headers=auth)
    assert several.status_code == 409 and "gate, ok" in several.json()["detail"], several.text
    unknown = httpx.post(url, json={"stage": "nope"}, headers=auth)
    assert unknown.status_code == 422 and "no pending approval for stage 'nope'" in unknown.json()["detail"]
    first = httpx.post(url, json={"decision": "approve", "stage": "ok"}, headers=auth, timeout=60)
    assert first.status_code == 202, first.text
    wait_for(lambda: _status(served, run_id) == "waiting" and len(served.engine.pending_approvals(run_id)) == 1,
             "the run to wait for its last approval")
    last = httpx.post(url, json={"message": "fine"}, headers=auth, timeout=60)   # one waits: no stage needed
    assert last.status_code == 202, last.text
    wait_for(lambda: _status(served, run_id) == "succeeded", "the run to finish")
    assert served.engine.get_run(run_id).output == "w1 w2,w3"
    resolved = [e for e in stored_stream(store_url, run_id) if e["type"] == "approval.resolved"]
    assert [(e["path"].rsplit("/", 1)[-1], e["data"]["by"], e["data"]["message"]) for e in resolved] == [
        ("ok", f"token:{served.engine.tokens()[0].id} (ana)", None),
        ("gate", f"token:{served.engine.tokens()[0].id} (ana)", "fine")]
    assert [(e.action, e.status) for e in reversed(served.engine.audit_log())] == [
        ("run.approve", 409), ("run.approve", 422), ("run.approve", 202), ("run.approve", 202)]


def test_a_rejection_over_http_fails_the_run(serve_factory, store_url, tmp_path):
    served = serve_factory()
    run_id = _parked(served, store_url, tmp_path)
    auth = {"Authorization": f"Bearer {served.engine.token_create(['approve']).token}"}
    answer = httpx.post(f"{served.url}/api/v1/runs/{run_id}/approval",
                        json={"decision": "reject", "stage": "gate", "message": "no"}, headers=auth, timeout=60)
    assert answer.status_code == 202 and answer.json()["detail"].startswith("rejected"), answer.text
    wait_for(lambda: _status(served, run_id) not in ("waiting", "running"), "the run to end")
    assert _status(served, run_id) == "failed" and "rejected by token:" in served.engine.get_run(run_id).error
    resolved = next(e for e in stored_stream(store_url, run_id) if e["type"] == "approval.resolved")
    assert resolved["data"]["approved"] is False and resolved["data"]["message"] == "no"
