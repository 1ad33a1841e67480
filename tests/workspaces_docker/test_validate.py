"""Under a docker Workspace, a ToolServer whose command uses ``{{ workspace.path }}`` is refused
at validate (its files are in the container's volume, not on the engine's machine): a located
error at the server's command that names who uses it; the same server under a local Workspace,
or under a nested team with a local Workspace of its own, passes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.runtime.test_cli import CLI

H = "apiVersion: agentform.dev/v1alpha1\n"

GIT = H + ("kind: ToolServer\nmetadata: {name: git}\nspec:\n"
           "  command: [uvx, mcp-server-git, --repository, '{{ workspace.path }}']\n")
TIME = H + "kind: ToolServer\nmetadata: {name: clock}\nspec:\n  command: [uvx, mcp-server-time]\n"
MODEL = H + "kind: Model\nmetadata: {name: m}\nspec: {model: openai/gpt-4o-mini}\n"


def _room(name: str, backend: str) -> str:
    image = "\n  image: python:3.12-slim" if backend == "docker" else ""
    return H + f"kind: Workspace\nmetadata: {{name: {name}}}\nspec:\n  backend: {backend}{image}\n"


def _agent(name: str, *servers: str) -> str:
    tools = ", ".join(f"{{toolServer: {s}}}" for s in servers) or ""
    return H + f"kind: Agent\nmetadata: {{name: {name}}}\nspec:\n  model: m\n  instructions: hi\n  tools: [{tools}]\n"


def _team(name: str, manager: str, members: str, workspace: str | None) -> str:
    room = f"\n  workspace: {workspace}" if workspace else ""
    return H + f"kind: Team\nmetadata: {{name: {name}}}\nspec:\n  manager: {manager}\n  members: {members}{room}\n"


def _validate(tmp_path: Path, docs: list[str]) -> list[str]:
    from agentform.engine.validation import validate_path

    (tmp_path / "all.yaml").write_text("---\n".join(docs))
    return [str(d) for d in validate_path(tmp_path).diagnostics]


def test_a_workspace_path_server_under_a_docker_workspace_is_refused_at_its_command(tmp_path):
    docs = [GIT, TIME, MODEL, _room("box", "docker"), _agent("lead", "clock"), _agent("coder", "git"),
            _team("crew", "lead", "[{agent: coder}]", "box")]
    found = _validate(tmp_path, docs)
    assert len(found) == 1, found
    where, message = found[0].split(": ", 1)
    assert where.endswith("all.yaml:5:48")            # the '{{ workspace.path }}' part of the command
    assert message.startswith("spec.command[3] uses {{ workspace.path }}, but Agent coder uses this server "
                              "inside Team crew, whose Workspace default/box has backend: docker")
    assert "builtin: workspace" in message and "backend: local" in message


def test_the_cli_prints_it_as_file_line_col_and_fails(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "all.yaml").write_text("---\n".join(
        [GIT, MODEL, _room("box", "docker"), _agent("coder", "git"), _agent("lead"),
         _team("crew", "lead", "[{agent: coder}]", "box")]))
    out = subprocess.run([*CLI, "validate", str(tmp_path / "m")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "all.yaml:5:48: spec.command[3] uses {{ workspace.path }}" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_pipelines_tool_stages_and_nested_teams_without_their_own_workspace_count(tmp_path):
    stage = H + ("kind: Pipeline\nmetadata: {name: flow}\nspec:\n  workspace: box\n  stages:\n"
                 "    - {name: status, tool: {toolServer: git, name: git_status}}\n"
                 "    - {name: work, team: inner, needs: [status]}\n")
    docs = [GIT, MODEL, _room("box", "docker"), _agent("lead"), _agent("coder", "git"),
            _team("inner", "lead", "[{agent: coder}]", None), stage]
    found = _validate(tmp_path, docs)
    assert len(found) == 1 and "but stage status of Pipeline flow uses this server inside Pipeline flow" in found[0]


def test_the_same_server_under_a_local_workspace_passes(tmp_path):
    local = [GIT, MODEL, _room("box", "local"), _agent("lead"), _agent("coder", "git"),
             _team("crew", "lead", "[{agent: coder}]", "box")]
    assert _validate(tmp_path, local) == []
    # a nested team with its own local workspace: its workspace is the one in effect there
    nested = [GIT, MODEL, _room("box", "docker"), _room("desk", "local"), _agent("lead"), _agent("boss"),
              _agent("coder", "git"), _team("inner", "lead", "[{agent: coder}]", "desk"),
              _team("outer", "boss", "[{team: inner}]", "box")]
    assert _validate(tmp_path, nested) == []
