"""``-p key=value`` given twice for one key: the last value wins (as Terraform's ``-var`` and
Helm's ``--set``), and ``run --help`` says so."""

from __future__ import annotations

import json

from .helpers import agentform, write_project


def test_the_last_of_two_values_for_one_param_wins_and_help_says_so(tmp_path):
    pipe = {"params": {"n": {"type": "integer"}, "topic": {"type": "string"}},
            "stages": [{"name": "s", "agent": "worker", "input": "n={{ params.n }}"}],
            "output": "{{ params.n }} {{ params.topic }}"}
    folder = write_project(tmp_path / "m", script={"worker": [{"content": "ok"}]}, agents=["worker"],
                           pipelines={"p": pipe})
    home = tmp_path / "home"
    assert agentform("apply", str(folder), home=home).returncode == 0
    done = agentform("run", "pipeline/p", "-p", "n=1", "-p", "topic=a", "-p", "n=2", "--param", "topic=b=c",
                     "-o", "json", home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["output"] == "2 b=c"

    shown = agentform("run", "--help", home=home)
    assert shown.returncode == 0
    assert "last value wins" in " ".join(shown.stdout.split()), shown.stdout
