"""team-control: an in-process MCP built-in through which an agent makes, commands and reads agents.

Real parts only: the scripted model plays the orchestrator and its agents, the built-in runs
as an ``MCPServer`` behind the SDK's client, the ``calc`` test server is a real stdio process,
and every test runs on SQLite and PostgreSQL (``store``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .helpers import agent, manifest, of, project, run

HERE = Path(__file__).parent
PRICING = {"pricing": {"inputPerMTok": 1000.0, "outputPerMTok": 2000.0}}   # 100 in + 10 out = 0.12 USD


def _calc(**spec):
    return manifest("ToolServer", "calc", {"transport": "stdio",
                                           "command": [sys.executable, str(HERE / "mcp_calc.py")], **spec})


def _call(tool, **arguments):
    return {"name": tool, "arguments": arguments}


def _results(events, path):
    """tool.result data at ``path`` by call id."""
    return {e.data["id"]: e.data for e in of(events, "tool.result", path)}


def test_an_orchestrator_creates_commands_reads_and_deletes_agents(store, tmp_path):
    script = {"agents": {
        "lead": [
            {"toolCalls": [_call("create_agent", name="alpha", instructions="You add {{ numbers }}.",
                                 tools=["add"]),
                           _call("create_agent", name="beta", instructions="You write.")]},
            {"toolCalls": [_call("command_agent", name="alpha", task="add 2 and 3"),
                           _call("command_agent", name="beta", task="a haiku")]},
            {"toolCalls": [_call("check_agent_status", handle="alpha#1", wait=30),
                           _call("check_agent_status", handle="beta#1", wait=30)]},
            {"toolCalls": [_call("read_logs", name="alpha"), _call("report_cost"), _call("list_agents")]},
            {"toolCalls": [_call("delete_agent", name="beta"), _call("list_agents"),
                           _call("command_agent", name="beta", task="again")]},
            {"content": "all done"}],
        "alpha": [{"toolCalls": [_call("add", a=2, b=3)], "latency": "300ms", "usage": {"input": 60, "output": 4}},
                  {"content": "5", "usage": {"input": 40, "output": 6}}],
        "beta": [{"content": "old pond", "latency": "300ms", "usage": {"input": 50, "output": 5}}]}}
    root = project(tmp_path / "m", script, [
        _calc(), agent("lead", tools=[{"builtin": "team-control"}, {"toolServer": "calc", "allow": ["add"]}])],
        model_spec=PRICING)
    result, events = run(store, tmp_path, root, "agent/lead")
    assert result.status == "succeeded", result.error
    assert result.output == "all done"

    # every step of the orchestrator is a tool call and result at its own path, in call order
    calls = [e.data["name"] for e in of(events, "tool.call", "lead")]
    assert calls == ["create_agent", "create_agent", "command_agent", "command_agent", "check_agent_status",
                     "check_agent_status", "read_logs", "report_cost", "list_agents", "delete_agent",
                     "list_agents", "command_agent"]
    r = _results(events, "lead")
    assert r["call_1"]["output"] == {"agent": "alpha", "path": "lead/alpha", "model": "m", "tools": ["add"]}
    assert r["call_2"]["output"]["tools"] == []

    # command_agent answers at once with a handle; both agents then run in parallel
    assert r["call_3"]["output"] == {"handle": "alpha#1", "path": "lead/alpha", "status": "running"}
    assert r["call_4"]["output"] == {"handle": "beta#1", "path": "lead/beta", "status": "running"}
    created = [e for e in events if e.path in ("lead/alpha", "lead/beta") and e.type.startswith("agent.")]
    assert [e.type for e in created][:2] == ["agent.started", "agent.started"], [(e.type, e.path) for e in created]

    # the created agents run at <creator path>/<name> with their own script keys and the creator's tools
    assert of(events, "agent.completed", "lead/alpha")[0].data["output"] == "5"
    assert _results(events, "lead/alpha")["call_1"]["output"] == 5
    assert of(events, "agent.completed", "lead/beta")[0].data["output"] == "old pond"
    alpha_prompt = next(e for e in of(events, "agent.started", "lead/alpha"))
    assert alpha_prompt.data["task"] == "add 2 and 3"

    # status: finished, with output and cost (alpha: 100 tokens in, 10 out)
    assert r["call_5"]["output"] == {"handle": "alpha#1", "path": "lead/alpha", "status": "succeeded",
                                     "output": "5", "tokens": 110, "cost_usd": pytest.approx(0.12)}
    assert r["call_6"]["output"]["status"] == "succeeded" and r["call_6"]["output"]["output"] == "old pond"

    # logs: alpha's task, its tool call and result, its answer
    logs = r["call_7"]["output"]
    kinds = [(e["type"], e.get("name")) for e in logs["entries"]]
    assert ("tool.call", "add") in kinds and ("tool.result", "add") in kinds
    assert logs["entries"][0] == {"path": "lead/alpha", "type": "agent.started", "task": "add 2 and 3"}
    assert logs["entries"][-1]["type"] == "agent.completed" and logs["entries"][-1]["output"] == "5"
    # the model's instructions are text, never a template: "{{ numbers }}" did not fail alpha

    cost = r["call_8"]["output"]
    assert cost["tokens"] == 165 and cost["cost_usd"] == pytest.approx(0.18)
    assert {row["agent"]: row["cost_usd"] for row in cost["agents"]} == {
        "alpha": pytest.approx(0.12), "beta": pytest.approx(0.06)}
    assert [a["name"] for a in r["call_9"]["output"]["agents"]] == ["alpha", "beta"]

    # delete: beta is gone from the list, and commanding it is a tool error the model reads
    assert r["call_10"]["output"] == {"deleted": "beta", "interrupted": []}
    assert [a["name"] for a in r["call_11"]["output"]["agents"]] == ["alpha"]
    assert "no agent named 'beta'" in r["call_12"]["error"] and "alpha" in r["call_12"]["error"]

    # usage of the created agents is in the run's totals; nothing of theirs outside the creator's path
    assert result.cost_usd == pytest.approx(0.18)
    assert all(e.path == "" or e.path == "lead" or e.path.startswith("lead/") for e in events)


def test_a_created_agent_gets_no_tool_or_model_its_creator_was_not_allowed(store, tmp_path):
    script = {"agents": {
        "lead": [
            {"toolCalls": [_call("create_agent", name="a", instructions="x", tools=["boom"]),
                           _call("create_agent", name="b", instructions="x", model="big"),
                           _call("create_agent", name="c", instructions="x", tools=["ask_helper"]),
                           _call("create_agent", name="d", instructions="x", tools=["add"], model="m"),
                           _call("create_agent", name="d", instructions="again"),
                           _call("create_agent", name="helper", instructions="x"),
                           _call("create_agent", name="Bad_Name", instructions="x")]},
            {"toolCalls": [_call("command_agent", name="d", task="try everything")]},
            {"toolCalls": [_call("check_agent_status", handle="d", wait=30)]},
            {"content": "done"}],
        "d": [{"toolCalls": [_call("add", a=1, b=1), _call("boom", text="x"), _call("slow", seconds=0),
                             _call("create_agent", name="e", instructions="x")]},
              {"content": "tried"}]}}
    big = manifest("Model", "big", {"model": "scripted", "script": "script.yaml"})
    root = project(tmp_path / "m", script, [
        big, _calc(),
        agent("helper"),
        agent("lead", tools=[{"builtin": "team-control"}, {"toolServer": "calc", "deny": ["boom", "crash"]}]),
        manifest("Team", "crew", {"manager": "lead", "members": [{"agent": "helper"}]})])
    result, events = run(store, tmp_path, root, "team/crew")
    assert result.status == "succeeded", result.error
    r = _results(events, "crew")
    assert "boom are not yours to give" in r["call_1"]["error"] and "add" in r["call_1"]["error"]
    assert "model 'big' is not yours to give" in r["call_2"]["error"] and "use m" in r["call_2"]["error"]
    assert "ask_helper are not yours to give" in r["call_3"]["error"]
    assert r["call_4"]["output"]["tools"] == ["add"]
    assert "already exists at crew/d" in r["call_5"]["error"]
    assert "member of your team" in r["call_6"]["error"]
    assert "not a valid agent name" in r["call_7"]["error"]

    # d has exactly what it was given: add; not the denied boom, not slow, not team-control
    d = _results(events, "crew/d")
    assert d["call_1"]["output"] == 2
    for call_id, name in (("call_2", "boom"), ("call_3", "slow"), ("call_4", "create_agent")):
        assert f"unknown tool '{name}'" in d[call_id]["error"] and "available tools: add" in d[call_id]["error"]
    assert r["call_9"]["output"]["status"] == "succeeded"


def test_a_created_agents_cost_counts_against_its_creators_budget(store, tmp_path):
    script = {"agents": {
        "lead": [
            {"toolCalls": [_call("create_agent", name="spender", instructions="x")]},
            {"toolCalls": [_call("command_agent", name="spender", task="spend")]},
            {"toolCalls": [_call("check_agent_status", handle="spender#1", wait=30)]},
            {"content": "never"}],
        "spender": [{"content": "spent", "usage": {"input": 1000, "output": 0}}]}}   # 1.00 USD
    root = project(tmp_path / "m", script, [
        agent("lead", tools=[{"builtin": "team-control"}], budget={"maxCostUsd": 0.5})], model_spec=PRICING)
    result, events = run(store, tmp_path, root, "agent/lead")
    assert result.status == "failed"
    exceeded = of(events, "budget.exceeded")
    assert [(e.path, e.data["holder"], e.data["budget"]) for e in exceeded] == [("lead", "agent/lead", "maxCostUsd")]
    spender = of(events, "agent.failed", "lead/spender")[0].data["error"]
    assert "maxCostUsd of agent/lead exceeded" in spender
    # whether the creator saw the failure (check_agent_status) or not yet, its next turn is
    # refused: its own budget is spent
    status = _results(events, "lead").get("call_3")
    assert status is None or status["output"]["status"] == "failed"
    assert "maxCostUsd of agent/lead" in of(events, "agent.failed", "lead")[0].data["error"]
    assert [e.data["content"] for e in of(events, "message.completed", "lead") if e.data["content"]] == []


def test_interrupt_and_the_run_end_stop_running_commands(store, tmp_path):
    script = {"agents": {
        "lead": [
            {"toolCalls": [_call("create_agent", name="sleeper", instructions="x")]},
            {"toolCalls": [_call("command_agent", name="sleeper", task="one"),
                           _call("command_agent", name="sleeper", task="two")]},
            {"toolCalls": [_call("interrupt_agent", handle="sleeper#1"), _call("check_agent_status", handle="sleeper#1")]},
            {"toolCalls": [_call("interrupt_agent", handle="sleeper#1")]},
            {"content": "leaving sleeper#2 running"}],
        "sleeper": [{"content": "woke", "latency": "60s"}, {"content": "woke", "latency": "60s"}]}}
    root = project(tmp_path / "m", script, [agent("lead", tools=[{"builtin": "team-control"}])])
    result, events = run(store, tmp_path, root, "agent/lead")
    assert result.status == "succeeded", result.error
    r = _results(events, "lead")
    assert r["call_4"]["output"] == {"interrupted": ["sleeper#1"]}
    assert r["call_5"]["output"]["status"] == "interrupted" and "interrupted by lead" in r["call_5"]["output"]["error"]
    assert "has no command running" in r["call_6"]["error"]
    # the second command runs at sleeper#2 and is stopped by the run's end, before run.completed
    failed = {e.path: e.data["error"] for e in of(events, "agent.failed")}
    assert failed == {"lead/sleeper": "interrupted by lead", "lead/sleeper#2": "interrupted: the run ended"}
    assert events[-1].type == "run.completed"
    assert not of(events, "agent.completed", "lead/sleeper#2")


def test_team_control_is_a_tool_server_of_the_run_and_workspace_tools_need_a_workspace(store, tmp_path):
    from agentform.engine.errors import RunError
    from agentform.engine.runtime import runner
    from agentform.engine.runtime.builtins import available, tool_names

    from .helpers import apply

    assert "team-control" in available() and "workspace" in available()
    assert "create_agent" in tool_names()["team-control"] and "run_command" in tool_names()["workspace"]
    root = project(tmp_path / "m", {"agents": {"solo": [{"content": "x"}]}}, [
        manifest("Workspace", "room", {"backend": "local", "sandbox": "none"}),
        agent("solo", tools=[{"builtin": "workspace"}])])
    apply(store, root, tmp_path)
    with pytest.raises(RunError, match="uses the workspace tools, but nothing in this run has a workspace"):
        runner.start_run(store, "agent/solo", input="x", home=tmp_path)

    root = project(tmp_path / "m", {"agents": {"solo": [{"toolCalls": [_call("list_agents")]}, {"content": "x"}]}},
                   [agent("solo", tools=[{"builtin": "team-control"}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    ready = of(events, "toolserver.ready")
    assert [e.data["server"] for e in ready] == ["builtin:team-control"]
    assert "create_agent" in ready[0].data["tools"]
    assert _results(events, "solo")["call_1"]["output"] == {"agents": []}


def test_resume_after_kill_rebuilds_created_agents_and_runs_an_unfinished_command_again(store, store_url, tmp_path):
    from .helpers import apply
    from .test_cli import af, wait_for
    from .test_resume import _check_stream, _has, _kill, _run_of, _start

    script = {"agents": {
        "lead": [
            {"toolCalls": [_call("create_agent", name="alpha", instructions="x"),
                           _call("create_agent", name="beta", instructions="x")]},
            {"toolCalls": [_call("command_agent", name="alpha", task="quick"),
                           _call("command_agent", name="beta", task="slow")]},
            {"toolCalls": [_call("check_agent_status", handle="alpha#1", wait=30),
                           _call("check_agent_status", handle="beta#1", wait=30)]},
            {"toolCalls": [_call("report_cost"), _call("list_agents")]},
            {"content": "done"}],
        "alpha": [{"content": "a", "usage": {"input": 10, "output": 0}}],
        "beta": [{"content": "b", "latency": "3s", "usage": {"input": 20, "output": 0}}]}}
    root = project(tmp_path / "m", script, [agent("lead", tools=[{"builtin": "team-control"}])], model_spec=PRICING)
    apply(store, root, tmp_path)
    proc = _start(tmp_path, store_url, "run", "agent/lead")
    run = wait_for(lambda: _run_of(store))

    def alpha_checked():
        events = store.read_events(run.id)
        return _has(store, run.id, "agent.started", "lead/beta") and any(
            e.type == "tool.result" and e.path == "lead" and e.data["id"] == "call_5" for e in events)

    wait_for(alpha_checked)
    _kill(proc)   # beta's model call and the creator's wait for it are in flight
    before = store.read_events(run.id)
    assert not _has(store, run.id, "agent.completed", "lead/beta")

    resumed = af(tmp_path, store_url, "resume", run.id[:12])
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "done"
    events = store.read_events(run.id)
    _check_stream(events)
    after = events[len(before):]
    assert not [e for e in after if e.path == "lead/alpha"]   # finished before the kill: not run again
    assert [e.data["output"] for e in of(after, "agent.completed", "lead/beta")] == ["b"]
    r = _results(after, "lead")
    assert r["call_6"]["output"]["status"] == "succeeded" and r["call_6"]["output"]["output"] == "b"
    assert r["call_7"]["output"]["tokens"] == 30 and r["call_7"]["output"]["cost_usd"] == pytest.approx(0.03)
    assert [(a["name"], [c["status"] for c in a["commands"]]) for a in r["call_8"]["output"]["agents"]] == [
        ("alpha", ["succeeded"]), ("beta", ["succeeded"])]


def test_a_secret_in_a_created_agents_work_never_reaches_the_creator_or_the_store(store, tmp_path, monkeypatch):
    import json
    import secrets

    from tests.security.test_leaks import hits

    value = f"tc-secret-{secrets.token_hex(12)}"
    monkeypatch.setenv("AF_TC_SECRET", value)
    script = {"agents": {
        "lead": [
            {"toolCalls": [_call("create_agent", name="leaky", instructions="x", tools=["plain"])]},
            {"toolCalls": [_call("command_agent", name="leaky", task="tell")]},
            {"toolCalls": [_call("check_agent_status", handle="leaky#1", wait=30)]},
            {"toolCalls": [_call("read_logs", name="leaky")]},
            {"content": "done"}],
        # the created agent's tool returns the secret, and its model repeats it (the script plays a
        # model that prints what it read)
        "leaky": [{"toolCalls": [_call("plain")]}, {"content": f"I read {value}"}]}}
    echo = manifest("ToolServer", "echo", {"transport": "stdio", "command": [sys.executable, str(HERE / "mcp_echo.py")],
                                           "env": {"ECHO_SECRET": {"secretRef": "tok"}}})
    root = project(tmp_path / "m", script, [
        manifest("Secret", "tok", {"fromEnv": "AF_TC_SECRET"}), echo,
        agent("lead", tools=[{"builtin": "team-control"}, {"toolServer": "echo", "allow": ["plain"]}])])
    result, events = run(store, tmp_path, root, "agent/lead")
    assert result.status == "succeeded", result.error
    r = _results(events, "lead")
    status, logs = r["call_3"]["output"], r["call_4"]["output"]
    assert status["status"] == "succeeded" and status["output"].startswith("I read ") and "***" in status["output"]
    assert any(e.get("output") and "***" in str(e["output"]) for e in logs["entries"])
    written = json.dumps([[e.type, e.path, e.data] for e in events]) + json.dumps(
        store.get_run(result.id).__dict__, default=str)
    assert hits(written, value) == []


async def test_a_team_control_run_replays_the_same(store, tmp_path):
    from agentform.engine.api import Engine

    from .helpers import apply

    script = {"agents": {
        "lead": [
            {"toolCalls": [_call("create_agent", name="alpha", instructions="x", tools=["add"]),
                           _call("create_agent", name="beta", instructions="x")]},
            {"toolCalls": [_call("command_agent", name="alpha", task="add"),
                           _call("command_agent", name="beta", task="write")]},
            {"toolCalls": [_call("check_agent_status", handle="alpha#1", wait=30),
                           _call("check_agent_status", handle="beta#1", wait=30)]},
            {"toolCalls": [_call("read_logs", name="alpha"), _call("report_cost")]},
            {"content": "done"}],
        "alpha": [{"toolCalls": [_call("add", a=1, b=2)]}, {"content": "3", "usage": {"input": 10, "output": 1}}],
        "beta": [{"content": "words", "usage": {"input": 5, "output": 1}}]}}
    root = project(tmp_path / "m", script, [
        _calc(), agent("lead", tools=[{"builtin": "team-control"}, {"toolServer": "calc", "allow": ["add"]}])],
        model_spec=PRICING)
    apply(store, root, tmp_path)
    engine = Engine(home=tmp_path, store=store)
    result = await engine.run("agent/lead", input="go")
    assert result.status == "succeeded", result.error
    report = await engine.replay(result.id)
    assert report.same, report.divergence


def test_validate_accepts_the_script_keys_of_created_agents_only(tmp_path):
    from agentform.engine.validation import validate_path

    script = {"agents": {"lead": [{"toolCalls": [_call("create_agent", name="alpha", instructions="x")]},
                                  {"content": "done"}],
                         "alpha": [{"content": "made in the run"}],
                         "ghost": [{"content": "nobody makes me"}]}}
    root = project(tmp_path / "m", script, [agent("lead", tools=[{"builtin": "team-control"}])])
    found = [d.message for d in validate_path(root).diagnostics]
    assert len(found) == 1 and "script key 'ghost': no Agent 'ghost'" in found[0], found


def test_a_created_agent_given_part_of_team_control_makes_its_own_agents_below_it(store, tmp_path):
    script = {"agents": {
        "lead": [
            {"toolCalls": [_call("create_agent", name="sub", instructions="x",
                                 tools=["create_agent", "command_agent", "check_agent_status"])]},
            {"toolCalls": [_call("command_agent", name="sub", task="delegate")]},
            {"toolCalls": [_call("check_agent_status", handle="sub#1", wait=30)]},
            {"toolCalls": [_call("report_cost")]},
            {"content": "done"}],
        "sub": [{"toolCalls": [_call("create_agent", name="leaf", instructions="x"),
                               _call("delete_agent", name="leaf")]},
                {"toolCalls": [_call("command_agent", name="leaf", task="work")]},
                {"toolCalls": [_call("check_agent_status", handle="leaf#1", wait=30)]},
                {"content": "sub done"}],
        "leaf": [{"content": "leaf done", "usage": {"input": 10, "output": 0}}]}}
    root = project(tmp_path / "m", script, [agent("lead", tools=[{"builtin": "team-control"}])], model_spec=PRICING)
    result, events = run(store, tmp_path, root, "agent/lead")
    assert result.status == "succeeded", result.error
    sub = _results(events, "lead/sub")
    assert sub["call_1"]["output"]["path"] == "lead/sub/leaf"
    assert "unknown tool 'delete_agent'" in sub["call_2"]["error"]   # not given to sub
    assert sub["call_4"]["output"]["output"] == "leaf done"
    assert of(events, "agent.completed", "lead/sub/leaf")[0].data["output"] == "leaf done"
    # the leaf's cost is in sub's command, which is lead's agent
    assert _results(events, "lead")["call_4"]["output"]["cost_usd"] == pytest.approx(0.01)


async def test_a_team_control_run_with_a_restarted_stdio_server_replays_the_same(store, tmp_path):
    from agentform.engine.api import Engine

    from .helpers import apply

    script = {"agents": {
        "lead": [
            {"toolCalls": [_call("create_agent", name="alpha", instructions="x", tools=["add", "crash"])]},
            {"toolCalls": [_call("command_agent", name="alpha", task="crash it, then add")]},
            {"toolCalls": [_call("check_agent_status", handle="alpha#1", wait=30)]},
            {"content": "done"}],
        "alpha": [{"toolCalls": [_call("crash")]}, {"toolCalls": [_call("add", a=1, b=2)]}, {"content": "3"}]}}
    root = project(tmp_path / "m", script, [
        _calc(), agent("lead", tools=[{"builtin": "team-control"}, {"toolServer": "calc"}])])
    apply(store, root, tmp_path)
    engine = Engine(home=tmp_path, store=store)
    result = await engine.run("agent/lead", input="go")
    assert result.status == "succeeded", result.error
    events = store.read_events(result.id)
    alpha = _results(events, "lead/alpha")
    assert "exited during the call" in alpha["call_1"]["error"] and alpha["call_2"]["output"] == 3
    assert [e.data["server"] for e in of(events, "toolserver.started")].count("default/calc") == 2   # restarted
    report = await engine.replay(result.id)
    assert report.same, report.divergence
