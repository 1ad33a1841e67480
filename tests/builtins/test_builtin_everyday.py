"""think, todo and memory: in-process MCP built-ins run by the scripted model, on both stores.

Real parts only: the scripted model plays the agents, each built-in runs as an ``MCPServer``
behind the SDK's client, and the memory lives in the state store (``store`` runs every test
on SQLite and PostgreSQL).
"""

from __future__ import annotations

from runtime.helpers import agent, of, project, run, team

from agentform.engine.runtime import runner


def _call(tool, **arguments):
    return {"name": tool, "arguments": arguments}


def _results(events, path):
    return [e.data for e in of(events, "tool.result", path)]


def test_think_records_the_thought_and_changes_nothing(store, tmp_path):
    script = {"agents": {"solo": [
        {"toolCalls": [_call("think", thought="first the plan, then the answer")]},
        {"content": "42"}]}}
    root = project(tmp_path / "m", script, [agent("solo", tools=[{"builtin": "think"}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    call = of(events, "tool.call", "solo")[0]
    assert call.data["arguments"] == {"thought": "first the plan, then the answer"}
    assert _results(events, "solo")[0]["output"] == "Thought recorded."
    assert result.output == "42"


def test_todo_keeps_a_list_per_agent_across_its_invocations(store, tmp_path):
    items = [{"content": "collect sources", "status": "completed"}, {"content": "write", "status": "in_progress"}]
    script = {"agents": {
        "lead": [{"toolCalls": [_call("ask_worker", task="one")]},
                 {"toolCalls": [_call("ask_worker", task="two")]},
                 {"toolCalls": [_call("todo_read")]},
                 {"content": "done"}],
        "worker": [{"toolCalls": [_call("todo_read")]},
                   {"toolCalls": [_call("todo_write", todos=items)]},
                   {"content": "first"},
                   {"toolCalls": [_call("todo_read")]},
                   {"toolCalls": [_call("todo_write", todos=[{"content": "x" * 501}])]},
                   {"content": "second"}]}}
    root = project(tmp_path / "m", script, [
        agent("lead", tools=[{"builtin": "todo"}]), agent("worker", tools=[{"builtin": "todo"}]),
        team("crew", "lead", [{"agent": "worker"}])])
    result, events = run(store, tmp_path, root, "team/crew")
    assert result.status == "succeeded", result.error
    first, second = _results(events, "crew/worker"), _results(events, "crew/worker#2")
    assert first[0]["output"]["todos"] == []
    assert first[1]["output"] == {"todos": items, "pending": 0, "in_progress": 1, "completed": 1}
    # the worker's second invocation reads its own list; a too-long item is refused, the list stays
    assert second[0]["output"]["todos"] == items
    assert "todos/0/content" in second[1]["error"] and "too long" in second[1]["error"]
    # the lead has its own (empty) list
    lead = [r for r in _results(events, "crew") if r["name"] == "todo_read"]
    assert lead[0]["output"]["todos"] == []


def _memory_project(tmp_path, script):
    return project(tmp_path / "m", script, [
        agent("keeper", tools=[{"builtin": "memory"}]), agent("reader", tools=[{"builtin": "memory"}]),
        agent("loner", tools=[{"builtin": "memory"}]),
        team("desk", "keeper", [{"agent": "reader"}])])


def test_memory_persists_across_runs_per_team_and_namespace(store, tmp_path):
    script = {"agents": {
        "keeper": [{"toolCalls": [_call("memory_set", key="customer:42", value="prefers email"),
                                  _call("memory_set", key="tone", value="formal")]},
                   {"toolCalls": [_call("ask_reader", task="what do we know?")]},
                   {"content": "noted"},
                   # second run
                   {"toolCalls": [_call("memory_get", key="tone")]},
                   {"toolCalls": [_call("memory_delete", key="tone")]},
                   {"toolCalls": [_call("memory_get", key="missing")]},
                   {"content": "cleaned"}],
        "reader": [{"toolCalls": [_call("memory_list", prefix="customer:")]}, {"content": "email"}],
        "loner": [{"toolCalls": [_call("memory_list")]}, {"content": "nothing"}]}}
    root = _memory_project(tmp_path, script)
    first, events = run(store, tmp_path, root, "team/desk", thread="desk-1")
    assert first.status == "succeeded", first.error
    sets = _results(events, "desk")[:2]
    assert [s["output"] for s in sets] == [{"scope": "team/desk", "key": "customer:42", "created": True},
                                           {"scope": "team/desk", "key": "tone", "created": True}]
    # a member of the team reads the team's notes
    listed = _results(events, "desk/reader")[0]["output"]
    assert listed == {"scope": "team/desk", "entries": [{"key": "customer:42", "value": "prefers email"}],
                      "more": False}
    entries = store.memory_list("default", "team/desk")
    assert [(e.key, e.value, e.run_id) for e in entries] == [("customer:42", "prefers email", first.id),
                                                            ("tone", "formal", first.id)]

    # a later run of the team (in the same thread, so the script's cursors continue)
    second = runner.start_run(store, "team/desk", input="again", home=tmp_path, thread="desk-1")
    assert second.status == "succeeded", second.error
    got, deleted, missing = (r["output"] for r in _results(store.read_events(second.id), "desk")[:3])
    assert got["value"] == "formal" and deleted["deleted"] is True and missing["found"] is False
    assert [e.key for e in store.memory_list("default", "team/desk")] == ["customer:42"]

    # an agent outside any team has its own scope
    alone = runner.start_run(store, "agent/loner", input="x", home=tmp_path)
    assert _results(store.read_events(alone.id), "loner")[0]["output"]["entries"] == []
    assert store.memory_scopes() == [("default", "team/desk", 1)]


def test_memory_bounds_are_tool_errors(store, tmp_path, monkeypatch):
    from agentform.engine.runtime.builtins import memory

    monkeypatch.setattr(memory, "MAX_ENTRIES", 2)
    script = {"agents": {"loner": [
        {"toolCalls": [_call("memory_set", key="a", value="1"), ]},
        {"toolCalls": [_call("memory_set", key="b", value="2")]},
        {"toolCalls": [_call("memory_set", key="c", value="3")]},
        {"toolCalls": [_call("memory_set", key="a", value="updated")]},
        {"toolCalls": [_call("memory_set", key="d" * 201, value="x"),
                       _call("memory_set", key="e", value="x" * 16_385),
                       _call("memory_set", key="line\nbreak", value="x")]},
        {"content": "ok"}]}}
    root = _memory_project(tmp_path, script)
    result, events = run(store, tmp_path, root, "agent/loner")
    assert result.status == "succeeded", result.error
    results = _results(events, "loner")
    assert "error" not in results[0] and "error" not in results[1]
    assert "holds 2 entries, the limit" in results[2]["error"]
    assert results[3]["output"]["created"] is False   # replacing a key needs no room
    assert all("error" in r for r in results[4:])
    assert {e.key: e.value for e in store.memory_list("default", "agent/loner")} == {"a": "updated", "b": "2"}


def test_agentform_memory_lists_a_teams_notes(tmp_path):
    from project.helpers import agentform

    home = tmp_path / "state"
    assert agentform("apply", "examples/ci-overlay", home=home).returncode == 0
    done = agentform("run", "team/release-notes", "-i", "notes for 1.4", "--ci", home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    done = agentform("memory", "team/release-notes", "-o", "json", home=home)
    assert done.returncode == 0, done.stderr
    import json

    listed = json.loads(done.stdout)
    assert listed["scope"] == "team/release-notes" and listed["namespace"] == "default"
    assert [(e["key"], e["value"]) for e in listed["entries"]] == [
        ("style", "Lead with the user-visible change; one line per item.")]
    table = agentform("memory", "team/release-notes", home=home).stdout
    assert table.splitlines()[0].split() == ["KEY", "UPDATED", "RUN", "VALUE"] and "style" in table
    done = agentform("memory", "pipeline/content", home=home)
    assert done.returncode == 1 and "names no memory: write team/NAME" in done.stderr
