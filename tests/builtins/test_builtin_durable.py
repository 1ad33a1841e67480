"""The built-ins under the durable-runs guarantees: a run that uses memory and todo is killed
with SIGKILL mid-run and resumed (nothing finished runs again, the todo list is rebuilt from
the stream), and replayed (reads served from the stream, no store written), on both stores.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

from runtime.helpers import agent, apply, project, team
from runtime.test_cli import af, wait_for
from runtime.test_resume import _check_stream, _has, _kill, _run_of, _start

from agentform.engine.api import Engine

ITEMS = [{"content": "remember the customer", "status": "completed"},
         {"content": "get the specialist's answer", "status": "in_progress"}]


def _desk(tmp_path, latency="2s"):
    """A manager that writes memory and its todo list, then waits on a slow member, then reads both."""
    call = lambda name, **arguments: {"name": name, "arguments": arguments}  # noqa: E731
    script = {"agents": {
        "keeper": [{"toolCalls": [call("memory_set", key="customer", value="prefers email"),
                                  call("todo_write", todos=ITEMS)]},
                   {"toolCalls": [call("ask_slow", task="look it up")]},
                   {"toolCalls": [call("todo_read"), call("memory_get", key="customer")]},
                   {"content": "answered by email"}],
        "slow": [{"toolCalls": [call("memory_list")]},
                 {"content": "found it", "latency": latency}]}}
    docs = [agent("keeper", tools=[{"builtin": "memory"}, {"builtin": "todo"}]),
            agent("slow", tools=[{"builtin": "memory"}]),
            team("desk", "keeper", [{"agent": "slow"}])]
    return project(tmp_path / "m", script, docs)


def _results(events, name):
    return [e.data for e in events if e.type == "tool.result" and e.data.get("name") == name]


def test_a_run_using_memory_and_todo_resumes_after_sigkill(store, store_url, tmp_path):
    apply(store, _desk(tmp_path), tmp_path)
    proc = _start(tmp_path, store_url, "run", "team/desk")
    run = wait_for(lambda: _run_of(store))
    wait_for(lambda: _has(store, run.id, "tool.result", "desk/slow"))   # memory and todo written
    _kill(proc)
    before = store.read_events(run.id)
    assert [(e.key, e.value) for e in store.memory_list("default", "team/desk")] == [("customer", "prefers email")]

    resumed = af(tmp_path, store_url, "resume", run.id)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "answered by email"
    events = store.read_events(run.id)
    _check_stream(events)
    assert events[: len(before)] == before
    # the writes ran once: each call is in the stream once, with one result
    calls = Counter(e.data["name"] for e in events if e.type == "tool.call")
    assert calls["memory_set"] == 1 and calls["todo_write"] == 1 and calls["memory_list"] == 1
    # the resumed process rebuilt the todo list from the stream, and read the memory the dead one wrote
    assert _results(events, "todo_read")[0]["output"]["todos"] == ITEMS
    assert _results(events, "memory_get")[0]["output"]["value"] == "prefers email"
    entries = store.memory_list("default", "team/desk")
    assert [(e.key, e.run_id) for e in entries] == [("customer", run.id)]


def test_replay_serves_memory_from_the_stream_and_writes_nothing(store, tmp_path):
    apply(store, _desk(tmp_path, latency="0s"), tmp_path)
    engine = Engine(home=tmp_path, store=store)
    result = asyncio.run(engine.run("team/desk", input="go"))
    assert result.status == "succeeded", result.error
    # the store changes after the run: a replay must not read it (nor write it back)
    assert store.memory_delete("default", "team/desk", "customer")
    store.memory_put("default", "team/desk", "other", "x", run_id=None, max_entries=10)
    report = asyncio.run(engine.replay(result.id))
    assert report.same, report.divergence
    assert [(e.key, e.value) for e in store.memory_list("default", "team/desk")] == [("other", "x")]
    events = store.read_events(result.id)
    assert _results(events, "memory_get")[0]["output"]["value"] == "prefers email"
    exported = tmp_path / "run.jsonl"
    engine.export_run(result.id, exported)
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert any(line.get("type") == "tool.call" and line["data"]["name"] == "memory_set" for line in lines[1:])
    engine.close()
