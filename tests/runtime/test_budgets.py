"""Budgets: every kind at agent, team and run level; budget.exceeded names budget and holder."""

from __future__ import annotations

import pytest

from agentform.engine.errors import RunError

from .helpers import agent, manifest, of, project, run, team


def _exceeded(events):
    return [(e.path, e.data["budget"], e.data["holder"]) for e in of(events, "budget.exceeded")]


def test_agent_max_turns_fails_the_run_when_it_is_the_target(store, tmp_path):
    loop = [{"toolCalls": [{"name": "ask_w", "arguments": {"task": "again"}}]}] * 5
    script = {"agents": {"boss": loop, "w": [{"content": "ok"}] * 5}}
    root = project(tmp_path / "m", script, [
        agent("boss", budget={"maxTurns": 2}), agent("w"), team("t", "boss", [{"agent": "w"}])])
    result, events = run(store, tmp_path, root, "team/t")
    assert result.status == "failed"
    assert "maxTurns" in result.error and "agent/boss" in result.error
    assert _exceeded(events) == [("t", "maxTurns", "agent/boss")]
    assert len(of(events, "message.completed", "t")) == 2  # the third turn never happened
    assert events[-1].type == "run.failed"


def test_team_max_cost_counts_members_and_fails_the_run(store, tmp_path):
    script = {"agents": {
        "boss": [{"toolCalls": [{"name": "ask_w", "arguments": {"task": "x"}}], "usage": {"input": 100_000}},
                 {"content": "never"}],
        "w": [{"content": "pricey", "usage": {"input": 2_000_000}}],
    }}
    root = project(tmp_path / "m", script, [
        agent("boss"), agent("w"), team("t", "boss", [{"agent": "w"}], budget={"maxCostUsd": 1.0})],
        model_spec={"pricing": {"inputPerMTok": 1.0, "outputPerMTok": 1.0}})
    result, events = run(store, tmp_path, root, "team/t")
    assert result.status == "failed"
    assert _exceeded(events) == [("t", "maxCostUsd", "team/t")]
    assert result.cost_usd == pytest.approx(2.1)
    # the member's call did not turn the team's budget into a tool error: the run stopped
    assert not of(events, "message.completed", "t")[1:]


def test_agent_max_tokens_and_timeout_of_members_are_tool_errors(store, tmp_path):
    script = {"agents": {
        "boss": [{"toolCalls": [{"name": "ask_slow", "arguments": {"task": "x"}},
                                {"name": "ask_wordy", "arguments": {"task": "y"}}]},
                 {"content": "handled"}],
        "slow": [{"content": "late", "latency": "30s"}],
        "wordy": [{"content": "long", "usage": {"input": 10, "output": 900}}],
    }}
    root = project(tmp_path / "m", script, [
        agent("boss"), agent("slow", budget={"timeout": "200ms"}), agent("wordy", budget={"maxTokens": 500}),
        team("t", "boss", [{"agent": "slow"}, {"agent": "wordy"}])])
    result, events = run(store, tmp_path, root, "team/t")
    assert result.status == "succeeded" and result.output == "handled"
    assert sorted(_exceeded(events)) == [("t/slow", "timeout", "agent/slow"), ("t/wordy", "maxTokens", "agent/wordy")]
    errors = {e.data["name"]: e.data["error"] for e in of(events, "tool.result", "t")}
    assert "timeout" in errors["ask_slow"] and "maxTokens" in errors["ask_wordy"]


def test_run_target_timeout(store, tmp_path):
    script = {"agents": {"solo": [{"content": "late", "latency": "30s"}]}}
    root = project(tmp_path / "m", script, [agent("solo", budget={"timeout": "150ms"})])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "failed" and "timeout" in result.error
    assert [e.type for e in events][-3:] == ["budget.exceeded", "agent.failed", "run.failed"]


def test_pipeline_max_steps(store, tmp_path):
    script = {"agents": {"w": [{"content": "a"}, {"content": "b"}, {"content": "c"}]}}
    pipeline = manifest("Pipeline", "p", {
        "stages": [{"name": "one", "agent": "w", "input": "1"},
                   {"name": "two", "agent": "w", "input": "2", "needs": ["one"]},
                   {"name": "three", "agent": "w", "input": "3", "needs": ["two"]}],
        "budget": {"maxSteps": 2}})
    root = project(tmp_path / "m", script, [agent("w"), pipeline])
    result, events = run(store, tmp_path, root, "pipeline/p", input=None)
    assert result.status == "failed"
    assert _exceeded(events) == [("p", "maxSteps", "pipeline/p")]


