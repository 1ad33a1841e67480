"""Shared pieces of the workspace tests: a scripted team with a workspace, tool calls, results."""

from __future__ import annotations

from pathlib import Path

from tests.runtime.helpers import agent, manifest, of, project, team


def call(tool: str, **arguments) -> dict:
    return {"name": tool, "arguments": arguments}


def turns(*calls_per_turn, final: str = "done") -> list[dict]:
    """Scripted turns: one per list of tool calls, then the final answer."""
    return [*({"toolCalls": list(c)} for c in calls_per_turn), {"content": final}]


def crew(root: Path, lead_turns: list[dict], *, workspace: dict | None = None, name: str = "crew",
         room: str = "room", extra: list[str] | None = None, script_extra: dict | None = None) -> Path:
    """A team ``name`` whose manager ``lead`` has the workspace tools, over Workspace ``room``."""
    spec = {"limits": {"timeout": "20s", "memory": "256Mi", "pids": 32}} if workspace is None else workspace
    script = {"agents": {"lead": lead_turns, "helper": [{"content": "ok"}], **(script_extra or {})}}
    return project(root, script, [
        manifest("Workspace", room, spec),
        agent("lead", tools=[{"builtin": "workspace"}]), agent("helper"),
        team(name, "lead", [{"agent": "helper"}], workspace=room), *(extra or [])])


def results(events, path: str = "crew") -> dict[str, dict]:
    """tool.result data at ``path`` by call id."""
    return {e.data["id"]: e.data for e in of(events, "tool.result", path)}


def room_dir(home: Path, name: str = "room", namespace: str = "default") -> Path:
    return home / "workspaces" / namespace / name
