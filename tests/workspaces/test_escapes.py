"""The local backend holds: every escape an agent tries is denied or killed, reported to the model
as a tool error, and the host is unchanged.

Real parts only: bubblewrap, the sandbox uid, rlimits, a scripted team calling the built-in
workspace tools through the MCP client, PostgreSQL at 127.0.0.1:5432 as the thing to reach.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.runtime.helpers import manifest, of, run

from .helpers import call, crew, results, room_dir, turns


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): _digest(p) for p in sorted(path.rglob("*")) if p.is_file()}


def test_every_escape_is_a_tool_error_and_the_host_is_unchanged(store, tmp_path):
    home = tmp_path / "home"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "canary.txt").write_text("do not touch\n")
    other = room_dir(home, "other-room")
    other.mkdir(parents=True)
    (other / "secret.txt").write_text("the other team's secret 7f3a\n")
    shadow_before = _digest(Path("/etc/shadow"))
    (home / "private.txt").write_text("the engine's own 4b1d\n")
    attempts = [
        # reading the host's files, the engine's home, another team's workspace
        call("read_file", path="/etc/shadow"),
        call("run_command", command="cat /etc/shadow"),
        call("run_command", command=f"cat {home}/private.txt"),
        call("read_file", path="../../../private.txt"),
        call("read_file", path=str(other / "secret.txt")),
        call("run_command", command=f"cat {other}/secret.txt"),
        # writing outside
        call("write_file", path="../escape.txt", content="out"),
        call("write_file", path="/tmp/escape.txt", content="out"),
        call("run_command", command=f"echo pwned > {outside}/pwned.txt"),
        call("run_command", command="echo pwned > /usr/pwned.txt"),
        # symlinks leaving it (made by a command, followed by a tool)
        call("run_command", command="ln -s /etc etc-link && ln -s ../../.. up && echo made"),
    ]
    follow = [
        call("read_file", path="etc-link/passwd"),
        call("write_file", path="etc-link/evil.conf", content="x"),
        call("list_files", path="up"),
        call("read_file", path="hard.txt"),
        # the network, time, memory, processes
        call("run_command", command="python3 -c \"import socket; socket.create_connection(('127.0.0.1', 5432), 2)\""),
        call("run_command", command="sleep 30"),
        call("run_command", command="python3 -c \"x = bytearray(1024 * 1024 * 1024)\""),
        call("run_command", command="for i in $(seq 100); do sleep 5 & done; wait"),
    ]
    # the limits one per turn: the calls of one turn run concurrently, and they share the pids bound
    root = crew(tmp_path / "m", turns(attempts, follow[:5], *([c] for c in follow[5:])), workspace={
        "limits": {"timeout": "3s", "memory": "256Mi", "pids": 16}})

    # a hard link to a file outside, planted from the host side (the sandbox cannot make one)
    room = room_dir(home)
    room.mkdir(parents=True)
    os.link(outside / "canary.txt", room / "hard.txt")
    result, events = run(store, home, root, "team/crew")
    assert result.status == "succeeded", result.error

    got = results(events)
    ids = [f"call_{i}" for i in range(1, len(attempts) + len(follow) + 1)]
    made = ids.pop(len(attempts) - 1)   # the symlinks are made: that is allowed inside
    assert "made" in got[made]["output"]["stdout"]
    errors = {i: got[i].get("error") for i in ids}
    assert all(errors.values()), {i: got[i] for i in ids if not errors[i]}
    e = dict(zip([c["arguments"].get("path") or c["arguments"].get("command") for c in
                  [*attempts[:-1], *follow]], errors.values(), strict=True))
    assert "refused: it is absolute" in e["/etc/shadow"]
    assert "No such file" in e["cat /etc/shadow"]
    assert "No such file" in e[f"cat {home}/private.txt"]
    assert "'..' leads out of the workspace" in e["../../../private.txt"]
    assert "refused: it is absolute" in e[str(other / "secret.txt")]
    assert "No such file" in e[f"cat {other}/secret.txt"]
    assert "'..' leads out" in e["../escape.txt"]
    assert "Directory nonexistent" in e[f"echo pwned > {outside}/pwned.txt"]
    assert "Read-only file system" in e["echo pwned > /usr/pwned.txt"]
    assert "is a symlink to /etc, outside the workspace" in e["etc-link/passwd"]
    assert "is a symlink to /etc, outside the workspace" in e["etc-link/evil.conf"]
    assert "a symlink in it leads out of the workspace" in e["up"]
    assert "2 hard links" in e["hard.txt"]
    assert "Connection refused" in e[follow[4]["arguments"]["command"]]
    assert "killed after its timeout (3s" in e["sleep 30"]
    assert "MemoryError" in e[follow[6]["arguments"]["command"]]
    assert "Cannot fork" in e[follow[7]["arguments"]["command"]] or "killed after its timeout" in \
        e[follow[7]["arguments"]["command"]]

    # the host is unchanged: nothing written outside, no secret in the stream
    assert _tree(outside) == {"canary.txt": _digest(outside / "canary.txt")}
    assert (outside / "canary.txt").read_text() == "do not touch\n"
    assert not Path("/usr/pwned.txt").exists() and not Path("/tmp/escape.txt").exists()
    assert not (room.parent / "escape.txt").exists()
    assert _digest(Path("/etc/shadow")) == shadow_before
    text = "\n".join(str(ev.data) for ev in events)
    assert "7f3a" not in text and "root:" not in text and "4b1d" not in text
    # what the agent did make inside is recorded as changes
    changed = of(events, "workspace.changed", "crew")
    assert any("etc-link" in c.data["paths"] for c in changed)


def test_a_workspace_without_bubblewrap_fails_to_provision_naming_the_package(store, tmp_path, monkeypatch):
    root = crew(tmp_path / "m", turns([call("run_command", command="true")]))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))   # no bwrap on this PATH
    from agentform.engine.reconcile import apply_path

    applied = apply_path(store, root, home=tmp_path / "home")
    assert applied.exit_code == 1
    [(key, ready)] = [(k, c) for k, c in applied.failed if k.kind == "Workspace"]
    assert ready.reason == "ProvisionFailed"
    assert "install the 'bubblewrap' package" in ready.message and "sandbox: none" in ready.message

    # bubblewrap installed, nothing in the repo changed: plan shows the failure, apply tries again
    monkeypatch.undo()
    from agentform.engine.plan import make_plan
    from agentform.engine.validation import validate_path

    plan = make_plan(validate_path(root), store, applied.plan.app, home=tmp_path / "home")
    assert [(c.action, c.key.kind) for c in plan.changes] == [("drift", "Workspace")]
    again = apply_path(store, root, home=tmp_path / "home")
    assert again.exit_code == 0, again.failed
    record = store.get_resource(key)
    assert next(c for c in record.conditions if c.type == "Ready").status == "True"


def test_sandbox_none_is_a_warning_condition(store, tmp_path):
    from agentform.engine.reconcile import apply_path
    from agentform.specs import ResourceKey

    root = crew(tmp_path / "m", turns([call("run_command", command="echo hi")]),
                workspace={"sandbox": "none", "limits": {"timeout": "5s"}},
                extra=[manifest("Workspace", "unused", {})])
    applied = apply_path(store, root, home=tmp_path / "home")
    assert applied.exit_code == 0, applied.failed
    conditions = store.get_resource(ResourceKey("Workspace", "default", "room")).conditions
    warning = next(c for c in conditions if c.type == "Warning")
    assert (warning.status, warning.reason) == ("True", "SandboxDisabled")
    ready = next(c for c in conditions if c.type == "Ready")
    assert ready.status == "True" and str(room_dir(tmp_path / "home")) in ready.message
