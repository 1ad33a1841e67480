"""Teams: orchestrate, delegate (round trip), nesting, parallel member calls, tool errors."""

from __future__ import annotations

from agentform.engine.runtime import runner
from agentform.engine.validation import validate_path

from .helpers import EXAMPLES, agent, apply, manifest, of, project, run, team


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
        # (a call of an unknown tool is a validate error now, and a tool error at run time: test_mcp.py)
        "boss": [{"toolCalls": [{"name": "ask_worker", "arguments": {"wrong": "x"}},
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
    assert "needs the argument(s): task" in errors[0]
    assert "must be a string" in errors[1]
    assert "maxTokens" in errors[2] and "agent/tired" in errors[2]
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
    # maxParallel 1: each w call completes before the next starts, numbered in call order
    order = [(e.type, e.path, e.data.get("task")) for e in events
             if e.path.startswith("outer/inner/w") and e.type in ("agent.started", "agent.completed")]
    assert order == [(t, p, task if t == "agent.started" else None)
                     for p, task in (("outer/inner/w", "job 0"), ("outer/inner/w#2", "job 1"),
                                     ("outer/inner/w#3", "job 2"))
                     for t in ("agent.started", "agent.completed")]


def test_script_exhaustion_fails_the_run_naming_agent_and_turn(store, tmp_path):
    script = {"agents": {"boss": [{"toolCalls": [{"name": "ask_w", "arguments": {"task": "x"}}]}],
                         "w": [{"content": "one"}]}}
    root = project(tmp_path / "m", script, [agent("boss"), agent("w"), team("t", "boss", [{"agent": "w"}])])
    result, events = run(store, tmp_path, root, "team/t")
    assert result.status == "failed" and result.exit_code == 1
    assert "'boss'" in result.error and "turn 2" in result.error
    assert events[-1].type == "run.failed"


def _ask(member: str, *tasks: str) -> dict:
    return {"toolCalls": [{"name": f"ask_{member}", "arguments": {"task": t}} for t in tasks]}


def test_repeated_member_calls_run_at_visit_paths_in_call_order(store, tmp_path):
    script = {"agents": {
        "boss": [_ask("worker", "one", "two", "three"), _ask("worker", "four"), {"content": "done"}],
        # `worker` plays every call that no more specific key claims, in call order; the first
        # call is the slowest, so completion order differs from call order
        "worker": [{"content": "w-a", "latency": "80ms"}, {"content": "w-b"}, {"content": "w-c"}],
        "worker#2": [{"content": "second's own"}],
    }}
    root = project(tmp_path / "m", script, [agent("boss"), agent("worker"), team("t", "boss", [{"agent": "worker"}])])
    assert validate_path(root).diagnostics == []  # `worker#2` is a valid script key
    result, events = run(store, tmp_path, root, "team/t")
    assert result.status == "succeeded", result.error
    started = [(e.path, e.data["task"]) for e in of(events, "agent.started") if e.path != "t"]
    assert started == [("t/worker", "one"), ("t/worker#2", "two"), ("t/worker#3", "three"),
                       ("t/worker#4", "four")]  # numbered across the manager's turns too
    assert {e.data["agent"] for e in of(events, "agent.started") if e.path != "t"} == {"worker"}
    outputs = {e.path: e.data["output"] for e in of(events, "agent.completed")}
    assert [outputs[p] for p in ("t/worker", "t/worker#2", "t/worker#3", "t/worker#4")] == [
        "w-a", "second's own", "w-b", "w-c"]
    # each tool result answers its own call
    answers = {e.data["id"]: e.data["output"] for e in of(events, "tool.result", "t")}
    assert answers == {"call_1": "w-a", "call_2": "second's own", "call_3": "w-b", "call_4": "w-c"}
    scripted = [tuple(e.data["script"][1:]) for e in of(events, "message.completed") if e.path != "t"]
    assert sorted(scripted) == [("worker", 0), ("worker", 1), ("worker", 2), ("worker#2", 0)]


def test_repeated_delegate_transfers_run_at_visit_paths(store, tmp_path):
    transfer = {"toolCalls": [{"name": "transfer_to_billing", "arguments": {"reason": "refund"}}]}
    script = {"agents": {
        "desk": [transfer, transfer, {"content": "all done"}],
        "billing": [{"content": "first refund"}],
        "t/billing#2": [{"toolCalls": [{"name": "transfer_back", "arguments": {"summary": "second refund"}}]}],
    }}
    root = project(tmp_path / "m", script, [
        agent("desk"), agent("billing"), team("t", "desk", [{"agent": "billing", "mode": "delegate"}])])
    result, events = run(store, tmp_path, root, "team/t")
    assert result.status == "succeeded", result.error
    assert [(e.path, e.data["from"], e.data["to"]) for e in of(events, "handoff")] == [
        ("t", "t", "billing"), ("t/billing", "billing", "t"),
        ("t", "t", "billing"), ("t/billing#2", "billing", "t")]
    assert [e.data["output"] for e in of(events, "tool.result", "t")] == ["first refund", "second refund"]


def test_visit_keys_and_cursors_survive_an_approval_resume(store, tmp_path):
    from agentform.engine.runtime.approvals import resolve_approval

    script = {"agents": {
        "boss": [_ask("worker", "a", "b"), {"content": "first"}, _ask("worker", "c", "d"), {"content": "second"}],
        "worker": [{"content": "w1"}, {"content": "w3"}],
        "worker#2": [{"content": "w2"}, {"content": "w4"}],
    }}
    pipeline = manifest("Pipeline", "p", {"stages": [
        {"name": "one", "team": "t", "input": "go"},
        {"name": "gate", "needs": ["one"], "approval": {"message": "ok?"}},
        {"name": "two", "team": "t", "input": "again", "needs": ["gate"]}],
        "output": "{{ stages.two.output }}"})
    root = project(tmp_path / "m", script, [
        agent("boss"), agent("worker"), team("t", "boss", [{"agent": "worker"}]), pipeline])
    parked, _ = run(store, tmp_path, root, "pipeline/p", input=None)
    assert parked.status == "waiting", parked.error
    done = resolve_approval(store, parked.id, approve=True, by="ana", message=None, home=tmp_path)
    assert done.status == "succeeded" and done.output == "second", done.error
    outputs = {e.path: e.data["output"] for e in of(store.read_events(parked.id), "agent.completed")}
    # the resumed execution continued each key's cursor where the first one left it
    assert {p: o for p, o in outputs.items() if "/worker" in p} == {
        "p/one/t/worker": "w1", "p/one/t/worker#2": "w2", "p/two/t/worker": "w3", "p/two/t/worker#2": "w4"}


def test_script_keys_with_visits_most_specific_wins(store, tmp_path):
    script = {"agents": {
        "boss": [_ask("worker", "a", "b", "c"), {"content": "done"}],
        "worker": [{"content": "any call"}],
        "worker#1": [{"content": "the first (it has no #1 in its path)"}],
        "worker#3": [{"content": "never: t/worker#3 is longer"}],
        "t/worker#3": [{"content": "the third in t"}],
    }}
    root = project(tmp_path / "m", script, [agent("boss"), agent("worker"), team("t", "boss", [{"agent": "worker"}])])
    result, events = run(store, tmp_path, root, "team/t")
    assert result.status == "succeeded", result.error
    outputs = {e.path: e.data["output"] for e in of(events, "agent.completed")}
    assert outputs == {"t/worker": "the first (it has no #1 in its path)", "t/worker#2": "any call",
                       "t/worker#3": "the third in t", "t": "done"}
