"""Durable runs with workspace files: SIGKILL mid-command, resume, replay; repeats by idempotency key.

The run is a real ``agentform`` process killed with SIGKILL while its sandboxed command waits
for a file (a condition the test observes in the workspace, never a sleep). On resume the
workspace lock is free again (the kernel dropped the dead process's flock), recorded tool
results are served from the stream, and the interrupted command runs again with its key.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from types import SimpleNamespace

from agentform.engine.runtime import builtins
from agentform.engine.runtime.runner import load_graph
from agentform.engine.store.base import Event
from agentform.engine.workspaces.backend import backend_for
from agentform.engine.workspaces.rooms import config_for
from agentform.engine.workspaces.tools import ToolUseError, WorkspaceTools
from agentform.specs import ResourceKey
from tests.runtime.helpers import apply, of
from tests.runtime.test_cli import af, start, wait_for

from .helpers import call, crew, results, room_dir, turns

COMMAND = "echo start >> log.txt; while [ ! -f release ]; do sleep 0.05; done; echo end >> log.txt"


def test_sigkill_mid_command_then_resume_and_replay(store, store_url, tmp_path):
    home = tmp_path / "home"
    root = crew(tmp_path / "m", turns([call("write_file", path="notes.txt", content="v1\n")],
                                      [call("run_command", command=COMMAND)],
                                      [call("read_file", path="log.txt")]),
                workspace={"limits": {"timeout": "60s"}})
    apply(store, root, home)
    room = room_dir(home)
    proc = start(home, store_url, "run", "team/crew", "--ci")
    try:
        wait_for(lambda: (room / "log.txt").exists() and (room / "log.txt").read_text() == "start\n")
        run = store.list_runs()[0]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the sandbox dies with the engine (bwrap --die-with-parent, its PID namespace), a moment later
    wait_for(lambda: not _running(COMMAND))
    (room / "release").write_text("")

    resumed = af(home, store_url, "resume", run.id)
    assert resumed.returncode == 0, resumed.stderr
    events = store.read_events(run.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    ends = [(e.type, e.data.get("reason")) for e in events if e.type in ("run.failed", "run.resumed", "run.completed")]
    assert ends == [("run.failed", "owner died"), ("run.resumed", None), ("run.completed", None)]
    # write_file finished before the kill: served from the stream, not executed again
    writes = [e for e in of(events, "tool.call", "crew") if e.data["name"] == "write_file"]
    assert len(writes) == 1 and len(of(events, "workspace.changed", "crew")) == 2   # write, then the command's
    assert (room / "notes.txt").read_text() == "v1\n"
    # the command was cut by the kill (its sandbox died with the engine) and ran again, marked retried
    commands = [e for e in of(events, "tool.call", "crew") if e.data["name"] == "run_command"]
    assert [c.data.get("retried", False) for c in commands] == [False, True]
    assert commands[0].data["idempotencyKey"] == commands[1].data["idempotencyKey"]
    got = results(events)
    assert got["call_3"]["output"] == "start\nstart\nend\n"
    assert store.get_run(run.id).status == "succeeded"

    # replay serves every workspace result from the stream: it touches no file and agrees
    (room / "notes.txt").unlink()
    replayed = af(home, store_url, "replay", run.id)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert not (room / "notes.txt").exists()
    assert (room / "log.txt").read_text() == "start\nstart\nend\n"


def _running(command: str) -> bool:
    """Whether any process runs ``command`` (its argv as read from /proc)."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and command.encode() in (entry / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def _tools(store, home):
    graph, _ = load_graph(store, ResourceKey("Team", "default", "crew"))
    config = config_for(graph, "default/room", home)
    backend_for(config.backend).provision(config)
    emitted: list[tuple] = []
    ctx = SimpleNamespace(graph=graph, home=home, history=[], emit=lambda *e: emitted.append(e))
    caller = builtins.Caller(graph.agents["default/lead"], "crew", workspace="default/room")
    return WorkspaceTools(ctx), ctx, caller, emitted


def test_write_file_and_run_command_repeated_with_their_key_act_once(store, tmp_path):
    home = tmp_path / "home"
    apply(store, crew(tmp_path / "m", turns()), home)
    tools, ctx, caller, emitted = _tools(store, home)
    room = room_dir(home)

    async def scenario():
        first = await tools.write_file(caller, "a.txt", "first\n", "r1:crew:call_1")
        await tools.write_file(caller, "a.txt", "later\n", "r1:crew:call_2")
        # call_1 again (a resume after a kill between the write and its recorded result)
        ctx.history = [Event(run_id="r1", seq=5, ts=0.0, type="workspace.changed", path="crew",
                             data={"callId": "call_1"})]
        again = await tools.write_file(caller, "a.txt", "first\n", "r1:crew:call_1")
        ran = await tools.run_command(caller, "echo once >> log.txt", None, "r1:crew:call_3")
        ctx.history.append(Event(run_id="r1", seq=9, ts=0.0, type="workspace.changed", path="crew",
                                 data={"callId": "call_3"}))
        ran_again = await tools.run_command(caller, "echo once >> log.txt", None, "r1:crew:call_3")
        return first, again, ran, ran_again

    first, again, ran, ran_again = asyncio.run(scenario())
    assert again == first == {"path": "a.txt", "bytes": 6, "created": True}
    assert (room / "a.txt").read_text() == "later\n"            # the repeat did not write
    assert ran_again == ran and (room / "log.txt").read_text() == "once\n"
    assert [e[2]["callId"] for e in emitted] == ["call_1", "call_2", "call_3"]   # nothing emitted twice

    # a repeat whose change event the stream lost emits it again, from the journal
    ctx.history = []
    asyncio.run(tools.write_file(caller, "a.txt", "first\n", "r1:crew:call_1"))
    assert emitted[-1][1:] == ("crew", emitted[0][2]) and emitted[-1][0] == "workspace.changed"

    # a failed command repeats its error, without running again
    async def failing():
        for _ in range(2):
            try:
                await tools.run_command(caller, "echo x >> fails.txt; exit 3", None, "r1:crew:call_4")
            except ToolUseError as exc:
                yield str(exc)

    async def collect():
        return [m async for m in failing()]

    messages = asyncio.run(collect())
    assert len(messages) == 2 and messages[0] == messages[1] and "exited with code 3" in messages[0]
    assert (room / "fails.txt").read_text() == "x\n"
