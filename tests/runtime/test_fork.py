"""Fork: a new run keeps another run's stream up to a seq as its past and continues live from there."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from agentform.engine.api import Engine
from agentform.engine.errors import RunError

from .helpers import EXAMPLES, agent, manifest, of, project
from .test_cli import af

HERE = Path(__file__).parent
QUESTION = "Should we start a heat-pump business?"


def _research(tmp_path: Path, store) -> tuple[Engine, Path, str]:
    root = tmp_path / "research-team"
    shutil.copytree(EXAMPLES / "research-team", root)
    engine = Engine(home=tmp_path, store=store)
    engine.apply(root)
    result = asyncio.run(engine.run("team/research", input=QUESTION))
    assert result.status == "succeeded", result.error
    return engine, root, result.id


def _edit(root: Path, old: str, new: str) -> None:
    agents = root / "agents.yaml"
    assert old in agents.read_text()
    agents.write_text(agents.read_text().replace(old, new))


def _plain(event) -> tuple:
    return event.type, event.path, json.dumps(event.data, sort_keys=True)


def test_a_fork_in_the_middle_of_a_team_run_continues_live_on_a_changed_instruction(store, tmp_path):
    engine, root, original = _research(tmp_path, store)
    recorded = store.read_events(original)
    # the first member's answer is in; the other two members are still working
    at = of(recorded, "message.completed", "research/tech-scout")[0].seq
    assert of(recorded, "message.completed", "research/risk-analyst")[0].seq > at
    _edit(root, "You list the top risks, most serious first.", "You list the top five risks, most serious first.")
    engine.apply(root)

    result = asyncio.run(engine.fork(original, at))

    assert result.status == "succeeded", result.error
    assert result.id != original and result.output == store.get_run(original).output
    events = store.read_events(result.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    started = events[0]
    assert started.type == "run.started" and started.data["forkedFrom"] == {"run": original, "seq": at}
    assert started.data["revision"] == 2 == store.get_run(result.id).revision
    # the past is the original's up to SEQ (and the usage of the reply at SEQ)
    assert [_plain(e) for e in events[1:at]] == [_plain(e) for e in recorded[1:at]]
    resumed = next(e for e in events if e.type == "run.resumed")
    assert resumed.seq == at + 2
    # the member that had answered is not asked again; the others run live, on the new revision
    assert len(of(events, "message.completed", "research/tech-scout")) == 1
    assert len(of(events, "agent.started", "research/risk-analyst")) == 1
    risk = of(events, "message.completed", "research/risk-analyst")
    was = of(recorded, "message.completed", "research/risk-analyst")
    assert len(risk) == 1 and risk[0].seq > resumed.seq
    assert risk[0].data["requestHash"] != was[0].data["requestHash"]
    market = of(events, "message.completed", "research/market-analyst")
    assert market[0].data["requestHash"] == of(recorded, "message.completed", "research/market-analyst")[0].data[
        "requestHash"]
    # nothing counted twice: the fork cost what the original did
    record, source = store.get_run(result.id), store.get_run(original)
    assert (record.tokens_in, record.tokens_out) == (source.tokens_in, source.tokens_out)
    assert store.get_run(original).last_seq == len(recorded)   # the original is untouched
    # a fork replays like any run: its past as an interrupted execution, then the live part
    report = asyncio.run(engine.replay(result.id))
    assert report.same, report.divergence


def test_a_fork_at_a_path_missing_from_the_graph_fails_before_it_starts(store, tmp_path):
    engine, root, original = _research(tmp_path, store)
    recorded = store.read_events(original)
    risk = of(recorded, "agent.started", "research/risk-analyst")[0]
    team = root / "team.yaml"
    assert "- agent: risk-analyst" in team.read_text()
    for file in (team, root / "scripts" / "research.yaml"):   # the member and the lead's call of it
        file.write_text("\n".join(line for line in file.read_text().splitlines()
                                  if "risk-analyst" not in line and "ask_risk_analyst" not in line) + "\n")
    engine.apply(root)
    runs = len(store.list_runs(limit=1000))

    with pytest.raises(RunError, match=rf"research/risk-analyst \(seq {risk.seq}\).*team default/research has "
                                        r"no member 'risk-analyst'"):
        asyncio.run(engine.fork(original, risk.seq + 1))

    assert len(store.list_runs(limit=1000)) == runs   # nothing was created
    # before that member started, the past fits the new graph; on the original revision it always does
    before = asyncio.run(engine.fork(original, risk.seq - 1))
    assert before.status == "succeeded", before.error
    assert asyncio.run(engine.fork(original, risk.seq + 1, revision="original")).status == "succeeded"


def _calc():
    return manifest("ToolServer", "calc", {"transport": "stdio",
                                           "command": [sys.executable, str(HERE / "mcp_calc.py")]})


def test_a_tool_call_unfinished_at_the_fork_point_is_issued_again(store, tmp_path):
    script = {"agents": {"solo": [{"toolCalls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]},
                                  {"content": "done"}]}}
    root = project(tmp_path / "m", script, [_calc(), agent("solo", tools=[{"toolServer": "calc"}])])
    engine = Engine(home=tmp_path, store=store)
    engine.apply(root)
    original = asyncio.run(engine.run("agent/solo", input="go"))
    assert original.status == "succeeded", original.error
    call = of(store.read_events(original.id), "tool.call", "solo")[0]

    fork = asyncio.run(engine.fork(original.id, call.seq, revision="original"))

    assert fork.status == "succeeded" and fork.output == "done", fork.error
    events = store.read_events(fork.id)
    calls = of(events, "tool.call", "solo")
    assert len(calls) == 2 and calls[1].data["retried"] is True
    assert calls[1].data["idempotencyKey"] == f"{fork.id}:solo:call_1"
    (result,) = of(events, "tool.result", "solo")
    assert result.data["output"] == 5 and result.seq > calls[1].seq   # the server ran it again


def test_the_cli_forks(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    root = tmp_path / "research-team"
    shutil.copytree(EXAMPLES / "research-team", root)
    assert af(tmp_path, store_url, "apply", str(root)).returncode == 0
    done = af(tmp_path, store_url, "run", "team/research", "-i", QUESTION, "--ci", "-o", "json")
    run_id = json.loads(done.stdout)["id"]

    forked = af(tmp_path, store_url, "fork", run_id[:12], "--at", "12", "--ci", "-o", "json")
    assert forked.returncode == 0, forked.stdout + forked.stderr
    data = json.loads(forked.stdout)
    assert data["status"] == "succeeded" and data["id"] != run_id
    bad = af(tmp_path, store_url, "fork", run_id, "--at", "999")
    assert bad.returncode == 1 and "--at 999" in bad.stderr


def test_a_reply_streaming_at_the_fork_point_is_asked_for_again(store, tmp_path):
    engine, _, original = _research(tmp_path, store)
    recorded = store.read_events(original)
    delta = of(recorded, "message.delta", "research/tech-scout")[0]
    assert recorded[delta.seq].type == "message.completed"   # the reply was still streaming at SEQ

    fork = asyncio.run(engine.fork(original, delta.seq, revision="original"))

    assert fork.status == "succeeded", fork.error
    events = store.read_events(fork.id)
    resumed = next(e for e in events if e.type == "run.resumed")
    deltas = of(events, "message.delta", "research/tech-scout")
    # the partial chunks are not in the past; the reply streams once, after the fork point
    assert len(deltas) == 1 and deltas[0].seq > resumed.seq and deltas[0].data == delta.data
    assert len(of(events, "message.completed", "research/tech-scout")) == 1
    assert asyncio.run(engine.replay(fork.id)).same
