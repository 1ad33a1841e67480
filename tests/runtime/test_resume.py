"""``resume`` after ``kill -9``: the stream is the source of truth, nothing finished runs twice.

Every run here is executed by a real ``agentform`` process that the test kills with SIGKILL
at a point it observes in the store (never after a sleep); the resumed run must complete,
its seq contiguous, no agent or stage finished twice for one path, and its output equal to
an uninterrupted run's.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from agentform.engine.api import Engine
from agentform.engine.errors import RunError

from .helpers import agent, apply, manifest, project, team
from .test_cli import CLI, _env, af, wait_for

HERE = Path(__file__).parent


def _start(home, store_url, *args, **env):
    return subprocess.Popen([*CLI, "--home", str(home), "--store", store_url, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(**env))


def _run_of(store, proc=None):
    """The newest run once it has an event; ``proc`` (the process starting it) must not have
    exited first: its stderr says why, where a bare timeout would not."""
    runs = store.list_runs()
    if runs and runs[0].last_seq >= 1:
        return runs[0]
    if proc is not None and proc.poll() is not None:
        raise AssertionError(f"the run's process exited {proc.returncode} first: {proc.stderr.read()}")
    return None


def _has(store, run_id, type_, path):
    return any(e.type == type_ and e.path == path for e in store.read_events(run_id))


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)   # reaped: its pid is gone, so the run's owner is seen dead


def _check_stream(events):
    """seq contiguous; per path, at most one agent.started / agent.completed / stage.completed;
    the segments end with the dead owner's run.failed, then run.resumed ... run.completed."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for kind in ("agent.started", "agent.completed", "stage.started", "stage.completed"):
        twice = [p for p, n in Counter(e.path for e in events if e.type == kind).items() if n > 1]
        assert not twice, f"{kind} twice at {twice}"
    terminal = [(e.type, e.data.get("reason")) for e in events
                if e.type in ("run.completed", "run.failed", "run.cancelled", "run.resumed")]
    assert terminal == [("run.failed", "owner died"), ("run.resumed", None), ("run.completed", None)]


# -- a team's parallel member calls --------------------------------------------------------------

def _fan_team(tmp_path, latency="2s"):
    script = {"agents": {
        "boss": [{"toolCalls": [{"name": f"ask_w{i}", "arguments": {"task": f"part {i}"}} for i in (1, 2, 3)]},
                 {"content": "all parts done"}],
        "w1": [{"content": "one"}], "w2": [{"content": "two"}],
        "w3": [{"content": "three", "latency": latency}]}}
    docs = [agent("boss"), agent("w1"), agent("w2"), agent("w3"),
            team("t", "boss", [{"agent": "w1"}, {"agent": "w2"}, {"agent": "w3"}])]
    return project(tmp_path / "m", script, docs)


def test_resume_after_kill_during_a_team_fan_out(store, store_url, tmp_path):
    apply(store, _fan_team(tmp_path), tmp_path)
    proc = _start(tmp_path, store_url, "run", "team/t")
    run = wait_for(lambda: _run_of(store, proc))
    wait_for(lambda: _has(store, run.id, "agent.completed", "t/w1") and _has(store, run.id, "agent.completed", "t/w2")
             and _has(store, run.id, "agent.started", "t/w3"))
    _kill(proc)
    before = store.read_events(run.id)

    resumed = af(tmp_path, store_url, "resume", run.id[:12])
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "all parts done"
    events = store.read_events(run.id)
    _check_stream(events)
    assert events[: len(before)] == before   # the past is kept as it was
    # The finished members were not asked again; the manager's first turn was not played again.
    after = events[len(before):]
    assert not [e for e in after if e.path in ("t/w1", "t/w2")]
    assert [e.path for e in after if e.type == "message.completed"] == ["t/w3", "t"]
    assert [e.path for e in after if e.type == "checkpoint"] == ["t"]
    assert store.get_run(run.id).status == "succeeded"

    fresh = af(tmp_path, store_url, "run", "team/t")
    assert fresh.returncode == 0 and fresh.stdout == resumed.stdout
    # `logs` reads past the first segment's end; `logs -f` ends at the last one.
    for follow in ((), ("-f",)):
        logs = af(tmp_path, store_url, "logs", run.id, *follow, "-o", "jsonl")
        assert [json.loads(line)["seq"] for line in logs.stdout.splitlines()] == [e.seq for e in events]


