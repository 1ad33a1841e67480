"""Approvals: the run parks (exit 3, no process left), `agentform approve` continues it later.

Every run and every answer here is a separate `agentform` process, so the answering
process rebuilds the pipeline's state from the stream alone.
"""

from __future__ import annotations

import getpass

import pytest

from agentform.engine.errors import UsageError
from agentform.engine.runtime.approvals import resolve_approval
from agentform.engine.store import open_store

from .helpers import ROOT, agentform, apply, index_of, run, stream, write_project

PIPE = {"params": {"topic": {"type": "string"}}, "stages": [
    {"name": "prep", "agent": "worker", "input": "prepare {{ params.topic }}"},
    {"name": "side", "agent": "worker", "input": "side work"},
    {"name": "ship", "needs": ["prep"],
     "approval": {"message": "Ship {{ params.topic }} ({{ stages.prep.output }})?", "timeout": "1h"}},
    {"name": "after", "agent": "worker", "needs": ["ship", "side"],
     "input": "{{ stages.ship.output.by }} said {{ stages.ship.output.message }}"},
], "output": "{{ stages.after.output }}"}
SCRIPT = {"worker": [{"content": "prepared"}, {"content": "side done"}, {"content": "shipped"}]}


def _park(tmp_path, store_url, pipe):
    """Apply, then `agentform run` until it parks (exit 3); (home, output, run, events)."""
    folder = write_project(tmp_path / "m", script=SCRIPT, agents=["worker"], pipelines={"p": pipe})
    home = tmp_path / "home"
    done = agentform("apply", str(folder), home=home, store_url=store_url)
    assert done.returncode == 0, done.stdout + done.stderr
    done = agentform("run", "pipeline/p", "-p", "topic=boats", home=home, store_url=store_url)
    assert done.returncode == 3, done.stdout + done.stderr
    store = open_store(store_url, home=home)
    try:
        run = store.list_runs(limit=1)[0]
        return home, done.stdout + done.stderr, run, store.read_events(run.id)
    finally:
        store.close()


def _start(tmp_path, store_url, pipe=PIPE):
    home, printed, run, events = _park(tmp_path, store_url, pipe)
    assert run.status == "waiting"
    assert f"agentform approve {run.id}" in printed  # how to answer
    assert events[-1].type == "run.waiting"
    request = events[index_of(events, "approval.requested", "p/ship")]
    assert request.data["message"] == "Ship boats (prepared)?"
    assert request.data["timeout"] == "1h" and request.data["expiresAt"].endswith("Z")
    # Nothing else could run: `side` finished before the run parked.
    assert index_of(events, "stage.completed", "p/side") < len(events) - 1
    return home, run.id


def _finished(home, store_url, run_id):
    store = open_store(store_url, home=home)
    try:
        return store.get_run(run_id), store.read_events(run_id)
    finally:
        store.close()


def test_approve_from_another_process_continues_the_run(tmp_path, store_url):
    home, run_id = _start(tmp_path, store_url)
    done = agentform("approve", run_id[:12], "-m", "go ahead", home=home, store_url=store_url)
    assert done.returncode == 0, done.stdout + done.stderr
    run, events = _finished(home, store_url, run_id)
    assert run.status == "succeeded" and run.output == "shipped"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    resolved = events[index_of(events, "approval.resolved", "p/ship")]
    assert resolved.data == {"stage": "ship", "approved": True, "by": getpass.getuser(), "message": "go ahead"}
    decision = events[index_of(events, "stage.completed", "p/ship")].data["output"]
    assert decision == {"approved": True, "by": getpass.getuser(), "message": "go ahead"}
    assert events[index_of(events, "stage.started", "p/after")].data["input"] == f"{getpass.getuser()} said go ahead"
    # Restored from the stream, not run again.
    assert sum(e.type == "stage.started" and e.path in ("p/prep", "p/side", "p/ship") for e in events) == 3
    assert sum(e.type == "approval.requested" for e in events) == 1
    assert events[-1].type == "run.completed"


def test_reject_fails_the_stage_and_the_run(tmp_path, store_url):
    home, run_id = _start(tmp_path, store_url)
    done = agentform("approve", run_id, "--reject", "-m", "not now", home=home, store_url=store_url)
    assert done.returncode == 1, done.stdout + done.stderr
    run, events = _finished(home, store_url, run_id)
    assert run.status == "failed"
    assert "stage 'ship'" in run.error and "rejected by" in run.error and "not now" in run.error
    failed = events[index_of(events, "stage.failed", "p/ship")]
    assert failed.data["error"] == f"rejected by {getpass.getuser()}: not now"
    assert not any(e.path == "p/after" for e in events)
    # A finished run has nothing to answer.
    again = agentform("approve", run_id, home=home, store_url=store_url)
    assert again.returncode == 1 and "not waiting" in again.stderr


