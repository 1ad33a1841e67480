"""A workspace outlives runs and engine restarts; its seed is copied in once.

Every step is a separate ``agentform`` process (apply, run, apply again, run again), so nothing
carries over in memory: what run 2 reads, run 1 left on disk.
"""

from __future__ import annotations

import json

from tests.runtime.helpers import of
from tests.runtime.test_cli import af

from .helpers import call, crew, results, room_dir


def test_a_file_written_in_run_1_is_read_in_run_2_after_a_restart_and_the_seed_is_copied_once(
        store, store_url, tmp_path):
    home = tmp_path / "home"
    lead = [
        # run 1: change a seeded file, add one, run a script that writes another
        {"toolCalls": [call("read_file", path="notes.txt")]},
        {"toolCalls": [call("write_file", path="notes.txt", content="run one was here\n"),
                       call("write_file", path="tools/count.py",
                            content="import os\nprint(len(os.listdir('.')))\nopen('counted.txt', 'w').write('yes')\n")]},
        {"toolCalls": [call("run_command", command="python3 tools/count.py")]},
        {"content": "run one done"},
        # run 2 (same thread: the script continues): read what run 1 left
        {"toolCalls": [call("read_file", path="notes.txt"), call("read_file", path="counted.txt"),
                       call("list_files", path=".", recursive=True)]},
        {"content": "run two done"},
    ]
    root = crew(tmp_path / "m", lead, workspace={"seed": "seed", "limits": {"timeout": "20s"}})
    (root / "seed").mkdir()
    (root / "seed" / "notes.txt").write_text("from the seed\n")

    applied = af(home, store_url, "apply", str(root))
    assert applied.returncode == 0, applied.stderr
    one = af(home, store_url, "run", "team/crew", "-i", "go", "--thread", "t", "-o", "json")
    assert one.returncode == 0, one.stderr
    run_one = json.loads(one.stdout)["id"]
    r1 = results(store.read_events(run_one))
    assert r1["call_1"]["output"] == "from the seed\n"         # the seed is there at the first run
    assert r1["call_4"]["output"]["exit_code"] == 0

    # a changed spec provisions again, and the seed changed too: it is not copied a second time
    (root / "seed" / "notes.txt").write_text("a newer seed\n")
    (root / "all.yaml").write_text((root / "all.yaml").read_text().replace('"20s"', '"25s"'))
    again = af(home, store_url, "apply", str(root))
    assert again.returncode == 0, again.stderr
    two = af(home, store_url, "run", "team/crew", "-i", "again", "--thread", "t", "-o", "json")
    assert two.returncode == 0, two.stderr
    events = store.read_events(json.loads(two.stdout)["id"])
    asked = {e.data["id"]: (e.data["name"], e.data["arguments"]["path"]) for e in of(events, "tool.call", "crew")}
    r2 = {asked[i]: d for i, d in results(events).items()}
    assert r2[("read_file", "notes.txt")]["output"] == "run one was here\n"
    assert r2[("read_file", "counted.txt")]["output"] == "yes"
    listed = {e["path"] for e in r2[("list_files", ".")]["output"]["entries"]}
    assert {"notes.txt", "counted.txt", "tools", "tools/count.py"} <= listed
    assert (room_dir(home) / "notes.txt").read_text() == "run one was here\n"
    assert not of(events, "workspace.changed")   # run 2 only read
