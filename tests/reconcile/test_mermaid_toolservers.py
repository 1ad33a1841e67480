"""``graph`` shows which ToolServers each agent uses: one node per server, a dotted line from
each agent node (and agent or tool stage) that uses it, labelled with the agent's filter."""

from __future__ import annotations

from agentform.engine.compile import compile_graph
from agentform.engine.desired import make_desired
from agentform.engine.mermaid import to_mermaid

from .test_plan import res

SCRIPT = {"agents": {"lead": [{"content": "hi"}]}}


def _world():
    items = [
        res("Model", "fast", {"model": "scripted", "script": "s.yaml"}),
        res("ToolServer", "git", {"command": ["mcp-server-git"]}),
        res("ToolServer", "search", {"transport": "http", "url": "http://127.0.0.1:9/mcp"}),
        res("Agent", "lead", {"model": "fast", "tools": [{"toolServer": "search", "deny": ["delete"]}]}),
        res("Agent", "coder", {"model": "fast", "tools": [{"toolServer": "git", "allow": ["git_log", "git_diff"]},
                                                          {"toolServer": "search"}]}),
        res("Agent", "critic", {"model": "fast"}),
        res("Team", "crew", {"manager": "lead", "members": [{"agent": "coder"}, {"agent": "critic"}]}),
        res("Pipeline", "flow", {"stages": [
            {"name": "code", "agent": "coder"},
            {"name": "log", "tool": {"toolServer": "git", "name": "git_log"}, "needs": ["code"]}]}),
    ]
    return [make_desired(r, extras={"script": SCRIPT} if r.metadata.name == "fast" else None) for r in items]


def _graph(kind, name):
    items = _world()
    return to_mermaid(compile_graph(next(d for d in items if d.key.kind == kind and d.key.name == name), items))


def test_a_team_graph_joins_each_agent_to_its_tool_servers():
    text = _graph("Team", "crew")
    lines = text.splitlines()
    assert lines.count('  ts_default_git[/"tool server git<br/>stdio"/]') == 1
    assert lines.count('  ts_default_search[/"tool server search<br/>http"/]') == 1  # drawn once, used twice
    assert '  a_default_crew_default_lead -.-|"deny delete"| ts_default_search' in lines
    assert '  a_default_crew_default_coder -.-|"allow git_log, git_diff"| ts_default_git' in lines
    assert "  a_default_crew_default_coder -.- ts_default_search" in lines
    assert not any(line.startswith("  a_default_crew_default_critic -.-") for line in lines)


def test_agent_and_pipeline_graphs_show_tool_servers_too():
    agent = _graph("Agent", "coder").splitlines()
    assert '  a_default_coder -.-|"allow git_log, git_diff"| ts_default_git' in agent
    assert "  a_default_coder -.- ts_default_search" in agent
    flow = _graph("Pipeline", "flow").splitlines()
    assert '  s_default_flow_code -.-|"allow git_log, git_diff"| ts_default_git' in flow
    assert "  s_default_flow_log -.- ts_default_git" in flow  # a tool stage calls its server directly
    assert sum(line.startswith("  ts_default_git[") for line in flow) == 1