def test_unknown_price_under_max_cost_is_refused_up_front(store, tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    (root / "all.yaml").write_text("---\n".join([
        manifest("Model", "m", {"model": "openai/no-such-model-xyz", "baseUrl": "http://127.0.0.1:9"}),
        agent("solo", budget={"maxCostUsd": 1.0})]))
    from agentform.engine.runtime import runner

    from .helpers import apply

    apply(store, root, tmp_path)
    with pytest.raises(RunError, match="no known price"):
        runner.start_run(store, "agent/solo", input="x", home=tmp_path)
    assert store.list_runs() == []


def _ask(member: str, n: int) -> dict:
    return {"toolCalls": [{"name": f"ask_{member}", "arguments": {"task": f"job {i}"}} for i in range(n)]}


def test_agent_max_steps_counts_its_tool_calls_per_invocation(store, tmp_path):
    script = {"agents": {
        # three calls of mid: 2 steps, 2 steps (each invocation counts afresh), then 3 > 2
        "top": [_ask("inner", 1), _ask("inner", 1), _ask("inner", 1), {"content": "coped"}],
        "mid": [_ask("w", 2), {"content": "m1"}, _ask("w", 1), _ask("w", 1), {"content": "m2"},
                _ask("w", 3), {"content": "never"}],
        "w": [{"content": "w"}] * 8,
    }}
    root = project(tmp_path / "m", script, [
        agent("top"), agent("mid", budget={"maxSteps": 2}), agent("w"),
        team("inner", "mid", [{"agent": "w"}]), team("outer", "top", [{"team": "inner"}])])
    result, events = run(store, tmp_path, root, "team/outer")
    assert result.status == "succeeded" and result.output == "coped", result.error
    assert _exceeded(events) == [("outer/inner#3", "maxSteps", "agent/mid")]
    exceeded = of(events, "budget.exceeded")[0].data
    assert (exceeded["limit"], exceeded["used"]) == (2, 3)
    # the over-budget reply's calls never ran: w ran 2 + 2 times, none under the third call
    assert not [e for e in of(events, "agent.started") if e.path.startswith("outer/inner#3/")]
    assert len([e for e in of(events, "agent.started") if e.data["agent"] == "w"]) == 4
    errors = [e.data.get("error") for e in of(events, "tool.result", "outer")]
    assert errors[:2] == [None, None] and "maxSteps" in errors[2] and "agent/mid" in errors[2]


def test_agent_max_steps_of_the_target_fails_the_run(store, tmp_path):
    script = {"agents": {"boss": [_ask("w", 2), _ask("w", 2), {"content": "never"}], "w": [{"content": "w"}] * 4}}
    root = project(tmp_path / "m", script, [
        agent("boss", budget={"maxSteps": 3}), agent("w"), team("t", "boss", [{"agent": "w"}])])
    result, events = run(store, tmp_path, root, "team/t")
    assert result.status == "failed" and "maxSteps" in result.error and "agent/boss" in result.error
    assert _exceeded(events) == [("t", "maxSteps", "agent/boss")]
    assert len(of(events, "tool.call", "t")) == 2  # the second reply's calls did not start
    assert events[-1].type == "run.failed"


def test_team_max_steps_counts_member_calls_nested_teams_included(store, tmp_path):
    script = {"agents": {
        "top": [_ask("inner", 1), _ask("inner", 1), {"content": "never"}],
        "mid": [_ask("w", 2), _ask("w", 1), {"content": "never"}],
        "w": [{"content": "w"}] * 3,
    }}
    root = project(tmp_path / "m", script, [
        agent("top"), agent("mid"), agent("w"),
        team("inner", "mid", [{"agent": "w"}], budget={"maxSteps": 2}),
        team("outer", "top", [{"team": "inner"}], budget={"maxSteps": 4})])
    result, events = run(store, tmp_path, root, "team/outer")
    # inner: 2 member calls, then a third -> that team call fails, a tool error for top;
    # outer: 1 + 2 + 1 steps so far, and top's second ask_inner is its fifth -> the run fails
    assert result.status == "failed", result.output
    assert "budget maxSteps of team/outer exceeded: used 5 of 4" in result.error
    assert _exceeded(events) == [("outer/inner", "maxSteps", "team/inner"), ("outer", "maxSteps", "team/outer")]
    first = of(events, "tool.result", "outer")[0].data["error"]
    assert "maxSteps" in first and "team/inner" in first
    assert [e.path for e in of(events, "agent.started") if e.data["agent"] == "w"] == [
        "outer/inner/w", "outer/inner/w#2"]
    assert not of(events, "agent.started", "outer/inner#2")
    assert events[-1].type == "run.failed"
