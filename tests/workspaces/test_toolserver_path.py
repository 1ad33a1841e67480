"""``{{ workspace.path }}`` in a ToolServer's command: the real ``mcp-server-git`` works on the
team's files, a repository a sandboxed command made (ToolServers run as the engine's user, on
files the sandbox uid owns: git's safe.directory is set through the server's declared env).
"""

from __future__ import annotations

import sys

from tests.runtime.helpers import agent, manifest, of, project, run, team

from .helpers import call, results, room_dir, turns

COMMIT = ("git init -q -b main && git add -A && "
          "git -c user.email=crew@example.invalid -c user.name=crew commit -qm 'first from the sandbox'")


def test_mcp_server_git_works_on_the_workspace(store, tmp_path):
    home = tmp_path / "home"
    room = str(room_dir(home))
    git = manifest("ToolServer", "git", {
        "transport": "stdio", "command": [sys.executable, "-m", "mcp_server_git", "--repository", "{{ workspace.path }}"],
        "env": {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"},
        "tools": {"allow": ["git_status", "git_log"]}})
    # the repository exists before the server starts: it starts with the first agent that uses it
    lead = turns([call("write_file", path="plan.md", content="# plan\n")], [call("run_command", command=COMMIT)],
                 [call("write_file", path="plan.md", content="# plan\n\nstep one\n")],
                 [call("ask_helper", task="what changed?")])
    helper = turns([call("git_status", repo_path=room), call("git_log", repo_path=room)], final="one change")
    root = project(tmp_path / "m", {"agents": {"lead": lead, "helper": helper}}, [
        manifest("Workspace", "room", {}), git,
        agent("lead", tools=[{"builtin": "workspace"}]), agent("helper", tools=[{"toolServer": "git"}]),
        team("crew", "lead", [{"agent": "helper"}], workspace="room")])
    result, events = run(store, home, root, "team/crew")
    assert result.status == "succeeded", result.error
    assert "error" not in results(events)["call_2"]
    got = results(events, "crew/helper")
    status, log = got["call_1"], got["call_2"]
    assert "error" not in status and "modified:   plan.md" in str(status["output"]), status
    assert "first from the sandbox" in str(log["output"]), log
    started = of(events, "toolserver.ready")
    assert any(e.data["server"] == "default/git" for e in started)