# -- a pipeline's forEach fan-out ----------------------------------------------------------------

def _fan_pipeline(tmp_path):
    script = {"agents": {"w": [], "merge": [{"content": "merged"}]}}
    for i in range(4):
        turn = {"content": f"item {i} done"}
        if i >= 2:
            turn["latency"] = "2s"
        script["agents"][f"fan[{i}]/w"] = [turn]
    pipe = {"params": {"parts": {"type": "array", "default": ["a", "b", "c", "d"]}}, "maxParallel": 4,
            "stages": [
                {"name": "fan", "agent": "w", "forEach": "{{ params.parts }}", "input": "do {{ item }}"},
                {"name": "join", "agent": "merge", "needs": ["fan"], "input": "{{ stages.fan.output }}"}],
            "output": "{{ [stages.fan.output, stages.join.output] }}"}
    return project(tmp_path / "m", script, [agent("w"), agent("merge"), manifest("Pipeline", "p", pipe)])


def test_resume_after_kill_during_a_pipeline_fan_out(store, store_url, tmp_path):
    apply(store, _fan_pipeline(tmp_path), tmp_path)
    proc = _start(tmp_path, store_url, "run", "pipeline/p", "-o", "json")
    run = wait_for(lambda: _run_of(store, proc))
    wait_for(lambda: all(_has(store, run.id, "stage.completed", f"p/fan[{i}]") for i in (0, 1))
             and all(_has(store, run.id, "agent.started", f"p/fan[{i}]/w") for i in (2, 3)))
    _kill(proc)

    with Engine(home=tmp_path, store=store) as engine:
        result = asyncio.run(engine.resume(run.id))
    assert result.status == "succeeded", result.error
    events = store.read_events(run.id)
    _check_stream(events)
    assert Counter(e.path for e in events if e.type == "message.completed") == Counter(
        {"p/fan[0]/w": 1, "p/fan[1]/w": 1, "p/fan[2]/w": 1, "p/fan[3]/w": 1, "p/join/merge": 1})

    fresh = af(tmp_path, store_url, "run", "pipeline/p", "-o", "json")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["output"] == result.output == [[f"item {i} done" for i in range(4)], "merged"]


# -- owner died ---------------------------------------------------------------------------------

def test_a_dead_owner_is_recorded_once_by_whoever_observes_it_first(store, store_url, tmp_path):
    apply(store, _fan_team(tmp_path, latency="30s"), tmp_path)
    proc = _start(tmp_path, store_url, "run", "team/t")
    run = wait_for(lambda: _run_of(store, proc))
    wait_for(lambda: _has(store, run.id, "agent.started", "t/w3"))
    _kill(proc)
    assert store.get_run(run.id).status == "running"   # nobody has looked yet

    with Engine(home=tmp_path, store=store) as engine:
        seen = engine.get_run(run.id[:10])
        again = engine.get_run(run.id)
    assert seen.status == again.status == "failed" and seen.error.startswith("owner died")
    assert seen.finished_at is not None and again.finished_at == seen.finished_at   # its duration stopped
    events = store.read_events(run.id)
    assert [(e.type, e.data.get("reason")) for e in events if e.type.startswith("run.")][-1] == \
        ("run.failed", "owner died")
    assert [e.type for e in events].count("run.failed") == 1

    listed = json.loads(af(tmp_path, store_url, "runs", "--status", "failed", "-o", "json").stdout)
    assert [(r["id"], r["status"]) for r in listed] == [(run.id, "failed (owner died)")]
    assert listed[0]["duration_s"] == pytest.approx(seen.finished_at - seen.started_at, abs=0.01)


def test_runs_lists_a_dead_owner_as_failed_in_the_store(store, store_url, tmp_path):
    apply(store, _fan_team(tmp_path, latency="30s"), tmp_path)
    proc = _start(tmp_path, store_url, "run", "team/t")
    run = wait_for(lambda: _run_of(store, proc))
    _kill(proc)
    assert json.loads(af(tmp_path, store_url, "runs", "--status", "running", "-o", "json").stdout) == []
    record = store.get_run(run.id)
    assert record.status == "failed" and record.finished_at is not None


