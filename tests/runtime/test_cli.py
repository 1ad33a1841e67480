"""The run commands as a user runs them: real subprocesses over one store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .helpers import EXAMPLES, agent, apply, project, team

CLI = [sys.executable, "-c", "from agentform.api.cli import main; main()"]


def _env(**extra):
    return {**os.environ, "CI": "true", "AGENTFORM_HEARTBEAT": "0.2", **extra}


def af(home, store_url, *args, input=None, timeout=60):
    return subprocess.run([*CLI, "--home", str(home), "--store", store_url, *args], input=input,
                          capture_output=True, text=True, timeout=timeout, env=_env())


def start(home, store_url, *args):
    return subprocess.Popen([*CLI, "--home", str(home), "--store", store_url, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def wait_for(predicate, timeout=30.0):
    """Poll observable state (the store) until ``predicate()`` is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("state not reached in time")


@pytest.fixture
def slow(store, tmp_path):
    """A team whose worker takes 30 s (so a run is in flight while the test acts)."""
    script = {"agents": {"boss": [{"toolCalls": [{"name": "ask_w", "arguments": {"task": "x"}}]},
                                  {"content": "done"}],
                         "w": [{"content": "late", "latency": "30s"}]}}
    root = project(tmp_path / "m", script, [agent("boss"), agent("w"), team("t", "boss", [{"agent": "w"}])])
    apply(store, root, tmp_path)
    return store


def _first_run(store):
    runs = store.list_runs()
    return runs[0] if runs and runs[0].last_seq >= 1 else None


def test_run_ci_prints_lines_run_id_and_output(store, store_url, tmp_path):
    apply(store, EXAMPLES / "company", tmp_path)
    (tmp_path / "task.txt").write_text("Go")
    done = af(tmp_path, store_url, "run", "team/company", "-n", "company", "-i", f"@{tmp_path / 'task.txt'}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Decision:")
    run = store.list_runs()[0]
    assert f"run {run.id}" in done.stderr and "agent.started" in done.stderr
    assert run.input == "Go"
    listing = json.loads(af(tmp_path, store_url, "runs", "-o", "json").stdout)
    assert listing[0]["id"] == run.id and listing[0]["status"] == "succeeded"
    assert listing[0]["tokens"] == run.tokens_in + run.tokens_out and listing[0]["revision"] == 1
    table = af(tmp_path, store_url, "runs").stdout
    assert run.id in table and "succeeded" in table
    as_json = af(tmp_path, store_url, "run", "team/company/company", "-i", "-", "-o", "json", input="Go")
    assert json.loads(as_json.stdout)["status"] == "succeeded"


def test_failed_run_exits_1_and_usage_errors_exit_1(store, store_url, tmp_path):
    root = project(tmp_path / "m", {"agents": {"solo": []}}, [agent("solo")])
    apply(store, root, tmp_path)
    failed = af(tmp_path, store_url, "run", "agent/solo", "-i", "x")
    assert failed.returncode == 1 and "ran out of turns" in failed.stderr
    assert "Traceback" not in failed.stderr
    missing = af(tmp_path, store_url, "run", "team/nope")
    assert missing.returncode == 1 and "not applied" in missing.stderr
    params = af(tmp_path, store_url, "run", "agent/solo", "-p", "x=1")  # a usage error is 1, never 2
    assert params.returncode == 1 and "-p/params apply to pipelines" in params.stderr, params.stderr


def test_logs_follow_from_a_second_process(store, store_url, tmp_path):
    script = {"agents": {"boss": [{"toolCalls": [{"name": "ask_w", "arguments": {"task": str(i)}}]} for i in range(4)]
                         + [{"content": "done"}],
                         "w": [{"content": f"part {i}", "latency": "150ms", "stream": "words"} for i in range(4)]}}
    root = project(tmp_path / "m", script, [agent("boss"), agent("w"), team("t", "boss", [{"agent": "w"}])])
    apply(store, root, tmp_path)
    runner = start(tmp_path, store_url, "run", "team/t")
    run = wait_for(lambda: _first_run(store))
    follower = af(tmp_path, store_url, "logs", run.id[:12], "-f", "-o", "jsonl", timeout=60)
    assert runner.wait(60) == 0
    lines = [json.loads(line) for line in follower.stdout.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["type"] == "run.completed"
    assert len(lines) == store.get_run(run.id).last_seq
    tail = af(tmp_path, store_url, "logs", run.id, "--after", str(len(lines) - 2), "-o", "jsonl")
    assert [json.loads(x)["seq"] for x in tail.stdout.splitlines()] == [len(lines) - 1, len(lines)]
    text = af(tmp_path, store_url, "logs", run.id)
    assert "run.completed" in text.stdout and "tool.call" in text.stdout


def test_ctrl_c_cancels_cleanly_and_exits_130(slow, store_url, tmp_path):
    proc = start(tmp_path, store_url, "run", "team/t")
    run = wait_for(lambda: _first_run(slow))
    wait_for(lambda: any(e.type == "agent.started" and e.path == "t/w" for e in slow.read_events(run.id)))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 130
    events = slow.read_events(run.id)
    assert events[-1].type == "run.cancelled"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert slow.get_run(run.id).status == "cancelled"


def test_cancel_from_another_process(slow, store_url, tmp_path):
    proc = start(tmp_path, store_url, "run", "team/t")
    run = wait_for(lambda: _first_run(slow))
    cancelled = af(tmp_path, store_url, "cancel", run.id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert proc.wait(30) == 4
    assert slow.read_events(run.id)[-1].type == "run.cancelled"
    again = af(tmp_path, store_url, "cancel", run.id)
    assert again.returncode == 1 and "already cancelled" in again.stderr


def test_dead_owner_is_shown_and_cancel_records_it(slow, store_url, tmp_path):
    proc = start(tmp_path, store_url, "run", "team/t")
    run = wait_for(lambda: _first_run(slow))
    proc.kill()
    proc.wait(10)
    listing = json.loads(af(tmp_path, store_url, "runs", "-o", "json").stdout)
    assert listing[0]["status"] == "failed (owner died)"
    # Listing it recorded the failure (run.failed, reason "owner died"): nothing is left to cancel.
    assert slow.get_run(run.id).status == "failed"
    cancelled = af(tmp_path, store_url, "cancel", run.id)
    assert cancelled.returncode == 1 and "already failed" in cancelled.stderr
    events = slow.read_events(run.id)
    assert events[-1].type == "run.failed" and events[-1].data["reason"] == "owner died"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_chat_is_a_thread_of_runs(store, store_url, tmp_path):
    script = {"agents": {"bot": [{"content": "hello"}, {"content": "fine"}, {"content": "bye"}]}}
    root = project(tmp_path / "m", script, [agent("bot"), agent("x"), team("desk", "bot", [{"agent": "x"}])])
    apply(store, root, tmp_path)
    chat = af(tmp_path, store_url, "chat", "team/desk", input="hi\nhow are you\nbye\n")
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.splitlines() == ["hello", "fine", "bye"]
    thread = chat.stderr.split()[1]
    runs = store.list_runs(thread=thread)
    assert sorted(r.input for r in runs) == sorted(["hi", "how are you", "bye"])
    more = af(tmp_path, store_url, "run", "team/desk", "--thread", thread, "-i", "again")
    assert more.returncode == 1 and "ran out of turns at turn 4" in more.stderr
