"""A team's docker workspace through the engine: apply provisions the container and seeds it,
the built-in workspace tools act in it (changes recorded, escapes reported to the model as tool
errors), a vanished container is drift that the next run repairs, and the data outlives it."""

from __future__ import annotations

import docker

from agentform.engine.workspaces.backend import WorkspaceConfig
from agentform.engine.workspaces.docker import DockerBackend, resource_name
from tests.containers.podman import BASE_IMAGE
from tests.runtime.helpers import of, run
from tests.runtime.test_cli import af
from tests.workspaces.helpers import call, crew, results

SPEC = {"backend": "docker", "image": BASE_IMAGE, "seed": "seed",
        "limits": {"timeout": "10s", "memory": "128Mi", "pids": 64, "cpus": 1}}


def _name(home) -> str:
    return resource_name(WorkspaceConfig("default", "room", "docker", home))


def test_a_team_works_in_its_container_and_a_vanished_container_is_made_again(store, store_url, docker_env,
                                                                            tmp_path):
    home = tmp_path / "home"
    lead = [
        {"toolCalls": [call("read_file", path="hello.txt"),
                       call("write_file", path="src/note.txt", content="one\n")]},
        {"toolCalls": [call("run_command", command="cat src/note.txt; echo made > made.txt; id -u")]},
        {"toolCalls": [call("read_file", path="/etc/shadow"), call("read_file", path="../other/x"),
                       call("run_command", command="nc -w 2 127.0.0.1 5432 </dev/null")]},
        {"content": "first done"},
        {"toolCalls": [call("read_file", path="made.txt"), call("list_files", path=".", recursive=True)]},
        {"content": "second done"},
    ]
    root = crew(tmp_path / "m", lead, workspace=SPEC)
    (root / "seed").mkdir()
    (root / "seed" / "hello.txt").write_text("seeded\n")
    client = docker.DockerClient(base_url=docker_env)
    try:
        first, events = run(store, home, root, "team/crew", thread="t")
        assert first.status == "succeeded", first
        got = results(events)
        assert got["call_1"]["output"] == "seeded\n"
        assert got["call_3"]["output"]["stdout"] == "one\n65534\n"
        refused = {i: got[i].get("error", "") for i in ("call_4", "call_5", "call_6")}
        assert "absolute" in refused["call_4"] and "'..'" in refused["call_5"]
        assert "exited with code 1" in refused["call_6"] and "Connection refused" in refused["call_6"]
        changed = of(events, "workspace.changed", "crew")
        assert [c.data["paths"] for c in changed] == [["src/note.txt"], ["made.txt"]]
        assert "+one" in changed[0].data["changes"][0].get("diff", ""), changed[0].data

        container = client.containers.get(_name(home))
        assert container.attrs["HostConfig"]["NetworkMode"] == "none"
        container.remove(force=True)                                   # gone, outside agentform
        plan = af(home, store_url, "plan", str(root))
        assert plan.returncode == 2, plan.stdout + plan.stderr      # drift
        assert "Missing" in plan.stdout and _name(home) in plan.stdout

        from agentform.engine.runtime import runner

        second = runner.start_run(store, "team/crew", input="again", home=home, thread="t")
        assert second.status == "succeeded", second
        got = results(store.read_events(second.id))
        assert got["call_7"]["output"] == "made\n"                     # the volume kept it
        listed = {e["path"] for e in got["call_8"]["output"]["entries"]}
        assert listed == {"hello.txt", "made.txt", "src", "src/note.txt"}     # the seed was not copied again
        assert client.containers.get(_name(home)).status == "running"
        # the team goes, and its workspace with --prune-data: container and volume deleted
        docs = (root / "all.yaml").read_text().split("---\n")
        (root / "all.yaml").write_text("---\n".join(d for d in docs if "kind: Team" not in d
                                                    and "kind: Workspace" not in d))
        pruned = af(home, store_url, "apply", str(root), "--prune", "--prune-all", "--prune-data")
        assert pruned.returncode == 0, pruned.stdout + pruned.stderr
        assert f"its volume {_name(home)}" in pruned.stdout
        assert not client.containers.list(all=True, filters={"name": _name(home)})
        assert not client.volumes.list(filters={"name": _name(home)})
    finally:
        DockerBackend().teardown(WorkspaceConfig("default", "room", "docker", home), delete_data=True)
        client.close()
