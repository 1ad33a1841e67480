"""Tool servers on their unhappy paths: secrets they give away are masked (results, errors,
stderr logs), a server that does not start says why, relative commands work from any current
directory, start and readiness show in the stream and in ``run --ci``, SSE transport."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .helpers import agent, manifest, of, project, run

HERE = Path(__file__).parent
SECRET = "canary-Zq81-sekret-value"
CLI = [sys.executable, "-c", "from agentform.api.cli import main; main()"]


def _echo_server(**spec):
    return manifest("ToolServer", "echo", {"transport": "stdio",
                                           "command": [sys.executable, str(HERE / "mcp_echo.py")],
                                           "env": {"ECHO_SECRET": {"secretRef": "echo-token"}}, **spec})


def _secret_doc():
    return manifest("Secret", "echo-token", {"fromEnv": "ECHO_TOKEN_TEST"})


def test_a_secret_a_tool_gives_away_is_masked_in_results_errors_and_stderr_log(store, tmp_path, monkeypatch):
    monkeypatch.setenv("ECHO_TOKEN_TEST", SECRET)
    calls = [{"name": "plain", "arguments": {}}, {"name": "structured", "arguments": {}},
             {"name": "fail", "arguments": {}}, {"name": "shout", "arguments": {"width": 8192}}]
    script = {"agents": {"solo": [{"toolCalls": calls}, {"content": "done"}]}}
    root = project(tmp_path / "m", script, [_secret_doc(), _echo_server(),
                                            agent("solo", tools=[{"toolServer": "echo"}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    results = {e.data["id"]: e.data for e in of(events, "tool.result", "solo")}
    assert results["call_1"]["output"] == "the token is ***"
    assert results["call_2"]["output"] == {"token": "***", "nested": [{"again": "x***x"}], "***": "as a key"}
    assert "refused token ***" in results["call_3"]["error"]
    assert results["call_4"]["output"] == "shouted"
    assert all(SECRET not in json.dumps(e.data) for e in events)

    log = (tmp_path / "logs" / "toolservers" / "default-echo.log").read_text()
    assert "starting with token ***" in log and "debug: token=***" in log
    assert "after the long line" in log  # the line after a cut one is kept whole
    cut = next(line for line in log.splitlines() if line.startswith("yyyy"))
    assert cut.endswith(" [line cut]") and len(cut.encode()) <= 8192 + len(" [line cut]")
    # the part of the secret before the cut cannot be matched by the redactor: it is dropped too
    assert SECRET not in log and SECRET[: len(SECRET) // 2] not in log


def test_a_secret_spanning_lines_is_masked_in_the_stderr_log(store, tmp_path, monkeypatch):
    """A multi-line value (a PEM key, a JSON credential) is redacted as a whole, not line by line."""
    secret = "first-half-of-it\nsecond-half-of-it"
    monkeypatch.setenv("ECHO_TOKEN_TEST", secret)
    script = {"agents": {"solo": [{"toolCalls": [{"name": "plain", "arguments": {}}]}, {"content": "done"}]}}
    root = project(tmp_path / "m", script, [_secret_doc(), _echo_server(),
                                            agent("solo", tools=[{"toolServer": "echo"}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    assert of(events, "tool.result")[0].data["output"] == "the token is ***"
    log = (tmp_path / "logs" / "toolservers" / "default-echo.log").read_text()
    assert "starting with token ***" in log
    assert "first-half-of-it" not in log and "second-half-of-it" not in log


async def test_tool_results_are_masked_before_the_engine_sees_them(store, tmp_path, monkeypatch):
    """What ``call_tool`` hands back to its caller (a pipeline stage's output, say) is masked
    already: the stream's own redaction is not the only guard."""
    from datetime import UTC, datetime

    from agentform.engine.events import EventWriter
    from agentform.engine.runtime.context import RunContext
    from agentform.engine.runtime.runner import load_graph
    from agentform.engine.store.base import RunRecord
    from agentform.specs import ResourceKey

    from .helpers import apply

    monkeypatch.setenv("ECHO_TOKEN_TEST", SECRET)
    root = project(tmp_path / "m", {"agents": {"solo": [{"content": "x"}]}},
                   [_secret_doc(), _echo_server(), agent("solo", tools=[{"toolServer": "echo"}])])
    apply(store, root, tmp_path)
    graph, revision = load_graph(store, ResourceKey("Agent", "default", "solo"))
    store.create_run(RunRecord(id="r1", target="agent/default/solo", status="running", revision=revision,
                               created_at=0.0))
    stream = EventWriter.for_store(store).open("r1")
    ctx = RunContext(run_id="r1", graph=graph, started_at=datetime.now(UTC), stream=stream, home=tmp_path,
                     store=store)
    try:
        tools = await ctx.tool_servers().tools_for(graph.agents["default/solo"])
        assert tools["whoami"].description == "Says who you are, with token ***"  # what the model reads
        assert await ctx.call_tool("default/echo", "plain", {}, "p/plain") == "the token is ***"
        structured = await ctx.call_tool("default/echo", "structured", {}, "p/structured")
        assert structured == {"token": "***", "nested": [{"again": "x***x"}], "***": "as a key"}
        try:
            await ctx.call_tool("default/echo", "fail", {}, "p/fail")
        except Exception as exc:
            assert "refused token ***" in str(exc) and SECRET not in str(exc)
        else:
            raise AssertionError("fail did not fail")
    finally:
        await ctx.close()
    await stream.durable()


def test_a_server_that_does_not_start_shows_its_stderr_tail_and_log(store, tmp_path, monkeypatch):
    monkeypatch.setenv("ECHO_TOKEN_TEST", SECRET)
    code = ("import os, sys\n"
            "for i in range(30): print(f'loading part {i}', file=sys.stderr)\n"
            "print('fatal: token ' + os.environ['ECHO_SECRET'] + ' rejected by upstream', file=sys.stderr)\n"
            "sys.exit(3)\n")
    broken = manifest("ToolServer", "echo", {"transport": "stdio", "command": [sys.executable, "-c", code],
                                             "env": {"ECHO_SECRET": {"secretRef": "echo-token"}}})
    script = {"agents": {"solo": [{"content": "never"}]}}
    root = project(tmp_path / "m", script, [_secret_doc(), broken, agent("solo", tools=[{"toolServer": "echo"}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    log = tmp_path / "logs" / "toolservers" / "default-echo.log"
    assert result.status == "failed"
    assert "tool server default/echo did not start" in result.error
    assert "fatal: token *** rejected by upstream" in result.error
    assert "loading part 29" in result.error and "loading part 5" not in result.error  # the tail only
    assert f"full stderr log: {log}" in result.error and log.exists()
    assert SECRET not in result.error and SECRET not in log.read_text()
    assert "fatal: token *** rejected by upstream" in log.read_text()
    assert [e.type for e in events if e.type.startswith("toolserver.")] == ["toolserver.started"]


def test_started_and_ready_events_come_in_order(store, tmp_path):
    script = {"agents": {"solo": [{"toolCalls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]},
                                  {"content": "done"}]}}
    calc = manifest("ToolServer", "calc", {"transport": "stdio", "startup": "eager", "tools": {"deny": ["boom"]},
                                           "command": [sys.executable, str(HERE / "mcp_calc.py")]})
    root = project(tmp_path / "m", script, [calc, agent("solo", tools=[{"toolServer": "calc"}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    types = [e.type for e in events]
    started, ready = types.index("toolserver.started"), types.index("toolserver.ready")
    assert started < ready < types.index("agent.started")  # eager: before any agent runs
    assert types.count("toolserver.started") == types.count("toolserver.ready") == 1
    assert events[started].path == events[ready].path == ""
    assert events[started].data == {"server": "default/calc"}
    ready_data = events[ready].data
    assert ready_data["server"] == "default/calc"
    assert ready_data["tools"] == ["add", "slow", "crash", "last_stored"]
    # The definitions the model was shown (replay shows it the same tools).
    assert [d["name"] for d in ready_data["definitions"]] == ready_data["tools"]

    # the live view (a terminal's `run`) shows the server while it starts, then ready
    from rich.console import Console

    from agentform.api.cli.live import LiveView

    def shown(view):
        console = Console(record=True, width=100, color_system=None)
        console.print(view.render())
        return console.export_text()

    view = LiveView("agent/solo")
    for event in events[: started + 1]:
        view.on_event(event)
    assert "tool server default/calc starting" in shown(view)
    for event in events[started + 1:]:
        view.on_event(event)
    assert "tool server default/calc ready, 4 tools" in shown(view)


def test_relative_commands_resolve_against_the_manifest_folder(store, store_url, tmp_path):
    """Run from another directory: ``python tools/calc.py`` and ``bin/calc`` still find their
    files, and ``run --ci`` shows each server starting and ready."""
    root = tmp_path / "repo"
    (root / "tools").mkdir(parents=True)
    shutil.copy(HERE / "mcp_calc.py", root / "tools" / "calc.py")
    (root / "bin").mkdir()
    launcher = root / "bin" / "calc"
    launcher.write_text(f"#!{sys.executable}\n" + (HERE / "mcp_calc.py").read_text())
    launcher.chmod(0o755)
    script = {"agents": {"solo": [{"toolCalls": [{"name": "add", "arguments": {"a": 2, "b": 3}},
                                                 {"name": "slow", "arguments": {"seconds": 0}}]},
                                  {"content": "done"}]}}
    project(root, script, [
        manifest("ToolServer", "by-arg", {"transport": "stdio", "command": [sys.executable, "tools/calc.py"]}),
        manifest("ToolServer", "by-cmd", {"transport": "stdio", "command": ["bin/calc"]}),
        agent("solo", tools=[{"toolServer": "by-arg", "allow": ["add"]},
                             {"toolServer": "by-cmd", "allow": ["slow"]}])])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "CI": "true"}

    def af(*args):
        return subprocess.run([*CLI, "--home", str(tmp_path / "home"), "--store", store_url, *args],
                              capture_output=True, text=True, timeout=120, env=env, cwd=elsewhere)

    applied = af("apply", str(root))
    assert applied.returncode == 0, applied.stderr
    done = af("run", "agent/solo", "--ci")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("toolserver.started -  default/by-arg starting") for line in lines), done.stderr
    assert any(line.startswith("toolserver.ready   -  default/by-cmd ready, 5 tools: add, boom, slow")
               for line in lines), done.stderr
    assert any("add -> 5" in line for line in lines) and any("slow -> woke up" in line for line in lines)


def test_sse_server(store, tmp_path):
    import socket
    import threading
    import time

    import uvicorn

    from .mcp_calc import server as calc

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    web = uvicorn.Server(uvicorn.Config(calc.sse_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not web.started:  # observable state: uvicorn says it is listening
            assert time.monotonic() < deadline, "the MCP SSE server did not start"
            time.sleep(0.02)
        script = {"agents": {"solo": [{"toolCalls": [{"name": "add", "arguments": {"a": 40, "b": 2}}]},
                                      {"content": "done"}]}}
        root = project(tmp_path / "m", script, [
            manifest("ToolServer", "calc", {"transport": "sse", "url": f"http://127.0.0.1:{port}/sse"}),
            agent("solo", tools=[{"toolServer": "calc"}])])
        result, events = run(store, tmp_path, root, "agent/solo")
        assert result.status == "succeeded", result.error
        assert of(events, "tool.result")[0].data["output"] == 42
        assert of(events, "toolserver.ready")[0].data["tools"][:2] == ["add", "boom"]
    finally:
        web.should_exit = True
        thread.join(10)
