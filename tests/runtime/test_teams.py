"""Teams: orchestrate, delegate (round trip), nesting, parallel member calls, tool errors."""

from __future__ import annotations

from agentform.engine.runtime import runner

from .helpers import EXAMPLES, agent, apply, of, project, run, team


def test_company_hierarchy_runs_and_specialists_overlap(store, tmp_path):
    apply(store, EXAMPLES / "company", tmp_path)
    result = runner.start_run(store, "team/company/company", input="Go", home=tmp_path)
    assert result.status == "succeeded", result.error
    assert result.output.startswith("Decision:")
    events = store.read_events(result.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for lead in ("company/research", "company/ops"):
        started = [e.seq for e in events if e.type == "agent.started" and e.path.startswith(lead + "/")]
        done = [e.seq for e in events if e.type == "agent.completed" and e.path.startswith(lead + "/")]
        assert len(started) == 4 and len(done) == 4
        assert max(started) < min(done), f"the four specialists of {lead} did not overlap"
    # orchestrate to research, delegate to ops (and back)
    handoffs = of(events, "handoff")
    assert [(h.path, h.data["from"], h.data["to"]) for h in handoffs] == [
        ("company", "company", "ops"), ("company/ops", "ops", "company")]
    assert of(events, "agent.started", "company/research")[0].data["agent"] == "research-lead"
    record = store.get_run(result.id)
    assert record.status == "succeeded" and record.last_seq == len(events)
    assert record.tokens_in == sum(e.data["tokens_in"] for e in of(events, "usage"))


def test_delegate_round_trip_final_answer_and_conversation(store, tmp_path):
    script = {"agents": {
        "desk": [{"toolCalls": [{"name": "transfer_to_billing", "arguments": {"reason": "refund"}}]},
                 {"content": "All done"}],
        "billing": [{"content": "Refunded 10 EUR"}],   # a final answer also returns control
    }}
    root = project(tmp_path / "m", script, [
        agent("desk", instructions="Front desk"), agent("billing", instructions="Billing"),
        team("support", "desk", [{"agent": "billing", "mode": "delegate"}]),
    ])
    result, events = run(store, tmp_path, root, "team/support", input="I want my money back")
    assert result.status == "succeeded", result.error
    assert result.output == "All done"
    result_event = of(events, "tool.result", "support")[0]
    assert result_event.data["output"] == "Refunded 10 EUR"
    back = of(events, "handoff", "support/billing")[0]
    assert back.data == {"from": "billing", "to": "support", "summary": "Refunded 10 EUR"}


def test_second_transfer_in_one_turn_is_a_tool_error(store, tmp_path):
    script = {"agents": {
        "desk": [{"toolCalls": [{"name": "transfer_to_a", "arguments": {"reason": "x"}},
                                {"name": "transfer_to_b", "arguments": {"reason": "y"}}]},
                 {"content": "ok"}],
        "a": [{"toolCalls": [{"name": "transfer_back", "arguments": {"summary": "a did it"}}]}],
        "b": [{"content": "never"}],
    }}
    root = project(tmp_path / "m", script, [
        agent("desk"), agent("a"), agent("b"),
        team("t", "desk", [{"agent": "a"}, {"agent": "b"}], mode="delegate"),
    ])
    result, events = run(store, tmp_path, root, "team/t")
    assert result.status == "succeeded", result.error
    results = {e.data["name"]: e.data for e in of(events, "tool.result", "t")}
    assert results["transfer_to_a"]["output"] == "a did it"
    assert "only one transfer per turn" in results["transfer_to_b"]["error"]
    assert not of(events, "agent.started", "t/b")


def test_tool_errors_go_back_to_the_model(store, tmp_path):
    script = {"agents": {
        "boss": [{"toolCalls": [{"name": "ask_nobody", "arguments": {"task": "x"}},
                                {"name": "ask_worker", "arguments": {"wrong": "x"}},
                                {"name": "ask_worker", "arguments": {"task": 5}},
                                {"name": "ask_tired", "arguments": {"task": "x"}}]},
                 {"content": "recovered"}],
        "tired": [{"content": "too long", "usage": {"input": 500, "output": 500}}],
        "worker": [],
    }}
    root = project(tmp_path / "m", script, [
        agent("boss"), agent("worker"), agent("tired", budget={"maxTokens": 100}),
        team("t", "boss", [{"agent": "worker"}, {"agent": "tired"}]),
    ])
    result, events = run(store, tmp_path, root, "team/t")
    assert result.status == "succeeded", result.error
    assert result.output == "recovered"
    errors = [e.data["error"] for e in of(events, "tool.result", "t")]
    assert "unknown tool 'ask_nobody'" in errors[0] and "ask_worker" in errors[0]
    assert "needs the argument(s): task" in errors[1]
    assert "must be a string" in errors[2]
    assert "maxTokens" in errors[3] and "agent/tired" in errors[3]
    exceeded = of(events, "budget.exceeded")
    assert exceeded[0].path == "t/tired" and exceeded[0].data["budget"] == "maxTokens"
    assert of(events, "agent.failed", "t/tired")[0].data["agent"] == "tired"
    # the model saw the errors as tool results on its next turn (recorded as it was sent)
    assert len(of(events, "message.completed", "t")) == 2


def test_nested_team_answers_through_its_manager_and_max_parallel(store, tmp_path):
    calls = [{"name": "ask_w", "arguments": {"task": f"job {i}"}} for i in range(3)]
    script = {"agents": {
        "top": [{"toolCalls": [{"name": "ask_inner", "arguments": {"task": "do it"}}]}, {"content": "top done"}],
        "mid": [{"toolCalls": calls}, {"content": "mid done"}],
        "w": [{"content": "w", "latency": "50ms"}] * 3,
    }}
    root = project(tmp_path / "m", script, [
        agent("top"), agent("mid"), agent("w"),
        team("inner", "mid", [{"agent": "w"}], maxParallel=1),
        team("outer", "top", [{"team": "inner"}]),
    ])
    result, events = run(store, tmp_path, root, "team/outer")
    assert result.output == "top done", result.error
    assert of(events, "tool.result", "outer")[0].data["output"] == "mid done"
    # maxParallel 1: each w call completes before the next starts
    order = [e.type for e in events if e.path == "outer/inner/w" and e.type.startswith("agent.")]
    assert order == ["agent.started", "agent.completed"] * 3


def test_script_exhaustion_fails_the_run_naming_agent_and_turn(store, tmp_path):
    script = {"agents": {"boss": [{"toolCalls": [{"name": "ask_w", "arguments": {"task": "x"}}]}],
                         "w": [{"content": "one"}]}}
    root = project(tmp_path / "m", script, [agent("boss"), agent("w"), team("t", "boss", [{"agent": "w"}])])
    result, events = run(store, tmp_path, root, "team/t")
    assert result.status == "failed" and result.exit_code == 1
    assert "'boss'" in result.error and "turn 2" in result.error
    assert events[-1].type == "run.failed"
