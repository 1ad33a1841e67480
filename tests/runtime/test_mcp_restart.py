"""A stdio tool server that dies is input, not a crash: the call in flight (or the next one)
is a tool error the model reads, the next call starts the server again (``toolserver.started``
with ``restart``), at most ``toolServers.maxRestarts`` times per run (3 by default)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from .helpers import agent, manifest, of, project, run

HERE = Path(__file__).parent


def _servers(tmp_path: Path) -> list[str]:
    """The victim (writes its pid to a file when it starts) and a killer that SIGKILLs that pid."""
    command = [sys.executable, str(HERE / "mcp_procs.py")]
    pid_file = str(tmp_path / "victim.pid")
    return [manifest("ToolServer", "victim", {"command": command, "env": {"ROLE": "victim", "PID_FILE": pid_file}}),
            manifest("ToolServer", "killer", {"command": command, "env": {"ROLE": "killer", "PID_FILE": pid_file}}),
            agent("solo", tools=[{"toolServer": "victim", "allow": ["whoami"]},
                                 {"toolServer": "killer", "allow": ["kill_victim"]}])]


def _turns(kills: int) -> list[dict]:
    turns = [{"toolCalls": [{"name": "whoami", "arguments": {}}]}]
    for _ in range(kills):
        turns += [{"toolCalls": [{"name": "kill_victim", "arguments": {}}]},
                  {"toolCalls": [{"name": "whoami", "arguments": {}}]}]
    return [*turns, {"content": "done"}]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_a_killed_server_restarts_at_the_next_call_three_times_then_the_error_is_clear(store, tmp_path):
    script = {"agents": {"solo": _turns(4)}}
    root = project(tmp_path / "m", script, _servers(tmp_path))
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded" and result.output == "done", result.error  # the model carried on

    results = [e.data for e in of(events, "tool.result", "solo")]
    whoami = [r for r in results if r["name"] == "whoami"]
    assert all("output" in r for r in results if r is not whoami[-1]), json.dumps(results)
    killed = [r["output"] for r in results if r["name"] == "kill_victim"]
    procs = [json.loads(r["output"]) for r in whoami[:4]]  # a dict result comes as JSON text
    pids = [p["pid"] for p in procs]
    assert len(set(pids)) == 4 and killed == pids  # each call after a kill met a new process
    # started from its argv with no shell in between: the engine (this process) is the parent
    assert all(p["ppid"] == os.getpid() for p in procs)
    last = whoami[4]["error"]
    assert "tool server default/victim is down" in last and "and is not restarted" in last
    assert "restarted 3 times in this run" in last and "toolServers.maxRestarts" in last
    assert not any(_alive(pid) for pid in pids)

    starts = [e.data for e in of(events, "toolserver.started") if e.data["server"] == "default/victim"]
    assert starts == [{"server": "default/victim"}] + [{"server": "default/victim", "restart": n} for n in (1, 2, 3)]
    readies = [e for e in of(events, "toolserver.ready") if e.data["server"] == "default/victim"]
    assert len(readies) == 4
    log = (tmp_path / "logs" / "toolservers" / "default-victim.log").read_text()
    assert [line.split(": ", 1)[1] for line in log.splitlines() if line.startswith(f"--- run {result.id}")] == [
        "starting default/victim", "restart 1 default/victim", "restart 2 default/victim",
        "restart 3 default/victim"]


def test_a_server_dying_in_a_call_is_a_tool_error_and_the_next_call_restarts_it(store, tmp_path):
    """The calc server's ``crash`` kills it mid-call: that call's error says so and where its
    stderr is; the same turn's model gets it, and its next call works."""
    calc = manifest("ToolServer", "calc", {"command": [sys.executable, str(HERE / "mcp_calc.py")]})
    script = {"agents": {"solo": [{"toolCalls": [{"name": "crash", "arguments": {}}]},
                                  {"toolCalls": [{"name": "add", "arguments": {"a": 2, "b": 2}},
                                                 {"name": "add", "arguments": {"a": 3, "b": 3}}]},
                                  {"content": "done"}]}}
    root = project(tmp_path / "m", script, [calc, agent("solo", tools=[{"toolServer": "calc"}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    crash, *adds = of(events, "tool.result", "solo")
    assert "tool server default/calc exited during the call" in crash.data["error"]
    assert "restarted at the next call" in crash.data["error"] and "default-calc.log" in crash.data["error"]
    assert sorted(a.data["output"] for a in adds) == [4, 6]
    # two calls of one turn found it dead: one restart
    assert [e.data.get("restart") for e in of(events, "toolserver.started")] == [None, 1]


@pytest.mark.parametrize("setting", [0, 1])
def test_max_restarts_is_a_setting(store, tmp_path, setting):
    (tmp_path / "config.yaml").write_text(f"toolServers:\n  maxRestarts: {setting}\n")
    script = {"agents": {"solo": _turns(2)}}
    root = project(tmp_path / "m", script, _servers(tmp_path))
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    whoami = [e.data for e in of(events, "tool.result", "solo") if e.data["name"] == "whoami"]
    assert ["output" in r for r in whoami] == [True] * (setting + 1) + [False] * (2 - setting), \
        [(e.type, e.data) for e in events if e.type.startswith(("tool", "toolserver"))]
    assert f"restarted {setting} times in this run" in whoami[setting + 1]["error"]
    assert str(tmp_path / "config.yaml") in whoami[setting + 1]["error"]


def test_a_bad_max_restarts_setting_is_a_usage_error(tmp_path):
    from agentform.engine.errors import UsageError
    from agentform.engine.runtime.mcp_tools import max_restarts

    assert max_restarts(tmp_path) == 3
    (tmp_path / "config.yaml").write_text("toolServers:\n  maxRestarts: -1\n")
    with pytest.raises(UsageError, match="maxRestarts must be a whole number"):
        max_restarts(tmp_path)
    (tmp_path / "config.yaml").write_text("toolServers:\n  restarts: 2\n")
    with pytest.raises(UsageError, match="toolServers.restarts is not a setting"):
        max_restarts(tmp_path)
