"""Compiling teams, pipelines and agents into a Graph; Mermaid output."""

from __future__ import annotations

from agentform.engine.compile import compile_graph, models_under_cost_cap, topological_order
from agentform.engine.desired import make_desired
from agentform.engine.graph import Graph
from agentform.engine.hashing import digest
from agentform.engine.mermaid import to_mermaid

from .test_plan import res

SCRIPT = {"agents": {"lead": [{"content": "hi"}]}}


def world(*extra):
    items = [
        res("Secret", "key", {"fromEnv": "API_KEY"}),
        res("Model", "fast", {"model": "scripted", "script": "s.yaml"}),
        res("Model", "gpt", {"model": "openai/gpt-4o-mini", "apiKey": {"secretRef": "key"}}),
        res("Agent", "lead", {"model": "fast"}),
        res("Agent", "researcher", {"model": "gpt", "budget": {"maxCostUsd": 1}}),
        res("Agent", "critic", {"model": "fast"}),
        res("Team", "reviewers", {"manager": "critic", "members": [{"agent": "researcher"}]}),
        res("Team", "company", {"manager": "lead", "mode": "delegate",
                                "members": [{"agent": "researcher", "mode": "orchestrate"}, {"team": "reviewers"}]}),
        *extra,
    ]
    return [make_desired(r, extras={"script": SCRIPT} if r.metadata.name == "fast" else None) for r in items]


def find(items, kind, name):
    return next(d for d in items if d.key.kind == kind and d.key.name == name)


def test_team_compiles_recursively_with_tools_per_mode():
    items = world()
    graph = compile_graph(find(items, "Team", "company"), items)
    assert graph.kind == "Team" and graph.root == "default/company"
    company = graph.teams["default/company"]
    assert [(e.name, e.kind, e.mode, e.tool) for e in company.members] == [
        ("researcher", "Agent", "orchestrate", "ask_researcher"),
        ("reviewers", "Team", "delegate", "transfer_to_reviewers"),
    ]
    assert set(graph.teams) == {"default/company", "default/reviewers"}
    assert set(graph.agents) == {"default/lead", "default/researcher", "default/critic"}
    assert graph.models["default/fast"].script == SCRIPT       # pinned script content
    assert graph.secrets == {"default/key": {"fromEnv": "API_KEY"}}   # a source, never a value
    assert models_under_cost_cap(graph) == {"default/gpt"}


def test_graph_round_trips_and_is_deterministic():
    items = world()
    one = compile_graph(find(items, "Team", "company"), items)
    two = compile_graph(find(items, "Team", "company"), list(reversed(items)))
    data = one.model_dump(mode="json", by_alias=True)
    assert Graph.model_validate(data) == one
    assert digest(data) == digest(two.model_dump(mode="json", by_alias=True))
    assert list(data["agents"]) == sorted(data["agents"])


def test_pipeline_targets_and_topological_order():
    pipeline = res("Pipeline", "news", {"stages": [
        {"name": "ship", "approval": {}, "needs": ["review"]},
        {"name": "review", "agent": "critic", "needs": ["draft"],
         "routes": [{"when": "'REVISE' in output", "goto": "draft"}], "maxVisits": 2},
        {"name": "draft", "team": "company", "forEach": "{{ params.items }}"},
    ]})
    items = world(pipeline)
    graph = compile_graph(find(items, "Pipeline", "news"), items)
    node = graph.pipelines["default/news"]
    assert node.order == ["draft", "review", "ship"]
    assert {k: (v.kind, v.target) for k, v in node.targets.items()} == {
        "ship": ("approval", None), "review": ("agent", "default/critic"), "draft": ("team", "default/company")}
    assert "default/company" in graph.teams and "default/reviewers" in graph.teams
    text = to_mermaid(graph)
    assert "flowchart TD" in text
    assert '-.->|"#39;REVISE#39; in output"|' in text or "-.->|\"'REVISE' in output\"|" in text
    assert "{{" in text and "forEach" in text  # approval hexagon, fan-out marked


def test_team_mermaid_labels_edges_with_tools():
    items = world()
    text = to_mermaid(compile_graph(find(items, "Team", "company"), items))
    assert '-->|"ask_researcher"|' in text
    assert '==>|"transfer_to_reviewers"|' in text
    assert 'subgraph t_default_reviewers["team reviewers"]' in text


def test_agent_graph_holds_just_the_agent_and_its_model():
    items = world()
    graph = compile_graph(find(items, "Agent", "lead"), items)
    assert (graph.kind, set(graph.agents), set(graph.models), graph.teams) == (
        "Agent", {"default/lead"}, {"default/fast"}, {})


def test_topological_order_keeps_declaration_order_for_ties():
    stages = [res("Pipeline", "p", {"stages": [
        {"name": "c", "agent": "x", "needs": ["a"]}, {"name": "a", "agent": "x"}, {"name": "b", "agent": "x"}]})]
    assert topological_order(stages[0].spec.stages) == ["a", "c", "b"]
