"""Handoff mode: the conversation moves among a team's agents (sideways, in cycles) until one
answers without a tool call; bounded by budget.maxHandoffs; recorded as handoff events."""

from __future__ import annotations

import asyncio

from agentform.engine.api import Engine
from agentform.specs import ResourceKey
from tests.runtime.helpers import agent, manifest, of, project, run


def _desk(tmp_path, script, **team_spec):
    members = team_spec.pop("members", [{"agent": "billing", "handoffs": ["refunds", "triage"]},
                                        {"agent": "refunds", "handoffs": ["triage"]}])
    spec = {"manager": "triage", "mode": "handoff", "members": members, **team_spec}
    return project(tmp_path / "m", {"agents": script},
                   [agent("triage"), agent("billing"), agent("refunds"), manifest("Team", "desk", spec)])


def _to(name, reason="over to you"):
    return {"toolCalls": [{"name": f"transfer_to_{name}", "arguments": {"reason": reason}}]}


def test_the_conversation_moves_sideways_and_back_and_the_last_answer_ends_the_team(store, tmp_path):
    root = _desk(tmp_path, {"triage": [_to("billing", "charged twice"), {"content": "Refunded, bye"}],
                            "billing": [_to("refunds", "duplicate")], "refunds": [_to("triage", "done")]})
    result, events = run(store, tmp_path, root, "team/desk", "I was charged twice")
    assert result.status == "succeeded" and result.output == "Refunded, bye"
    assert [(e.path, e.data) for e in of(events, "handoff")] == [
        ("desk", {"from": "triage", "to": "billing", "reason": "charged twice"}),
        ("desk/billing", {"from": "billing", "to": "refunds", "reason": "duplicate"}),
        ("desk/refunds", {"from": "refunds", "to": "triage", "reason": "done"})]
    assert [(e.path, e.data["task"]) for e in of(events, "agent.started")] == [
        ("desk", "I was charged twice"), ("desk/billing", "charged twice"), ("desk/refunds", "duplicate"),
        ("desk/triage#2", "done")]
    assert [e.data["output"] for e in of(events, "tool.result")] == [
        "handed over to billing", "handed over to refunds", "handed over to triage"]


def test_an_agent_gets_only_its_own_handoffs(tmp_path):
    # refunds may only hand to triage: a scripted transfer_to_billing is refused at validate
    from agentform.engine.validation import validate_path

    root = _desk(tmp_path, {"triage": [_to("billing"), {"content": "closed"}], "billing": [_to("refunds")],
                            "refunds": [_to("billing"), {"content": "refund issued"}]})
    (problem,) = [d.message for d in validate_path(root).diagnostics]
    assert problem == ("script key 'refunds': agent 'refunds' has no tool 'transfer_to_billing' "
                       "(did you mean 'transfer_to_triage'?); its tools: transfer_to_triage")


def test_a_handoff_cycle_ends_by_max_handoffs_with_budget_exceeded(store, tmp_path):
    root = _desk(tmp_path, {"triage": [_to("billing")] * 5, "billing": [_to("triage")] * 5},
                 members=[{"agent": "billing", "handoffs": ["triage"]}, {"agent": "refunds", "handoffs": ["triage"]}],
                 handoffs=["billing", "refunds"], budget={"maxHandoffs": 3})
    result, events = run(store, tmp_path, root, "team/desk")
    assert result.status == "failed"
    assert "budget maxHandoffs of team/desk exceeded: used 4 of 3" in result.error
    (exceeded,) = of(events, "budget.exceeded")
    assert (exceeded.path, exceeded.data) == ("desk", {"budget": "maxHandoffs", "holder": "team/desk",
                                                       "limit": 3, "used": 4})
    assert len(of(events, "handoff")) == 3
    assert [e.path for e in of(events, "agent.started")] == ["desk", "desk/billing", "desk/triage#2",
                                                              "desk/billing#2"]


