"""`get runs`, `get run ID`, `get threads` and `describe run/ID` as kubectl users expect, on both stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .helpers import agent, write_project

CLI = [sys.executable, "-c", "import sys; from agentform.api.cli import main; main(sys.argv[1:])"]


@pytest.fixture
def af(tmp_path, store_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFORM_")} | {"CI": "true"}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, "--home", str(tmp_path / "home"), "--store", store_url, *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return call


@pytest.fixture
def two_runs(af, tmp_path):
    script = {"agents": {"solo": [{"content": "Hello from solo.", "usage": {"input": 7, "output": 3}}]}}
    root = write_project(tmp_path / "m", [agent("solo"), agent("solo", namespace="other")], script=script)
    (root / "other.yaml").write_text(json.dumps({"agents": {"solo": [{"content": "Other hello."}]}}))
    assert af("apply", str(root)).returncode == 0
    first = af("run", "agent/solo", "-i", "hi", "--thread", "conv", "-o", "json")
    second = af("run", "agent/solo", "-n", "other", "-i", "hey", "-o", "json")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    return json.loads(first.stdout)["id"], json.loads(second.stdout)["id"]


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


def test_get_runs_lists_a_namespace_or_all(af, two_runs):
    mine, theirs = two_runs
    listed = af("get", "runs")
    assert listed.returncode == 0, listed.stderr
    rows = _rows(listed.stdout)
    assert rows[0] == ["NAME", "TARGET", "STATUS", "REV", "TOKENS", "COST", "DURATION", "AGE"]
    assert [r[:4] for r in rows[1:]] == [[mine, "agent/solo", "succeeded", "1"]] and rows[1][4] == "10"
    everywhere = _rows(af("get", "runs", "-A").stdout)
    assert everywhere[0][:3] == ["NAME", "NAMESPACE", "TARGET"]
    assert [r[:2] for r in everywhere[1:]] == [[theirs, "other"], [mine, "default"]]
    assert [r[0] for r in _rows(af("get", "run", "-n", "other").stdout)[1:]] == [theirs]
    as_json = json.loads(af("get", "runs", "-A", "-o", "json").stdout)
    assert [r["id"] for r in as_json] == [theirs, mine] and as_json[1]["thread"] == "conv"
    one = json.loads(af("get", "run", mine[:12], "-o", "json").stdout)
    assert (one["id"], one["status"], one["tokens"]) == (mine, "succeeded", 10)
    empty = af("get", "runs", "-n", "nowhere")
    assert empty.returncode == 0 and "No runs found in namespace \"nowhere\"" in empty.stderr
    missing = af("get", "run", "zzzzzz")
    assert missing.returncode == 1 and missing.stderr.startswith("error:") and "Traceback" not in missing.stderr
    labelled = af("get", "runs", "-l", "a=b")
    assert labelled.returncode == 1 and "have no labels" in labelled.stderr
    # `runs` keeps its table and data
    assert json.loads(af("runs", "-o", "json").stdout)[0]["id"] == theirs
    assert _rows(af("runs").stdout)[0] == ["ID", "TARGET", "STATUS", "REV", "TOKENS", "COST", "DURATION"]


def test_get_threads(af, two_runs):
    mine, _ = two_runs
    rows = _rows(af("get", "threads").stdout)
    assert rows[0] == ["NAME", "RUNS", "LAST", "RUN", "TARGET", "STATUS", "AGE"]
    assert rows[1][:5] == ["conv", "1", mine, "agent/default/solo", "succeeded"]
    one = json.loads(af("get", "thread", "conv", "-o", "json").stdout)
    assert one["thread"] == "conv" and one["lastRun"]["id"] == mine
    assert af("get", "thread", "nope").returncode == 1


def test_describe_run_shows_it_in_full_with_its_latest_events(af, two_runs):
    mine, _ = two_runs
    text = af("describe", f"run/{mine[:10]}")
    assert text.returncode == 0, text.stderr
    out = text.stdout
    for line in (f"Name:               {mine}", "Namespace:          default", "Target:             agent/default/solo",
                 "Status:             succeeded", "Thread:             conv", "Tokens:             10 (7 in, 3 out)"):
        assert line in out, out
    assert "Input:\n  hi\n" in out and "Output:\n  Hello from solo.\n" in out
    events = out.split("Events:", 1)[1].splitlines()[1:]
    assert events[0].split()[:3] == ["1", events[0].split()[1], "run.started"]
    assert events[-1].split()[2] == "run.completed"
    data = json.loads(af("describe", "run", mine, "-o", "json").stdout)
    assert data["output"] == "Hello from solo." and data["input"] == "hi"
    assert [e["seq"] for e in data["events"]] == list(range(1, data["last_seq"] + 1))
    missing = af("describe", "run/nope")
    assert missing.returncode == 1 and missing.stderr.startswith("error:")
    # resources still describe as before
    assert "Kind:               Agent" in af("describe", "agent/solo").stdout


def test_python_dash_m_runs_the_cli(tmp_path):
    done = subprocess.run([sys.executable, "-m", "agentform.api.cli", "--help"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and "validate" in done.stdout and "get" in done.stdout
