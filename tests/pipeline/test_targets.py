"""Stage targets beyond agents (a team) and the pipeline's cost budget across its stages."""

from __future__ import annotations

from .helpers import HEADER, apply, index_of, run, stream, write_project

TEAM = HEADER + ("kind: Team\nmetadata: {name: crew}\n"
                 "spec: {manager: lead, members: [{agent: helper}]}\n")


def test_team_stage_runs_the_team_under_the_stage_path(store, tmp_path):
    script = {
        "lead": [{"toolCalls": [{"name": "ask_helper", "arguments": {"task": "dig"}}]},
                 {"content": "crew says: dug"}],
        "helper": [{"content": "dug"}],
        "worker": [{"content": "done"}],
    }
    pipe = {"stages": [
        {"name": "work", "team": "crew", "input": "do it"},
        {"name": "after", "agent": "worker", "needs": ["work"], "input": "{{ stages.work.output }}"},
    ]}
    folder = write_project(tmp_path / "m", script=script, agents=["lead", "helper", "worker"],
                           pipelines={"p": pipe}, extra=[TEAM])
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "succeeded", result.error
    assert result.output == "done"  # no output template: the last stage's output
    events = stream(store, result.id)
    assert any(e.type == "agent.started" and e.path == "p/work/crew/helper" for e in events)
    assert events[index_of(events, "stage.completed", "p/work")].data["output"] == "crew says: dug"
    assert events[index_of(events, "stage.started", "p/after")].data["input"] == "crew says: dug"


def test_max_cost_spans_every_stage(store, tmp_path):
    # $1 per model call (1000 input tokens at $1000 per million); the pipeline allows $1.50.
    # continueOnError does not save a run whose own budget ran out.
    turn = {"content": "ok", "usage": {"input": 1000, "output": 0}}
    pipe = {"budget": {"maxCostUsd": 1.5}, "stages": [
        {"name": "one", "agent": "worker"},
        {"name": "two", "agent": "worker", "needs": ["one"], "continueOnError": True},
        {"name": "three", "agent": "worker", "needs": ["two"], "when": "always()"},
    ]}
    folder = write_project(tmp_path / "m", script={"worker": [turn] * 3}, agents=["worker"],
                           pipelines={"p": pipe}, pricing={"inputPerMTok": 1000, "outputPerMTok": 0})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "failed" and "maxCostUsd" in result.error
    events = stream(store, result.id)
    exceeded = [e for e in events if e.type == "budget.exceeded"]
    assert exceeded and exceeded[0].data["budget"] == "maxCostUsd" and exceeded[0].path == "p"
    assert index_of(events, "stage.completed", "p/one") > 0
    assert index_of(events, "stage.failed", "p/two") > 0
    assert not any(e.path.startswith("p/three") for e in events)
