"""The docker backend's room over time: provision is idempotent and seeds once, the data lives
in the volume across container recreation (vanished, or settings changed), status tells drift,
teardown keeps the data unless asked; a missing image or engine is a clear WorkspaceError."""

from __future__ import annotations

import pytest

from agentform.engine.errors import WorkspaceError
from agentform.engine.workspaces.backend import WorkspaceLimits
from agentform.engine.workspaces.docker import resource_name


def _seed(tmp_path):
    seed = tmp_path / "seed"
    (seed / "lib").mkdir(parents=True)
    (seed / "README.md").write_text("# seeded\n")
    (seed / "lib" / "tool.sh").write_text("echo tool\n")
    (seed / "escape").symlink_to("/etc")                         # a seed's link is not copied
    return seed


def test_provision_is_idempotent_and_seeds_only_the_first_time(rooms, tmp_path):
    ws = rooms.make(seed=_seed(tmp_path), provision=False)
    first = rooms.backend.provision(ws)
    assert (first.path, first.created, first.seeded) == ("/workspace", True, 2)
    rooms.backend.write_file(ws, "README.md", b"# changed by an agent\n")
    container_id = rooms.container(ws).id
    again = rooms.backend.provision(ws)
    assert (again.created, again.seeded) == (False, 0)
    assert rooms.container(ws).id == container_id                # reused, not remade
    assert rooms.backend.read_file(ws, "README.md", max_bytes=100) == b"# changed by an agent\n"
    names = {e.path for e in rooms.backend.list_files(ws, ".", recursive=True).entries}
    assert names == {"README.md", "lib", "lib/tool.sh"}
    assert rooms.sh(ws, "sh lib/tool.sh; stat -c %u README.md lib/tool.sh").stdout == "tool\n65534\n65534\n"


def test_data_outlives_the_container_vanished_or_remade_for_new_limits(rooms, tmp_path):
    ws = rooms.make(seed=_seed(tmp_path))
    rooms.backend.write_file(ws, "work/state.txt", b"kept\n")
    rooms.container(ws).remove(force=True)                       # removed outside agentform
    status = rooms.backend.status(ws)
    assert not status.exists and [c.reason for c in status.conditions] == ["ContainerMissing"]
    # the next command finds it gone and makes it again, over the same volume
    assert rooms.sh(ws, "cat work/state.txt").stdout == "kept\n"
    assert rooms.backend.status(ws).exists
    # new limits: the container is remade (its settings differ), the data stays, no second seed
    old_id = rooms.container(ws).id
    changed = rooms.make(seed=ws.seed, provision=False, limits=WorkspaceLimits(memory=96 * 1024 * 1024, timeout=9))
    assert rooms.backend.provision(changed).seeded == 0
    remade = rooms.container(changed)
    assert remade.id != old_id and remade.attrs["HostConfig"]["Memory"] == 96 * 1024 * 1024
    assert rooms.backend.read_file(changed, "work/state.txt", max_bytes=100) == b"kept\n"
    # a stopped container is started again
    remade.stop(timeout=0)
    assert [c.reason for c in rooms.backend.status(changed).conditions] == ["ContainerStopped"]
    assert rooms.sh(changed, "echo up").stdout == "up\n"


def test_teardown_keeps_the_volume_unless_data_deletion_is_asked(rooms):
    ws = rooms.make()
    rooms.backend.write_file(ws, "a.txt", b"a\n")
    note = rooms.backend.teardown(ws, delete_data=False)
    name = resource_name(ws)
    assert f"kept its data in the volume {name}" in note and "--prune-data" in note
    assert not rooms.client.containers.list(all=True, filters={"name": name})
    assert rooms.client.volumes.get(name) is not None
    rooms.backend.provision(ws)
    assert rooms.backend.read_file(ws, "a.txt", max_bytes=10) == b"a\n"
    note = rooms.backend.teardown(ws, delete_data=True)
    assert f"its volume {name}" in note
    assert not rooms.client.volumes.list(filters={"name": name})
    status = rooms.backend.status(ws)
    assert not status.exists and status.conditions[0].reason == "VolumeMissing"


def test_an_image_the_engine_lacks_and_cannot_pull_is_a_clear_error(rooms):
    ws = rooms.make(provision=False, image="docker.io/library/no-such-image-af:1")
    with pytest.raises(WorkspaceError, match="no-such-image-af:1 is not on the Docker engine at unix://"):
        rooms.backend.provision(ws)
    assert not rooms.client.volumes.list(filters={"name": resource_name(ws)})     # nothing left half-made


def test_no_engine_at_docker_host_is_a_clear_error(rooms, tmp_path, monkeypatch):
    ws = rooms.make(provision=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(WorkspaceError, match=r"no Docker engine answers at unix://.*nothing\.sock.*DOCKER_HOST"):
        rooms.backend.provision(ws)


def test_two_engine_homes_get_separate_rooms(rooms, tmp_path):
    from dataclasses import replace

    mine = rooms.make()
    other = replace(mine, home=tmp_path / "another-home")
    rooms.made.append(other)
    rooms.backend.provision(other)
    assert resource_name(mine) != resource_name(other)
    rooms.backend.write_file(mine, "who.txt", b"mine\n")
    with pytest.raises(FileNotFoundError):
        rooms.backend.read_file(other, "who.txt", max_bytes=10)


def test_an_image_without_chown_is_refused_and_leaves_nothing_behind(rooms, podman, tmp_path):
    import shutil

    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2("/usr/bin/busybox", rootfs / "bin" / "busybox")
    for applet in ("sh", "tail"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    image = podman.import_rootfs(rootfs, "localhost/agentform-test-nochown:latest")
    ws = rooms.make(provision=False, image=image)
    with pytest.raises(WorkspaceError, match="cannot give /workspace to uid 65534 .* the image needs chown"):
        rooms.backend.provision(ws)
    assert not rooms.client.volumes.list(filters={"name": resource_name(ws)})
    assert not rooms.client.containers.list(all=True, filters={"label": f"dev.agentform.workspace={ws.id}"})
