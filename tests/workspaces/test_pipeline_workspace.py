"""A pipeline's own workspace: its stages' agents share it, and ``{{ workspace.path }}`` renders it."""

from __future__ import annotations

from tests.runtime.helpers import agent, manifest, of, project, run

from .helpers import call, room_dir, turns


def test_the_stages_of_a_pipeline_share_its_workspace(store, tmp_path):
    home = tmp_path / "home"
    script = {"agents": {
        "writer": turns([call("write_file", path="draft.md", content="# draft\n")], final="written"),
        "reader": turns([call("read_file", path="draft.md")], final="read it")}}
    pipe = {"workspace": "desk", "stages": [
        {"name": "write", "agent": "writer", "input": "write in {{ workspace.path }}"},
        {"name": "read", "agent": "reader", "needs": ["write"], "input": "read what {{ stages.write.output }}"}]}
    root = project(tmp_path / "m", script, [
        manifest("Workspace", "desk", {"limits": {"timeout": "10s"}}),
        agent("writer", tools=[{"builtin": "workspace"}]), agent("reader", tools=[{"builtin": "workspace"}]),
        manifest("Pipeline", "p", pipe)])
    result, events = run(store, home, root, "pipeline/p", input=None)
    assert result.status == "succeeded", result.error
    started = {e.path: e.data["task"] for e in of(events, "agent.started")}
    assert started["p/write/writer"] == f"write in {room_dir(home, 'desk')}"
    [read] = of(events, "tool.result", "p/read/reader")
    assert read.data["output"] == "# draft\n"
    [changed] = of(events, "workspace.changed", "p/write/writer")
    assert changed.data["workspace"] == "default/desk" and changed.data["paths"] == ["draft.md"]
    assert (room_dir(home, "desk") / "draft.md").read_text() == "# draft\n"
