"""MCP tool servers in a run: real stdio servers, errors back to the model, filters, timeouts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agentform.engine.store import open_store

from .helpers import agent, manifest, of, project, run

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
    # validate refuses a scripted call of a listed or denied name; "nope" is neither, so it
    # reaches the run, whose answer lists what both deny filters (server, agent) left
    script = {"agents": {"solo": [{"toolCalls": [{"name": "nope", "arguments": {}},
                                                 {"name": "slow", "arguments": {"seconds": 5}}]},
                                  {"content": "done"}]}}
    root = project(tmp_path / "m", script, [_calc(tools={"deny": ["boom"]}, timeout="300ms"),
                                            agent("solo", tools=[{"toolServer": "calc", "deny": ["crash"]}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    errors = {e.data["id"]: e.data["error"] for e in of(events, "tool.result")}
    assert "unknown tool 'nope'" in errors["call_1"] and "available tools: add, slow, last_stored" in errors["call_1"]
    assert "slow timed out after 0.3s" in errors["call_2"]


def test_a_server_that_does_not_start_fails_the_run(store, tmp_path):
    script = {"agents": {"solo": [{"content": "never"}]}}
    broken = manifest("ToolServer", "calc", {"transport": "stdio", "command": [sys.executable, "-c", "raise SystemExit(3)"],
                                             "startup": "lazy"})
    root = project(tmp_path / "m", script, [broken, agent("solo", tools=[{"toolServer": "calc"}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "failed" and "tool server default/calc did not start" in result.error


def test_builtin_tools_are_refused_up_front(store, tmp_path):
    from agentform.engine.errors import RunError
    from agentform.engine.runtime import runner

    from .helpers import apply

    root = project(tmp_path / "m", {"agents": {"solo": [{"content": "x"}]}}, [
        manifest("Workspace", "room", {"backend": "local", "sandbox": "none"}),
        agent("solo", tools=[{"builtin": "workspace"}])])
    apply(store, root, tmp_path)
    try:
        runner.start_run(store, "agent/solo", input="x", home=tmp_path)
    except RunError as exc:
        # an agent alone has no workspace: its workspace is its team's or pipeline's
        assert "agent default/solo uses the workspace tools, but nothing in this run has a workspace" in str(exc)
        assert "through a team or pipeline that declares `workspace:`" in str(exc)
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


async def test_context_call_tool_for_pipeline_tool_stages(store, tmp_path):
    """RunContext.call_tool: what a pipeline's ``tool`` stage uses to call an MCP tool directly."""
    from datetime import UTC, datetime

    from agentform.engine.events import EventWriter
    from agentform.engine.runtime.context import RunContext
    from agentform.engine.runtime.runner import load_graph
    from agentform.engine.store.base import RunRecord
    from agentform.specs import ResourceKey

    from .helpers import apply

    root = project(tmp_path / "m", {"agents": {"solo": [{"content": "x"}]}},
                   [_calc(), agent("solo", tools=[{"toolServer": "calc"}])])
    apply(store, root, tmp_path)
    graph, revision = load_graph(store, ResourceKey("Agent", "default", "solo"))
    store.create_run(RunRecord(id="r1", target="agent/default/solo", status="running", revision=revision,
                               created_at=0.0))
    stream = EventWriter.for_store(store).open("r1")
    ctx = RunContext(run_id="r1", graph=graph, started_at=datetime.now(UTC), stream=stream, home=tmp_path,
                     store=store)
    try:
        assert await ctx.call_tool("default/calc", "add", {"a": 1, "b": 2}, "p/sum") == 3
        try:
            await ctx.call_tool("default/calc", "boom", {"text": "x"}, "p/boom")
        except Exception as exc:
            assert "tool boom of default/calc failed" in str(exc)
        else:
            raise AssertionError("boom did not fail")
    finally:
        await ctx.close()
    await stream.durable()
    events = [(e.type, e.path) for e in store.read_events("r1")]
    # a lazy server starts at its first call: between that call and its result
    assert events == [("tool.call", "p/sum"), ("toolserver.started", ""), ("toolserver.ready", ""),
                      ("tool.result", "p/sum"), ("tool.call", "p/boom"), ("tool.result", "p/boom")]


def test_streamable_http_server_with_a_secret_header(store, tmp_path, monkeypatch):
    import socket
    import threading
    import time

    import uvicorn

    from .mcp_calc import http_app

    token = "tok-very-secret-42"
    monkeypatch.setenv("CALC_TOKEN", token)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(http_app(token), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:  # observable state: uvicorn says it is listening
            assert time.monotonic() < deadline, "the MCP HTTP server did not start"
            time.sleep(0.02)
        script = {"agents": {"solo": [{"toolCalls": [{"name": "add", "arguments": {"a": 40, "b": 2}}]},
                                      {"content": "done"}]}}
        root = project(tmp_path / "m", script, [
            manifest("Secret", "calc-token", {"fromEnv": "CALC_TOKEN"}),
            manifest("ToolServer", "calc", {"transport": "http", "url": f"http://127.0.0.1:{port}/mcp",
                                            "headers": {"Authorization": {"secretRef": "calc-token",
                                                                          "format": "Bearer {}"}}}),
            agent("solo", tools=[{"toolServer": "calc"}])])
        result, events = run(store, tmp_path, root, "agent/solo")
        assert result.status == "succeeded", result.error
        assert of(events, "tool.result")[0].data["output"] == 42
        assert all(token not in json.dumps(e.data) for e in events)
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_crashed_server_is_a_tool_error(store, tmp_path):
    script = {"agents": {"solo": [{"toolCalls": [{"name": "crash", "arguments": {}}]},
                                  {"toolCalls": [{"name": "add", "arguments": {"a": 1, "b": 1}}]},
                                  {"content": "carried on"}]}}
    root = project(tmp_path / "m", script, [_calc(timeout="20s"), agent("solo", tools=[{"toolServer": "calc"}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded" and result.output == "carried on", result.error
    first, second = of(events, "tool.result")
    assert "exited during the call" in first.data["error"]
    assert "it is restarted at the next call" in first.data["error"]
    assert second.data["output"] == 2  # the next call restarted it (tests/runtime/test_mcp_restart.py)
    assert str(tmp_path / "logs" / "toolservers" / "default-calc.log") in first.data["error"]  # where to look