def test_max_handoffs_defaults_to_ten(store, tmp_path):
    root = _desk(tmp_path, {"triage": [_to("billing")] * 6, "billing": [_to("triage")] * 6},
                 members=[{"agent": "billing", "handoffs": ["triage"]}, {"agent": "refunds", "handoffs": ["triage"]}])
    result, events = run(store, tmp_path, root, "team/desk")
    assert result.status == "failed" and "maxHandoffs" in result.error
    assert len(of(events, "handoff")) == 10 and of(events, "budget.exceeded")[0].data["limit"] == 10


def test_an_agent_outside_finishers_cannot_end_the_team(store, tmp_path):
    root = _desk(tmp_path, {"triage": [_to("billing")], "billing": [{"content": "I think we are done"}]},
                 finishers=["triage"])
    result, _ = run(store, tmp_path, root, "team/desk")
    assert result.status == "failed"
    assert "billing answered without handing off, but only triage may end the team" in result.error


def test_a_handoff_team_asked_by_a_manager_fails_that_call_only(store, tmp_path):
    # its maxHandoffs runs out: the asking manager gets a tool error and answers anyway
    script = {"boss": [{"toolCalls": [{"name": "ask_desk", "arguments": {"task": "help"}}]},
                       {"content": "the desk is stuck"}],
              "triage": [_to("billing")] * 3, "billing": [_to("triage")] * 3}
    spec = {"manager": "triage", "mode": "handoff", "budget": {"maxHandoffs": 1},
            "members": [{"agent": "billing", "handoffs": ["triage"]}]}
    root = project(tmp_path / "m", {"agents": script}, [
        agent("boss"), agent("triage"), agent("billing"), manifest("Team", "desk", spec),
        manifest("Team", "top", {"manager": "boss", "members": [{"team": "desk"}]})])
    result, events = run(store, tmp_path, root, "team/top")
    assert result.status == "succeeded" and result.output == "the desk is stuck"
    (error,) = [e.data["error"] for e in of(events, "tool.result", "top") if "error" in e.data]
    assert "maxHandoffs" in error
    assert of(events, "budget.exceeded")[0].path == "top/desk"


def test_a_handoff_team_in_a_pipeline_stage(store, tmp_path):
    root = _desk(tmp_path, {"triage": [_to("billing", "r"), _to("billing", "s")],
                            "billing": [{"content": "paid"}, {"content": "paid twice"}]})
    pipe = {"stages": [{"name": "help", "team": "desk", "input": "invoice?"},
                       {"name": "again", "team": "desk", "needs": ["help"], "input": "{{ stages.help.output }}"}]}
    (root / "p.yaml").write_text(manifest("Pipeline", "p", pipe))
    result, events = run(store, tmp_path, root, "pipeline/p", None)
    assert result.status == "succeeded" and result.output == "paid twice"
    assert [e.path for e in of(events, "agent.started")] == [
        "p/help/desk", "p/help/desk/billing", "p/again/desk", "p/again/desk/billing"]


def test_graph_draws_each_handoff_edge(store, tmp_path):
    root = _desk(tmp_path, {}, finishers=["triage"])
    engine = Engine(home=tmp_path, store=store)
    engine.apply(root)
    text = engine.graph_mermaid(ResourceKey("Team", "default", "desk"))
    assert 'subgraph t_default_desk["team desk (handoff)"]' in text
    assert '(["triage (entry)<br/>may end"])' in text and '["refunds"]' in text
    for a, b in (("triage", "billing"), ("triage", "refunds"), ("billing", "refunds"), ("billing", "triage"),
                 ("refunds", "triage")):
        assert f'a_default_desk_default_{a} ==>|"transfer_to_{b}"| a_default_desk_default_{b}' in text
    assert text.count("==>") == 5


def test_a_handoff_run_replays_the_same(store, tmp_path):
    root = _desk(tmp_path, {"triage": [_to("billing"), {"content": "ok"}], "billing": [_to("refunds")],
                            "refunds": [_to("triage")]})
    result, _ = run(store, tmp_path, root, "team/desk")
    report = asyncio.run(Engine(home=tmp_path, store=store).replay(result.id))
    assert report.same, report.divergence
