"""A run taken over while its process executes it: that process stops and writes nothing more."""

from __future__ import annotations

import time

import pytest

from agentform.engine.errors import RunTakenOver

from .test_cli import _first_run, slow, start, wait_for  # noqa: F401 - slow is a fixture


def test_a_process_whose_run_is_taken_over_stops_and_writes_nothing_more(slow, store_url, tmp_path):  # noqa: F811
    proc = start(tmp_path, store_url, "run", "team/t")
    run = wait_for(lambda: _first_run(slow))
    wait_for(lambda: any(e.type == "agent.started" and e.path == "t/w" for e in slow.read_events(run.id)))
    run = slow.get_run(run.id)
    # Another process takes the run over (as a worker reclaiming it would) and ends it.
    taken = slow.take_over_run(run.id, expect_status={"running"}, expect_epoch=run.owner_epoch,
                               owner="elsewhere:1", now=time.time(), status="cancelled", finished_at=time.time(),
                               events=[("run.cancelled", "", {"reason": "taken over by the test"})])
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert f"run {run.id} was taken over by elsewhere:1" in err
    events = slow.read_events(run.id)
    assert events[-1].seq == taken.last_seq and events[-1].data == {"reason": "taken over by the test"}
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    record = slow.get_run(run.id)
    assert (record.status, record.owner, record.owner_epoch) == ("cancelled", "elsewhere:1", run.owner_epoch + 1)


def test_resume_of_a_run_with_a_live_owner_is_refused(slow, store_url, tmp_path):  # noqa: F811
    from agentform.engine.runtime.runner import resume_run

    proc = start(tmp_path, store_url, "run", "team/t")
    try:
        run = wait_for(lambda: _first_run(slow))
        with pytest.raises(RunTakenOver) as refused:
            resume_run(slow, run.id, home=tmp_path)
        assert str(refused.value) == f"run {run.id} is already being continued by {run.owner}"
    finally:
        proc.kill()
        proc.wait(30)


def test_a_fenced_write_stops_the_run_without_a_heartbeat(store, store_url, tmp_path):
    import subprocess

    from .helpers import agent, apply, project, team
    from .test_cli import CLI, _env

    script = {"agents": {"boss": [{"toolCalls": [{"name": "ask_w", "arguments": {"task": "x"}}]},
                                  {"content": "done"}],
                         "w": [{"content": "late", "latency": "1s"}]}}
    root = project(tmp_path / "m", script, [agent("boss"), agent("w"), team("t", "boss", [{"agent": "w"}])])
    apply(store, root, tmp_path)
    proc = subprocess.Popen([*CLI, "--home", str(tmp_path), "--store", store_url, "run", "team/t"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(AGENTFORM_HEARTBEAT="600"))   # no heartbeat: the append is the fence
    run = wait_for(lambda: _first_run(store))
    wait_for(lambda: any(e.type == "agent.started" and e.path == "t/w" for e in store.read_events(run.id)))
    run = store.get_run(run.id)
    taken = store.take_over_run(run.id, expect_status={"running"}, expect_epoch=run.owner_epoch,
                                owner="elsewhere:1", now=time.time(), status="failed", finished_at=time.time(),
                                events=[("run.failed", "", {"error": "taken over by the test"})])
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert f"run {run.id} was taken over by elsewhere:1" in err and "done" not in out
    events = store.read_events(run.id)
    assert events[-1].seq == taken.last_seq and events[-1].data == {"error": "taken over by the test"}
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert (store.get_run(run.id).status, store.get_run(run.id).owner) == ("failed", "elsewhere:1")
