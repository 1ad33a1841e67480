"""Durable runs over a docker workspace: an engine killed with SIGKILL mid-command leaves its
exec running in the container (nothing ties an exec to the process that started it); the next
provision (what a resume does first) kills that orphan, the resumed run repeats the command by
its idempotency key, and replay serves every workspace result from the stream."""

from __future__ import annotations

import signal

from agentform.engine.runtime.runner import load_graph
from agentform.engine.workspaces.docker import DockerBackend
from agentform.engine.workspaces.rooms import config_for
from agentform.specs import ResourceKey
from tests.containers.podman import BASE_IMAGE
from tests.runtime.helpers import apply, of
from tests.runtime.test_cli import af, start, wait_for
from tests.workspaces.helpers import call, crew, results, turns

COMMAND = "echo start >> log.txt; while [ ! -f release ]; do sleep 0.05; done; echo end >> log.txt"


def _log(backend, config) -> str:
    try:
        return backend.read_file(config, "log.txt", max_bytes=1000).decode()
    except FileNotFoundError:
        return ""


def _waiting(backend, config) -> bool:
    return "release" in backend.run_command(config, "ps -o args").stdout


def test_sigkill_mid_command_the_orphan_is_ended_then_resume_and_replay(store, store_url, docker_env, tmp_path):
    home = tmp_path / "home"
    root = crew(tmp_path / "m", turns([call("write_file", path="notes.txt", content="v1\n")],
                                      [call("run_command", command=COMMAND)],
                                      [call("read_file", path="log.txt")]),
                workspace={"backend": "docker", "image": BASE_IMAGE, "limits": {"timeout": "60s"}})
    apply(store, root, home)
    graph, _ = load_graph(store, ResourceKey("Team", "default", "crew"))
    config = config_for(graph, "default/room", home)
    backend = DockerBackend()
    try:
        proc = start(home, store_url, "run", "team/crew", "--ci")
        try:
            wait_for(lambda: _log(backend, config) == "start\n")
            run = store.list_runs()[0]
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert _waiting(backend, config)                 # the exec outlived its engine
        backend.provision(config)                        # what the resume does first
        assert not _waiting(backend, config)
        backend.write_file(config, "release", b"")

        resumed = af(home, store_url, "resume", run.id)
        assert resumed.returncode == 0, resumed.stderr
        events = store.read_events(run.id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        writes = [e for e in of(events, "tool.call", "crew") if e.data["name"] == "write_file"]
        assert len(writes) == 1                          # served from the stream, not written again
        commands = [e for e in of(events, "tool.call", "crew") if e.data["name"] == "run_command"]
        assert [c.data.get("retried", False) for c in commands] == [False, True]
        assert results(events)["call_3"]["output"] == "start\nstart\nend\n"   # the orphan never wrote "end"
        assert store.get_run(run.id).status == "succeeded"

        backend.run_command(config, "rm notes.txt")
        replayed = af(home, store_url, "replay", run.id)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert backend.run_command(config, "ls").stdout.split() == ["log.txt", "release"]   # replay wrote nothing
    finally:
        backend.teardown(config, delete_data=True)