def test_an_approval_past_its_timeout_fails_the_run(tmp_path, store_url):
    pipe = {**PIPE, "stages": [dict(s) for s in PIPE["stages"]]}
    pipe["stages"][2]["approval"] = {"message": "Ship?", "timeout": "0s"}  # expires when asked
    home, _, run, _ = _park(tmp_path, store_url, pipe)
    run_id = run.id
    done = agentform("approve", run_id, "-m", "too late", home=home, store_url=store_url)
    assert done.returncode == 1, done.stdout + done.stderr
    run, events = _finished(home, store_url, run_id)
    assert run.status == "failed" and "expired" in run.error and "stage 'ship'" in run.error
    assert not any(e.type == "approval.resolved" for e in events)  # a late answer is not recorded
    assert "expired" in events[index_of(events, "stage.failed", "p/ship")].data["error"]


def test_content_pipeline_example_waits_then_finishes(tmp_path):
    home = tmp_path / "home"
    done = agentform("apply", str(ROOT / "examples" / "content-pipeline"), home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    done = agentform("run", "pipeline/content", "-p", "topic=heat pumps", home=home)
    assert done.returncode == 3, done.stdout + done.stderr
    store = open_store(None, home=home)
    try:
        run = store.list_runs(limit=1)[0]
        events = store.read_events(run.id)
    finally:
        store.close()
    paths = [e.path for e in events if e.type == "stage.started"]
    assert paths == ["content/research", "content/summarize", "content/summarize[0]",
                     "content/summarize[1]", "content/summarize[2]", "content/draft", "content/review",
                     "content/draft#2", "content/review#2", "content/publish"]
    done = agentform("approve", run.id, "-m", "ship it", home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    store = open_store(None, home=home)
    try:
        run = store.get_run(run.id)
    finally:
        store.close()
    assert run.status == "succeeded"
    assert "bottleneck is people" in run.output.replace("\n", " ")


def test_approvals_in_a_nested_pipeline_are_answered_one_by_one(store, tmp_path):
    inner = {"stages": [
        {"name": "ok", "approval": {"message": "inner?"}},
        {"name": "w", "agent": "worker", "needs": ["ok"], "input": "{{ stages.ok.output.approved }}"},
    ], "output": "{{ stages.w.output }}"}
    outer = {"stages": [
        {"name": "gate", "approval": {"message": "outer?"}},
        {"name": "sub", "pipeline": "inner"},
        {"name": "fan", "agent": "worker", "needs": ["gate"], "forEach": "[1, 2]"},
    ], "output": "{{ stages.sub.output }} {{ stages.fan.output | join(',') }}"}
    script = {"worker": [{"content": "w1"}, {"content": "w2"}, {"content": "w3"}]}
    folder = write_project(tmp_path / "m", script=script, agents=["worker"],
                           pipelines={"inner": inner, "outer": outer})
    home = tmp_path / "home"
    apply(store, folder, home)
    first = run(store, "pipeline/outer", home)
    assert first.exit_code == 3
    events = store.read_events(first.id)
    assert {e.path for e in events if e.type == "approval.requested"} == {"outer/gate", "outer/sub/inner/ok"}
    second = resolve_approval(store, first.id, approve=True, by="ana", message=None, home=home, stage="ok")
    assert second.status == "waiting"  # the outer gate still waits
    done = resolve_approval(store, first.id, approve=True, by="bo", message="fine", home=home)
    assert done.status == "succeeded" and done.output == "w1 w2,w3"
    events = stream(store, first.id)
    assert events[index_of(events, "stage.started", "outer/sub/inner/w")].data["input"] is True
    assert sum(e.type == "stage.started" and e.path == "outer/sub" for e in events) == 1
    assert [e.type for e in events].count("run.waiting") == 2



def _expired_pipe():
    pipe = {**PIPE, "stages": [dict(s) for s in PIPE["stages"]]}
    pipe["stages"][2]["approval"] = {"message": "Ship?", "timeout": "0s"}  # expires when asked
    return pipe


def test_a_passed_deadline_fails_the_run_when_runs_lists_it(tmp_path, store_url):
    import json

    home, _, run, parked = _park(tmp_path, store_url, _expired_pipe())
    assert run.status == "waiting" and run.deadline_at is not None   # nobody has looked yet
    listed = agentform("runs", "-o", "json", home=home, store_url=store_url)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["status"] == "failed (timed out)"
    run, events = _finished(home, store_url, run.id)
    assert run.status == "failed" and run.finished_at is not None
    assert "stage 'ship'" in run.error and "timed out" in run.error and "expired" in run.error
    assert [(e.type, e.path) for e in events[len(parked):]] == [
        ("run.resumed", ""), ("stage.failed", "p/ship"), ("run.failed", "")]
    assert events[-1].data["reason"] == "timeout" and events[-1].data["error"] == run.error
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    # Seen again: recorded once. The table says it too; an answer now is refused.
    table = agentform("runs", home=home, store_url=store_url)
    assert "failed (timed out)" in table.stdout
    assert _finished(home, store_url, run.id)[0].last_seq == len(events)
    late = agentform("approve", run.id, home=home, store_url=store_url)
    assert late.returncode == 1 and "not waiting" in late.stderr


def test_a_deadline_not_passed_keeps_the_run_waiting(tmp_path, store_url):
    import json

    home, run_id = _start(tmp_path, store_url)
    listed = json.loads(agentform("runs", "-o", "json", home=home, store_url=store_url).stdout)
    assert listed[0]["status"] == "waiting"
    run, events = _finished(home, store_url, run_id)
    assert run.status == "waiting" and run.deadline_at > run.created_at + 3000   # the 1h timeout
    assert events[-1].type == "run.waiting" and events[-1].data["expiresAt"].endswith("Z")


def test_observers_racing_over_a_passed_deadline_record_it_once(store, tmp_path):
    import threading

    from agentform.engine.runtime.liveness import observe_deadlines

    folder = write_project(tmp_path / "m", script=SCRIPT, agents=["worker"], pipelines={"p": _expired_pipe()})
    home = tmp_path / "home"
    apply(store, folder, home)
    parked = run(store, "pipeline/p", home, params={"topic": "x"})
    assert parked.exit_code == 3
    barrier = threading.Barrier(4)

    def observe() -> None:
        barrier.wait()
        observe_deadlines(store)

    threads = [threading.Thread(target=observe) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    events = stream(store, parked.id)
    assert [e.type for e in events].count("run.failed") == 1
    assert [e.type for e in events].count("run.resumed") == 1
    assert store.get_run(parked.id).status == "failed"


def test_cancel_of_a_waiting_run_takes_it_over(store, tmp_path):
    from agentform.engine.runtime.runner import cancel_run

    folder = write_project(tmp_path / "m", script=SCRIPT, agents=["worker"], pipelines={"p": PIPE})
    home = tmp_path / "home"
    apply(store, folder, home)
    parked = run(store, "pipeline/p", home, params={"topic": "x"})
    before = store.get_run(parked.id)
    record, asked = cancel_run(store, parked.id)
    assert not asked and record.status == "cancelled" and record.owner_epoch == before.owner_epoch + 1
    events = stream(store, parked.id)
    assert [e.type for e in events[before.last_seq:]] == ["run.resumed", "run.cancelled"]
    # An answer now is refused, naming the process that took the run over.
    with pytest.raises(UsageError) as refused:
        resolve_approval(store, parked.id, approve=True, by="ana", message=None, home=home)
    assert str(refused.value) == (f"run {parked.id} is not waiting for an approval (it is cancelled): "
                                  f"the process {record.owner} continued it")
    assert record.owner


def test_following_or_cancelling_a_run_past_its_deadline_records_the_timeout(tmp_path, store_url):
    import json

    home, _, run, _ = _park(tmp_path, store_url, _expired_pipe())
    followed = agentform("logs", run.id, "-f", "-o", "jsonl", home=home, store_url=store_url, timeout=30)
    assert followed.returncode == 0, followed.stderr
    last = json.loads(followed.stdout.splitlines()[-1])
    assert last["type"] == "run.failed" and last["data"]["reason"] == "timeout"
    cancelled = agentform("cancel", run.id, home=home, store_url=store_url)
    assert cancelled.returncode == 1 and "already failed" in cancelled.stderr
    assert _finished(home, store_url, run.id)[0].status == "failed"


def test_a_passed_deadline_not_yet_recorded_shows_as_timed_out():
    from agentform.engine.runtime.liveness import display_status
    from agentform.engine.store.base import RunRecord

    waiting = RunRecord(id="r", target="pipeline/default/p", status="waiting", revision=1, created_at=1.0,
                        deadline_at=100.0)
    assert display_status(waiting, now=99.0) == "waiting"
    assert display_status(waiting, now=101.0) == "failed (timed out)"
