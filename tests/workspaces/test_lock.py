"""Two runs of one team never share its workspace at once: the second waits and names the holder;
``--no-wait`` fails at once and creates no run.

Each run is its own ``agentform`` process. The first holds the workspace in a command that
waits for a file the test creates (a real condition, never a sleep).
"""

from __future__ import annotations

import asyncio

import pytest

from agentform.engine.api import Engine
from agentform.engine.errors import WorkspaceBusy
from tests.runtime.helpers import of
from tests.runtime.test_cli import af, start, wait_for

from .helpers import call, crew, room_dir, turns

HOLD = "while [ ! -f release ]; do sleep 0.05; done; echo $RUN_MARK >> order.txt"


def _events(store, run_id):
    return store.read_events(run_id)


def test_a_second_run_waits_for_the_workspace_naming_the_holder_and_no_wait_fails(store, store_url, tmp_path):
    home = tmp_path / "home"
    root = crew(tmp_path / "m", turns([call("run_command", command=HOLD.replace("$RUN_MARK", "run"))]),
                workspace={"limits": {"timeout": "60s"}})
    assert af(home, store_url, "apply", str(root)).returncode == 0
    first = start(home, store_url, "run", "team/crew", "-i", "one", "--ci")
    try:
        holder = wait_for(lambda: next((r for r in store.list_runs() if any(
            e.type == "tool.call" for e in _events(store, r.id))), None))

        # --no-wait: refused at once, naming the holder, and no run is created
        refused = af(home, store_url, "run", "team/crew", "-i", "two", "--no-wait", "--ci")
        assert refused.returncode == 1
        assert f"workspace default/room is in use by run {holder.id}" in refused.stderr, refused.stderr
        assert len(store.list_runs()) == 1
        engine = Engine(home=home, store=store_url)
        try:
            with pytest.raises(WorkspaceBusy) as busy:
                asyncio.run(engine.run("team/crew", "three", wait_workspace=False))
        finally:
            engine.close()
        assert busy.value.holder.startswith(f"run {holder.id} (")

        # without it: the run starts, says whom it waits for, and does nothing until then
        second = start(home, store_url, "run", "team/crew", "-i", "two", "--ci")
        try:
            waiting = wait_for(lambda: next((r for r in store.list_runs() if r.id != holder.id and of(
                _events(store, r.id), "workspace.waiting")), None))
            events = _events(store, waiting.id)
            data = of(events, "workspace.waiting")[0].data
            assert data["workspace"] == "default/room" and data["holder"].startswith(f"run {holder.id} (")
            assert not of(events, "agent.started")
            assert first.poll() is None   # the holder is still in its command

            (room_dir(home) / "release").write_text("")
            out1, err1 = first.communicate(timeout=60)
            out2, err2 = second.communicate(timeout=60)
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        assert first.returncode == 0, err1
        assert second.returncode == 0, err2
        assert "workspace.waiting" in err2 and f"in use by run {holder.id}" in err2
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert store.get_run(holder.id).status == "succeeded"
    assert store.get_run(waiting.id).status == "succeeded"
    # the waiting run acted only after the holder had finished: its agent started after the release
    assert (room_dir(home) / "order.txt").read_text() == "run\nrun\n"
    started = of(_events(store, waiting.id), "agent.started")[0]
    assert started.seq > of(_events(store, waiting.id), "workspace.waiting")[0].seq
