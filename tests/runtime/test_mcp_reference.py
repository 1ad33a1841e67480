"""Runs against the published reference MCP servers, over stdio, through the whole engine path:
``mcp-server-time`` and ``mcp-server-git`` from PyPI (the test extra) and
``@modelcontextprotocol/server-filesystem`` from npm (installed by ``make test`` into
``.npm-tools``, never fetched here). Allow/deny, a timeout, and bad arguments that the tool
error hands back to the model, which the scripted model corrects on its next turn."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT, agent, manifest, of, project, run

FILESYSTEM_SERVER = ROOT / ".npm-tools" / "node_modules" / ".bin" / "mcp-server-filesystem"


def _results(events, path="solo"):
    """Tool results in call order (the calls of one turn run concurrently and finish in any order)."""
    return [e.data for e in sorted(of(events, "tool.result", path), key=lambda e: int(e.data["id"].split("_")[1]))]


def _calls(events, path="solo"):
    return [e.data for e in of(events, "tool.call", path)]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with two commits, for mcp-server-git."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.invalid",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.invalid"}

    def git(*args):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    (repo / "notes.txt").write_text("first line\n")
    git("add", "notes.txt")
    git("commit", "-q", "-m", "add the notes")
    (repo / "notes.txt").write_text("first line\nsecond line\n")
    git("commit", "-q", "-am", "a second line of notes")
    (repo / "notes.txt").write_text("first line\nsecond line\nuncommitted\n")
    return repo


def test_time_server_bad_arguments_go_back_and_the_next_turn_corrects_them(store, tmp_path):
    time = manifest("ToolServer", "time", {"command": [sys.executable, "-m", "mcp_server_time",
                                                       "--local-timezone", "Etc/UTC"],
                                           "tools": {"allow": ["convert_time"]}})
    convert = {"source_timezone": "Etc/UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
    script = {"agents": {"solo": [
        # one call the engine refuses by the tool's schema, one the server itself refuses
        {"toolCalls": [{"name": "convert_time", "arguments": {"source_timezone": "Etc/UTC", "time": "12:00"}},
                       {"name": "convert_time", "arguments": {**convert, "target_timezone": "Mars/Olympus"}}]},
        {"toolCalls": [{"name": "convert_time", "arguments": convert}]},
        {"content": "In Tokyo it is 21:00."}]}}
    root = project(tmp_path / "m", script, [time, agent("solo", tools=[{"toolServer": "time"}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded" and result.output == "In Tokyo it is 21:00.", result.error
    missing, unknown, fixed = _results(events)
    assert "bad arguments for convert_time" in missing["error"] and "target_timezone" in missing["error"]
    assert "Mars/Olympus" in unknown["error"]
    # the errors were answered before the model's next turn, which sent corrected arguments
    types = [(e.type, e.data.get("id")) for e in events if e.path == "solo"]
    second_turn = [i for i, (t, _) in enumerate(types) if t == "message.completed"][1]
    assert types.index(("tool.result", "call_2")) < second_turn < types.index(("tool.result", "call_3"))
    assert fixed["output"]["target"]["datetime"].endswith("T21:00:00+09:00"), fixed
    assert fixed["output"]["source"]["timezone"] == "Etc/UTC"
    assert of(events, "toolserver.ready")[0].data["tools"] == ["convert_time"]  # the server's allow list


def test_git_server_on_a_fixture_repo_with_allow_and_deny(store, tmp_path, repo):
    git = manifest("ToolServer", "git", {"command": [sys.executable, "-m", "mcp_server_git", "--repository", str(repo)],
                                         "tools": {"deny": ["git_reset", "git_checkout"]}})
    script = {"agents": {"solo": [
        {"toolCalls": [{"name": "git_log", "arguments": {"repo_path": str(repo), "max_count": 5}},
                       {"name": "git_diff_unstaged", "arguments": {"repo_path": str(repo)}},
                       {"name": "git_push", "arguments": {"repo_path": str(repo)}},
                       {"name": "git_show", "arguments": {"repo_path": str(repo)}}]},
        {"toolCalls": [{"name": "git_show", "arguments": {"repo_path": str(repo), "revision": "HEAD"}}]},
        {"content": "done"}]}}
    root = project(tmp_path / "m", script, [
        git, agent("solo", tools=[{"toolServer": "git", "deny": ["git_commit", "git_add", "git_create_branch"]}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    log, diff, push, show_bad, show = _results(events)
    assert "a second line of notes" in log["output"] and "add the notes" in log["output"]
    assert "+uncommitted" in diff["output"]
    # what the model was offered: every tool of the server but those both deny lists remove
    assert "unknown tool 'git_push'" in push["error"]
    offered = push["error"].split("available tools: ")[1].split(", ")
    assert {"git_log", "git_show", "git_status", "git_diff_unstaged", "git_branch"} <= set(offered)
    assert not {"git_reset", "git_checkout", "git_commit", "git_add", "git_create_branch"} & set(offered)
    assert "bad arguments for git_show" in show_bad["error"] and "revision" in show_bad["error"]
    assert "a second line of notes" in show["output"] and "+second line" in show["output"]
    head = subprocess.run(["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True, check=True)
    assert head.stdout.splitlines() == ["a second line of notes", "add the notes"]  # nothing was committed
    ready = next(e.data for e in of(events, "toolserver.ready") if e.data["server"] == "default/git")
    assert "git_log" in ready["tools"] and "git_reset" not in ready["tools"]


def _filesystem_server() -> str:
    if not FILESYSTEM_SERVER.exists():
        message = (f"{FILESYSTEM_SERVER} is missing: `make npm-tools` (run by `make test`) installs "
                   "@modelcontextprotocol/server-filesystem")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(FILESYSTEM_SERVER)


def test_filesystem_server_from_npm_confined_to_its_folder(store, tmp_path):
    command = _filesystem_server()
    shared = tmp_path / "shared"
    shared.mkdir()
    (tmp_path / "private.txt").write_text("not yours")
    fs = manifest("ToolServer", "fs", {"command": [command, str(shared)]})
    script = {"agents": {"solo": [
        {"toolCalls": [{"name": "write_file", "arguments": {"path": str(shared / "hello.txt"), "content": "hi there"}}]},
        {"toolCalls": [{"name": "read_text_file", "arguments": {"path": str(shared / "hello.txt")}},
                       {"name": "read_text_file", "arguments": {"path": str(tmp_path / "private.txt")}}]},
        {"content": "done"}]}}
    root = project(tmp_path / "m", script, [fs, agent("solo", tools=[{"toolServer": "fs",
                                                                      "allow": ["write_file", "read_text_file"]}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded", result.error
    written, read, outside = _results(events)
    assert "error" not in written and (shared / "hello.txt").read_text() == "hi there"
    assert read["output"] == {"content": "hi there"}
    assert "Access denied" in outside["error"] or "outside allowed directories" in outside["error"], outside
    assert "not yours" not in str(outside)


def test_filesystem_server_call_that_outlasts_the_timeout_is_a_tool_error(store, tmp_path):
    """A search over /usr takes the server far longer than 100 ms: the model gets the timeout
    as the call's result, and the run goes on."""
    command = _filesystem_server()
    fs = manifest("ToolServer", "fs", {"command": [command, "/usr"], "timeout": "100ms"})
    script = {"agents": {"solo": [
        {"toolCalls": [{"name": "search_files", "arguments": {"path": "/usr", "pattern": "**/*.nothing-matches"}}]},
        {"content": "gave up"}]}}
    root = project(tmp_path / "m", script, [fs, agent("solo", tools=[{"toolServer": "fs",
                                                                      "allow": ["search_files"]}])])
    result, events = run(store, tmp_path, root, "agent/solo")
    assert result.status == "succeeded" and result.output == "gave up", result.error
    (timed_out,) = _results(events)
    assert timed_out["error"] == "search_files timed out after 0.1s"
    assert [c["name"] for c in _calls(events)] == ["search_files"]
