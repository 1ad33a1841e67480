"""The Workspace operator through the CLI: apply provisions and reports, a vanished room is drift,
prune keeps the data unless ``--prune-data``.
"""

from __future__ import annotations

from agentform.specs import ResourceKey
from tests.runtime.helpers import agent, manifest, project, team
from tests.runtime.test_cli import af

from .helpers import room_dir

ROOM = ResourceKey("Workspace", "default", "room")


def _repo(root, with_team: bool = True):
    docs = [agent("lead", tools=[{"builtin": "workspace"}]), agent("helper")]
    if with_team:
        docs += [manifest("Workspace", "room", {"seed": "seed", "limits": {"timeout": "5s", "pids": 8}}),
                 team("crew", "lead", [{"agent": "helper"}], workspace="room")]
    repo = project(root, {"agents": {"lead": [{"content": "ok"}]}}, docs)
    (repo / "seed").mkdir(exist_ok=True)
    (repo / "seed" / "README.md").write_text("# the room\n")
    return repo


def _ready(store):
    record = store.get_resource(ROOM)
    return None if record is None else next(c for c in record.conditions if c.type == "Ready")


def test_apply_provisions_reports_drift_and_prune_keeps_or_deletes_the_data(store, store_url, tmp_path):
    home = tmp_path / "home"
    repo = _repo(tmp_path / "m")
    applied = af(home, store_url, "apply", str(repo))
    assert applied.returncode == 0, applied.stderr
    room = room_dir(home)
    ready = _ready(store)
    assert (ready.status, ready.reason) == ("True", "Provisioned")
    assert f"local workspace at {room}" in ready.message and "seeded with 1 files" in ready.message
    assert (room / "README.md").read_text() == "# the room\n"

    # the room vanished: plan shows it as drift, apply makes it again (and seeds the new room)
    for item in room.iterdir():
        item.unlink()
    room.rmdir()
    plan = af(home, store_url, "plan", str(repo))
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "Missing" in plan.stdout and "room" in plan.stdout
    again = af(home, store_url, "apply", str(repo))
    assert again.returncode == 0, again.stderr
    assert (room / "README.md").exists() and _ready(store).status == "True"

    # pruned without --prune-data: the resource goes, the data stays, and apply says where
    (room / "work.txt").write_text("keep me\n")
    repo = _repo(tmp_path / "m", with_team=False)
    pruned = af(home, store_url, "apply", str(repo), "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert f"kept the data of Workspace default/room at {room}" in pruned.stdout
    assert store.get_resource(ROOM) is None
    assert (room / "work.txt").read_text() == "keep me\n"

    # applied again, the kept data is still there (no second seed); --prune-data deletes it
    repo = _repo(tmp_path / "m")
    assert af(home, store_url, "apply", str(repo)).returncode == 0
    assert (room / "work.txt").exists()
    assert af(home, store_url, "apply", str(repo), "--prune-data").returncode == 1   # only with --prune
    repo = _repo(tmp_path / "m", with_team=False)
    deleted = af(home, store_url, "apply", str(repo), "--prune", "--prune-data")
    assert deleted.returncode == 0, deleted.stderr
    assert f"deleted Workspace default/room and its data ({room})" in deleted.stdout
    assert not room.exists()


def test_a_run_refuses_a_local_workspace_that_lives_on_another_host(store, store_url, tmp_path):
    from agentform.engine.store.base import Condition

    home = tmp_path / "home"
    repo = _repo(tmp_path / "m")
    assert af(home, store_url, "apply", str(repo)).returncode == 0
    record = store.get_resource(ROOM)
    host = next(c for c in record.conditions if c.type == "Host")
    assert host.reason == "SingleHost" and host.message
    # as if another machine had applied it: the room is there, not here
    elsewhere = [c if c.type != "Host" else Condition("Host", "True", "SingleHost", "build-box-7") for c in
                 record.conditions]
    store.set_status(ROOM, elsewhere, record.generation)
    room = room_dir(home)
    for item in room.iterdir():
        item.unlink()
    room.rmdir()
    refused = af(home, store_url, "run", "team/crew", "-i", "go", "--ci")
    assert refused.returncode == 1
    assert "Workspace default/room is a local workspace on host build-box-7" in refused.stderr, refused.stderr
    assert not room.exists()    # not made again, empty, here
