"""``agentform cost`` on SQLite and PostgreSQL: each grouping's totals equal the sums of the
usage events of known runs (a scripted model and a litellm one on the local OpenAI stub, each
with its own pricing), as a table and as -o json; --since leaves out older usage."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from agentform import Engine
from tests.runtime.openai_stub import OpenAIStub

CLI = [sys.executable, "-c", "import sys; from agentform.api.cli import main; main(sys.argv[1:])"]
HEAD = "apiVersion: agentform.dev/v1alpha1\n"


def _doc(kind: str, name: str, spec: dict) -> str:
    return f"{HEAD}kind: {kind}\nmetadata: {json.dumps({'name': name})}\nspec: {json.dumps(spec)}\n"


def _project(root, url):
    """lead and writer on the scripted model ``cheap``, helper on ``main`` (litellm, the stub):
    team crew (lead asks helper), pipeline line (writer, then crew), and writer alone."""
    root.mkdir(parents=True)
    ask = {"toolCalls": [{"name": "ask_helper", "arguments": {"task": "t"}}]}
    (root / "script.yaml").write_text(json.dumps({"agents": {
        "crew/lead": [{**ask, "usage": {"input": 10, "output": 1}}, {"content": "ok", "usage": {"input": 20, "output": 2}}],
        "line/crew/crew/lead": [{**ask, "usage": {"input": 30, "output": 3}},
                                {"content": "ok", "usage": {"input": 40, "output": 4}}],
        "writer": [{"content": "w", "usage": {"input": 5, "output": 5}}],   # each run starts at turn 1
    }}))
    (root / "all.yaml").write_text("---\n".join([
        _doc("Secret", "stub-key", {"fromEnv": "COST_STUB_KEY"}),
        _doc("Model", "cheap", {"model": "scripted", "script": "script.yaml",
                                "pricing": {"inputPerMTok": 1.0, "outputPerMTok": 2.0}}),
        _doc("Model", "main", {"model": "openai/stub-main", "baseUrl": url, "apiKey": {"secretRef": "stub-key"},
                               "pricing": {"inputPerMTok": 3.0, "outputPerMTok": 4.0}}),
        _doc("Agent", "lead", {"model": "cheap"}), _doc("Agent", "writer", {"model": "cheap"}),
        _doc("Agent", "helper", {"model": "main", "description": "helps"}),
        _doc("Team", "crew", {"manager": "lead", "members": [{"agent": "helper"}]}),
        _doc("Pipeline", "line", {"stages": [{"name": "one", "agent": "writer", "input": "go"},
                                             {"name": "crew", "team": "crew", "needs": ["one"], "input": "go"}]}),
    ]))
    return root


def _cost(home, store_url, *args):
    done = subprocess.run([*CLI, "--home", str(home), "--store", store_url, "cost", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _sums(usages, key):
    """What a grouping must show: the usage events summed by ``key`` (None: left out)."""
    rows = defaultdict(lambda: [0, 0, 0.0, 0, set()])
    for run_id, target, data in usages:
        group = key(target, data)
        if group is None:
            continue
        row = rows[group]
        row[0] += data["tokens_in"]
        row[1] += data["tokens_out"]
        row[2] += data["cost_usd"]
        row[3] += 1
        row[4].add(run_id)
    return {k: (v[0], v[1], pytest.approx(v[2]), v[3], len(v[4])) for k, v in rows.items()}


def _rows(report):
    return {r["key"]: (r["tokensIn"], r["tokensOut"], r["costUsd"], r["turns"], r["runs"]) for r in report["rows"]}


async def test_cost_by_each_grouping_matches_the_usage_events(tmp_path, store_url, monkeypatch):
    monkeypatch.setenv("COST_STUB_KEY", "sk-cost-test-key-1")
    home = tmp_path / "home"
    with OpenAIStub() as stub, Engine(home=home, store=store_url) as engine:
        stub.replies["stub-main"] = [{"content": "helped", "usage": (100, 10)}, {"content": "helped", "usage": (200, 20)}]
        engine.apply(_project(tmp_path / "m", stub.url))
        runs = [await engine.run("team/crew", input="x"), await engine.run("pipeline/line"),
                await engine.run("agent/writer", input="y")]
        assert [r.status for r in runs] == ["succeeded"] * 3, [r.error for r in runs]
        usages = [(r.id, engine.get_run(r.id).target, e.data)
                  for r in runs for e in engine.event_page(r.id, limit=1000) if e.type == "usage"]
    # the scripts' and the stub's numbers, as the usage events carry them
    assert sorted((d["agent"], d["model"], d["tokens_in"]) for _, _, d in usages) == [
        ("helper", "openai/stub-main", 100), ("helper", "openai/stub-main", 200), ("lead", "scripted", 10),
        ("lead", "scripted", 20), ("lead", "scripted", 30), ("lead", "scripted", 40),
        ("writer", "scripted", 5), ("writer", "scripted", 5)]

    expected = {
        "model": _sums(usages, lambda t, d: d["model"]),
        "agent": _sums(usages, lambda t, d: d["agent"]),
        "team": _sums(usages, lambda t, d: t if t.startswith("team/") else None),
        "pipeline": _sums(usages, lambda t, d: t if t.startswith("pipeline/") else None),
        "target": _sums(usages, lambda t, d: t),
    }
    assert expected["model"]["openai/stub-main"][:2] == (300, 30) and expected["model"]["scripted"][:2] == (110, 20)
    assert expected["team"]["team/default/crew"][:2] == (130, 13)
    for by, rows in expected.items():
        report = json.loads(_cost(home, store_url, "--by", by, "-o", "json"))
        assert report["by"] == by and _rows(report) == rows, by
        assert report["total"]["tokensIn"] == sum(r[0] for r in rows.values())
    costs = [r["costUsd"] for r in json.loads(_cost(home, store_url, "--by", "agent", "-o", "json"))["rows"]]
    assert costs == sorted(costs, reverse=True)   # most expensive first
    assert costs[0] == pytest.approx((300 * 3.0 + 30 * 4.0) / 1e6)   # helper, at main's prices

    table = _cost(home, store_url, "--by", "agent").splitlines()
    assert table[0].split() == ["AGENT", "TOKENS", "IN", "TOKENS", "OUT", "COST", "TURNS", "RUNS"]
    cells = {line.split()[0]: line.split()[1:] for line in table[1:]}
    assert cells["helper"] == ["300", "30", "$0.001020", "2", "2"]
    assert cells["lead"] == ["100", "10", "$0.000120", "4", "2"]
    assert cells["TOTAL"] == ["410", "50", f"${(110 * 1 + 20 * 2 + 300 * 3 + 30 * 4) / 1e6:.6f}", "8", "3"]


async def test_since_leaves_out_older_usage(tmp_path, store_url):
    home = tmp_path / "home"
    with Engine(home=home, store=store_url) as engine:
        folder = tmp_path / "m"
        folder.mkdir()
        (folder / "script.yaml").write_text(json.dumps({"agents": {
            "writer": [{"content": "w", "usage": {"input": 5, "output": 1}}],
            "editor": [{"content": "e", "usage": {"input": 7, "output": 2}}]}}))
        (folder / "all.yaml").write_text("---\n".join([
            _doc("Model", "cheap", {"model": "scripted", "script": "script.yaml"}),
            _doc("Agent", "writer", {"model": "cheap"}), _doc("Agent", "editor", {"model": "cheap"})]))
        engine.apply(folder)
        old = (await engine.run("agent/writer", input="a")).id
        assert (await engine.run("agent/editor", input="b")).status == "succeeded"
        with engine.store._write() as cur:   # the first run's usage was two days ago
            cur.execute(engine.store._q("UPDATE events SET ts = ? WHERE run_id = ?"), (time.time() - 2 * 86400, old))
    everything = json.loads(_cost(home, store_url, "-o", "json"))   # by model
    assert _rows(everything) == {"scripted": (12, 3, 0.0, 2, 2)}
    recent = json.loads(_cost(home, store_url, "--since", "1d", "-o", "json"))
    assert _rows(recent) == {"scripted": (7, 2, 0.0, 1, 1)} and recent["since"] > time.time() - 86400 - 60
    assert _rows(json.loads(_cost(home, store_url, "--by", "agent", "--since", "1d", "-o", "json"))) == {
        "editor": (7, 2, 0.0, 1, 1)}
    assert json.loads(_cost(home, store_url, "--since", "1d12h", "-o", "json"))["total"]["tokensIn"] == 7
    assert json.loads(_cost(home, store_url, "--since", "3d", "-o", "json"))["total"]["tokensIn"] == 12
    assert _cost(home, store_url, "--by", "team", "--since", "1d").strip() == "no usage recorded in the last 1d"
    bad = subprocess.run([*CLI, "--home", str(home), "--store", store_url, "cost", "--since", "lately"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "error: --since 'lately': use a duration such as 30m, 24h or 7d"
