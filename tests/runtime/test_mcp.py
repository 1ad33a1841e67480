"""MCP tool servers in a run: real stdio servers, errors back to the model, filters, timeouts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import agent, manifest, of, project, run

from agentform.engine.store import open_store

HERE = Path(__file__).parent


def _calc(**spec):
    return manifest("ToolServer", "calc", {"transport": "stdio", "command": [sys.executable, str(HERE / "mcp_calc.py")],
                                           **spec})


def test_tools_run_and_their_errors_return_to_the_model(tmp_path):
    db = tmp_path / "state.db"
    store = open_store(f"sqlite:///{db}")
    calls = [{"name": "add", "arguments": {"a": 2, "b": 3}},
             {"name": "boom", "arguments": {"text": "x"}},
             {"name": "add", "arguments": {"a": "two", "b": 3}},
             {"name": "nope", "arguments": {}}]
    script = {"agents": {"solo": [{"toolCalls": calls},
                                  {"toolCalls": [{"name": "last_stored", "arguments": {}}]},
                                  {"content": "done"}]}}
    root = project(tmp_path / "m", script, [_calc(env={"CALC_DB": str(db)}),
                                            agent("solo", tools=[{"toolServer": "calc"}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    results = {e.data["id"]: e.data for e in of(events, "tool.result", "solo")}  # in completion order
    assert results["call_1"]["output"] == 5
    assert "boom" in results["call_2"]["error"]
    assert "bad arguments for add at a" in results["call_3"]["error"]
    assert "unknown tool 'nope'" in results["call_4"]["error"] and "last_stored" in results["call_4"]["error"]
    # the tool.call was durable before the tool ran: the server saw it in the store
    assert results["call_5"]["output"].startswith("tool.call ") and '"last_stored"' in results["call_5"]["output"]
    assert (tmp_path / "logs" / "toolservers" / "default-calc.log").exists()
    store.close()


def test_filters_and_timeouts(store, tmp_path):
    script = {"agents": {"solo": [{"toolCalls": [{"name": "boom", "arguments": {"text": "x"}},
                                                 {"name": "slow", "arguments": {"seconds": 5}}]},
                                  {"content": "done"}]}}
    root = project(tmp_path / "m", script, [_calc(tools={"deny": ["boom"]}, timeout="300ms"),
                                            agent("solo", tools=[{"toolServer": "calc", "allow": ["slow", "add"]}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    errors = {e.data["id"]: e.data["error"] for e in of(events, "tool.result")}
    assert "unknown tool 'boom'" in errors["call_1"] and "available tools: add, slow" in errors["call_1"]
    assert "slow timed out after 0.3s" in errors["call_2"]


def test_a_server_that_does_not_start_fails_the_run(store, tmp_path):
    script = {"agents": {"solo": [{"content": "never"}]}}
    broken = manifest("ToolServer", "calc", {"transport": "stdio", "command": [sys.executable, "-c", "raise SystemExit(3)"],
                                             "startup": "lazy"})
    root = project(tmp_path / "m", script, [broken, agent("solo", tools=[{"toolServer": "calc"}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "failed" and "tool server default/calc did not start" in result.error


def test_builtin_tools_are_refused_up_front(store, tmp_path):
    from helpers import apply

    from agentform.engine.errors import RunError
    from agentform.engine.runtime import runner

    root = project(tmp_path / "m", {"agents": {"solo": [{"content": "x"}]}}, [
        manifest("Workspace", "room", {"backend": "local", "sandbox": "none"}),
        agent("solo", tools=[{"builtin": "workspace"}])])
    apply(store, root, tmp_path)
    try:
        runner.start_run(store, "agent/solo", input="x", home=tmp_path)
    except RunError as exc:
        assert "builtin: workspace tools" in str(exc) and "not available yet" in str(exc)
    else:
        raise AssertionError("a run with built-in tools started")
    assert store.list_runs() == []


def test_a_scripted_run_imports_neither_mcp_nor_litellm(tmp_path):
    root = project(tmp_path / "m", {"agents": {"solo": [{"content": "hi"}]}}, [agent("solo")])
    code = f"""
import sys, json
from agentform.api.cli import main
sys.argv = ["agentform", "--home", {str(tmp_path)!r}, "apply", {str(root)!r}]
try:
    main()
except SystemExit:
    pass
sys.argv = ["agentform", "--home", {str(tmp_path)!r}, "run", "agent/solo", "--ci"]
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = [m for m in ("mcp", "litellm", "qdrant_client", "docker", "fastapi") if m in sys.modules]
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, done.stderr