def test_resume_refuses_a_finished_run(store, store_url, tmp_path):
    apply(store, _fan_team(tmp_path, latency="0s"), tmp_path)
    done = af(tmp_path, store_url, "run", "team/t")
    assert done.returncode == 0, done.stderr
    run = store.list_runs()[0]
    refused = af(tmp_path, store_url, "resume", run.id)
    assert refused.returncode == 1
    assert f"run {run.id} is succeeded; only a waiting or queued run, or one whose owner died" in refused.stderr
    with Engine(home=tmp_path, store=store) as engine, pytest.raises(RunError):
        asyncio.run(engine.resume(run.id))
    assert store.get_run(run.id).last_seq == run.last_seq


# -- tool calls: idempotency keys, retries, cancel ------------------------------------------------

def _keyed_agent(tmp_path, seconds: float):
    server = manifest("ToolServer", "keys", {"transport": "stdio", "timeout": "120s",
                                             "env": {"KEYS_LOG": str(tmp_path / "keys.log")},
                                             "command": [sys.executable, str(HERE / "mcp_keys.py")]})
    script = {"agents": {"solo": [{"toolCalls": [{"name": "keyed", "arguments": {"seconds": seconds}}]},
                                  {"content": "finished"}]}}
    return project(tmp_path / "m", script, [server, agent("solo", tools=[{"toolServer": "keys"}])])


