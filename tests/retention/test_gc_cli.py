"""``agentform gc`` in a subprocess: the ``retention`` setting of <home>/config.yaml, --dry-run,
-o json, the table, and bad input as located errors (exit 1, no traceback); both stores."""

from __future__ import annotations

import json
import subprocess

from agentform import Engine

from .helpers import CLI, age, present, project


def _gc(home, store_url, *args):
    return subprocess.run([*CLI, "--home", str(home), "--store", store_url, "gc", *args],
                          capture_output=True, text=True, timeout=120)


async def test_retention_setting_dry_run_json_and_table(tmp_path, store_url):
    home = tmp_path / "home"
    with Engine(home=home, store=store_url) as engine:
        engine.apply(project(tmp_path / "m"))
        fifteen = (await engine.run("agent/ok", input="x", thread="chat-1")).id
        five = (await engine.run("agent/ok", input="y")).id
        age(engine.store, fifteen, days=15)
        age(engine.store, five, days=5)
    (home / "config.yaml").write_text("templates: {maxCpu: 2s}\nretention: 10d\n")

    dry = _gc(home, store_url, "--dry-run", "-o", "json")
    assert dry.returncode == 0, dry.stderr
    data = json.loads(dry.stdout)
    assert data["olderThan"] == "10d" and data["dryRun"] is True and data["threads"] == ["chat-1"]
    assert [(r["id"], r["status"], r["thread"]) for r in data["runs"]] == [(fifteen, "succeeded", "chat-1")]
    assert data["events"] == data["runs"][0]["events"] > 0

    listed = _gc(home, store_url, "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert f"  {fifteen}  succeeded" in listed.stdout and "thread chat-1" in listed.stdout
    assert "would delete 1 run(s)" in listed.stdout and five not in listed.stdout

    done = _gc(home, store_url)
    assert done.returncode == 0, done.stderr
    assert f"deleted 1 run(s), {data['events']} event(s), 1 whole thread(s)" in done.stdout
    with Engine(home=home, store=store_url) as engine:
        assert set(present(engine.store, [fifteen, five])) == {five}

    overridden = _gc(home, store_url, "--older-than", "4d", "-o", "json")   # the option beats the setting
    assert [r["id"] for r in json.loads(overridden.stdout)["runs"]] == [five]


def test_bad_ages_exit_1_with_where_and_no_traceback(tmp_path, store_url):
    home = tmp_path / "home"
    home.mkdir()
    bad = _gc(home, store_url, "--older-than", "yesterday")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "error: --older-than: 'yesterday' is not an age; write one such as 30d, 12h or 7d12h"
    (home / "config.yaml").write_text("retention: 0h\n")
    zero = _gc(home, store_url, "--dry-run")
    assert zero.returncode == 1 and "Traceback" not in zero.stderr
    assert zero.stderr.strip() == f"error: {home / 'config.yaml'}: retention: '0h' must be more than 0"
    wrong = _gc(home, store_url, "-o", "table")
    assert wrong.returncode == 1 and "-o takes json or yaml" in wrong.stderr