def _log_lines(log: Path) -> list[list[str]]:
    return [line.split(" ", 1) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_tool_call_cut_by_a_kill_is_retried_with_the_same_idempotency_key(store, store_url, tmp_path):
    log = tmp_path / "keys.log"
    apply(store, _keyed_agent(tmp_path, 1.5), tmp_path)
    proc = _start(tmp_path, store_url, "run", "agent/solo")
    run = wait_for(lambda: _run_of(store, proc))
    wait_for(lambda: _log_lines(log))   # the server has the call: its side effect has begun
    _kill(proc)

    with Engine(home=tmp_path, store=store) as engine:
        result = asyncio.run(engine.resume(run.id))
    assert result.status == "succeeded" and result.output == "finished", result.error
    key = f"{run.id}:solo:call_1"
    events = store.read_events(run.id)
    calls = [e.data for e in events if e.type == "tool.call"]
    assert [(c["idempotencyKey"], c.get("retried")) for c in calls] == [(key, None), (key, True)]
    assert [e.data["output"] for e in events if e.type == "tool.result"] == [f"key={key}"]
    # The server received the key both times, as params._meta["dev.agentform/idempotency-key"].
    assert [k for _, k in _log_lines(log)] == [key, key]
    assert [e.path for e in events if e.type == "message.completed"] == ["solo", "solo"]


def test_cancel_during_a_long_tool_call_stops_the_run_within_a_second(store, store_url, tmp_path):
    import time

    log = tmp_path / "keys.log"
    apply(store, _keyed_agent(tmp_path, 60), tmp_path)
    proc = _start(tmp_path, store_url, "run", "agent/solo", AGENTFORM_HEARTBEAT="2")
    run = wait_for(lambda: _run_of(store, proc))
    pid = int(wait_for(lambda: _log_lines(log))[0][0])
    with Engine(home=tmp_path, store=store) as engine:
        asked = time.monotonic()
        record, owner_asked = engine.cancel(run.id)
        assert owner_asked and record.status == "cancelled"
        wait_for(lambda: _has(store, run.id, "run.cancelled", ""), timeout=5)
        took = time.monotonic() - asked
    print(f"run.cancelled recorded {took:.3f}s after cancel")   # the figure README quotes (pytest -s)
    assert took < 1.0, f"run.cancelled recorded {took:.2f}s after cancel"
    assert proc.wait(30) == 4
    wait_for(lambda: not _alive(pid), timeout=10)   # the tool's process is gone
    events = store.read_events(run.id)
    assert events[-1].type == "run.cancelled" and not [e for e in events if e.type == "tool.result"]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return False


# -- an approve killed while it continues a pipeline ---------------------------------------------

def test_an_approve_killed_while_continuing_is_resumed_with_its_decision(store, store_url, tmp_path):
    script = {"agents": {"writer": [{"content": "draft"}],
                         "publisher": [{"content": "published", "latency": "2s"}]}}
    pipe = {"stages": [
        {"name": "draft", "agent": "writer", "input": "write"},
        {"name": "gate", "approval": {"message": "ship?", "timeout": "1h"}, "needs": ["draft"]},
        {"name": "ship", "agent": "publisher", "needs": ["gate"], "input": "{{ stages.gate.output.by }}"}],
        "output": "{{ stages.ship.output }}"}
    root = project(tmp_path / "m", script, [agent("writer"), agent("publisher"), manifest("Pipeline", "p", pipe)])
    apply(store, root, tmp_path)
    waiting = af(tmp_path, store_url, "run", "pipeline/p")
    assert waiting.returncode == 3, waiting.stderr
    run = store.list_runs()[0]
    proc = _start(tmp_path, store_url, "approve", run.id, "-m", "go")
    wait_for(lambda: _has(store, run.id, "agent.started", "p/ship/publisher"))
    _kill(proc)

    again = af(tmp_path, store_url, "approve", run.id)
    assert again.returncode == 1
    assert f"the process continuing it died; `agentform resume {run.id}` continues it" in again.stderr
    resumed = af(tmp_path, store_url, "resume", run.id)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "published"
    events = store.read_events(run.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.data["message"] for e in events if e.type == "approval.resolved"] == ["go"]
    assert [e.path for e in events if e.type == "agent.started"] == ["p/draft/writer", "p/ship/publisher"]
    assert [e.path for e in events if e.type == "stage.completed"] == ["p/draft", "p/gate", "p/ship"]


def test_a_tool_stage_cut_by_a_kill_is_retried_with_the_same_idempotency_key(store, store_url, tmp_path):
    log = tmp_path / "keys.log"
    server = manifest("ToolServer", "keys", {"transport": "stdio", "timeout": "120s",
                                             "env": {"KEYS_LOG": str(log)},
                                             "command": [sys.executable, str(HERE / "mcp_keys.py")]})
    pipe = {"stages": [{"name": "call", "tool": {"toolServer": "keys", "name": "keyed",
                                                 "arguments": {"seconds": 1.5}}}],
            "output": "{{ stages.call.output }}"}
    root = project(tmp_path / "m", {"agents": {}}, [server, manifest("Pipeline", "p", pipe)])
    apply(store, root, tmp_path)
    proc = _start(tmp_path, store_url, "run", "pipeline/p")
    run = wait_for(lambda: _run_of(store, proc))
    wait_for(lambda: _log_lines(log))
    _kill(proc)

    resumed = af(tmp_path, store_url, "resume", run.id)
    assert resumed.returncode == 0, resumed.stderr
    key = f"{run.id}:p/call:call_p/call"
    assert resumed.stdout.strip() == f"key={key}"
    events = store.read_events(run.id)
    assert [(e.data["idempotencyKey"], e.data.get("retried")) for e in events if e.type == "tool.call"] == [
        (key, None), (key, True)]
    assert [k for _, k in _log_lines(log)] == [key, key]
    assert [e.path for e in events if e.type == "stage.started"] == ["p/call"]


def test_resume_during_a_delegation_hands_over_once(store, store_url, tmp_path):
    script = {"agents": {
        "desk": [{"toolCalls": [{"name": "transfer_to_billing", "arguments": {"reason": "refund"}}]},
                 {"content": "All done"}],
        "billing": [{"toolCalls": [{"name": "transfer_back", "arguments": {"summary": "Refunded"}}],
                     "latency": "2s"}]}}
    root = project(tmp_path / "m", script, [
        agent("desk"), agent("billing"), team("support", "desk", [{"agent": "billing", "mode": "delegate"}])])
    apply(store, root, tmp_path)
    proc = _start(tmp_path, store_url, "run", "team/support")
    run = wait_for(lambda: _run_of(store, proc))
    wait_for(lambda: _has(store, run.id, "agent.started", "support/billing"))
    _kill(proc)

    resumed = af(tmp_path, store_url, "resume", run.id)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "All done"
    events = store.read_events(run.id)
    _check_stream(events)
    assert [(e.path, e.data["from"], e.data["to"]) for e in events if e.type == "handoff"] == [
        ("support", "support", "billing"), ("support/billing", "billing", "support")]
    assert [e.data["output"] for e in events if e.type == "tool.result" and e.path == "support"] == ["Refunded"]
