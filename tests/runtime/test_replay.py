"""Deterministic replay: every model and tool response served from the recorded stream, compared
path by path; recordings exported to a file and replayed on another store."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from agentform.engine.api import Engine

from .helpers import EXAMPLES, agent, manifest, of, project
from .test_cli import af

HERE = Path(__file__).parent

# example -> (target, input, params): the runs of tests/project/test_examples.py
EXAMPLE_RUNS = {
    "hello": ("agent/greeter", "hello", None),
    "research-team": ("team/research", "Should we start a heat-pump business?", None),
    "support-desk": ("team/support", "I was charged twice for INV-1042", None),
    "company": ("team/company/company", "Should we open repair cafes?", None),
    "content-pipeline": ("pipeline/content", None, {"topic": "heat pumps"}),
    "ci-overlay": ("team/release-notes", "Write the notes for 1.4", None),
    "triage-desk": ("team/triage-desk/desk", "I was charged twice for INV-1042", None),
    "judge-loop": ("pipeline/judge-loop", "a solar camping lamp", None),
    "crew": ("pipeline/crew", "e-bike repair in Lyon", None),
    "prompts-vars": ("team/editorial", "A beginner's guide to soldering irons", None),
    "knowledge-team": ("team/docs-desk", "How do I continue a run whose process died?", None),
    "workspace-team": ("team/workshop", "Count the words of our notes", None),
}


def _record(engine: Engine, name: str):
    """Run example ``name`` to its end (approving the content pipeline's approval); its RunResult."""
    target, text, params = EXAMPLE_RUNS[name]

    async def main():
        result = await engine.run(target, input=text, params=params)
        if result.status == "waiting":
            result = await engine.approve(result.id, message="ship it")
        return result

    return asyncio.run(main())


def test_the_replayed_examples_are_all_the_examples():
    assert sorted(EXAMPLE_RUNS) == sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())


@pytest.mark.parametrize("name", sorted(EXAMPLE_RUNS))
def test_every_example_run_replays_the_same(store, tmp_path, name):
    engine = Engine(home=tmp_path, store=store)
    engine.apply(EXAMPLES / name)
    result = _record(engine, name)
    assert result.status == "succeeded", result.error
    before = store.get_run(result.id)
    runs = len(store.list_runs(limit=1000))

    report = asyncio.run(engine.replay(result.id))

    assert report.same and report.exit_code == 0, report.divergence
    assert report.events == before.last_seq and report.revision == before.revision
    # in memory: the replay wrote no run and no event
    assert len(store.list_runs(limit=1000)) == runs and store.get_run(result.id).last_seq == before.last_seq
    completed = of(store.read_events(result.id), "message.completed")
    assert completed and all(len(e.data["requestHash"]) == 32 for e in completed)


def _research_copy(tmp_path: Path) -> Path:
    root = tmp_path / "research-team"
    shutil.copytree(EXAMPLES / "research-team", root)
    return root


def _change_instruction(root: Path, old: str, new: str) -> None:
    agents = root / "agents.yaml"
    text = agents.read_text()
    assert old in text
    agents.write_text(text.replace(old, new))


def test_replay_on_the_current_revision_reports_where_a_changed_instruction_leaves_the_path(store, tmp_path):
    root = _research_copy(tmp_path)
    engine = Engine(home=tmp_path, store=store)
    engine.apply(root)
    result = _record(engine, "research-team")
    _change_instruction(root, "in three bullet points", "in five bullet points")
    engine.apply(root)

    pinned = asyncio.run(engine.replay(result.id))
    current = asyncio.run(engine.replay(result.id, revision="current"))

    assert pinned.same and pinned.revision == 1
    assert current.exit_code == 1 and current.revision == 2
    found = current.divergence
    recorded = of(store.read_events(result.id), "message.completed", "research/tech-scout")[0]
    assert (found.path, found.seq) == ("research/tech-scout", recorded.seq)
    assert found.expected["type"] == found.got["type"] == "message.completed"
    # the reply is the recorded one; what changed is the request the model was sent
    assert found.expected["data"]["content"] == found.got["data"]["content"]
    assert found.expected["data"]["requestHash"] == recorded.data["requestHash"] != found.got["data"]["requestHash"]
    assert "requestHash" in found.detail


def test_export_and_replay_the_file_on_a_fresh_store(store, tmp_path):
    engine = Engine(home=tmp_path / "a", store=store)
    engine.apply(EXAMPLES / "content-pipeline")
    result = _record(engine, "content-pipeline")
    assert result.status == "succeeded"
    file = tmp_path / "recording.jsonl"
    run_id, count = engine.export_run(result.id, file)
    lines = file.read_text().splitlines()
    assert run_id == result.id and count == len(lines) - 1 == store.get_run(result.id).last_seq
    assert json.loads(lines[0])["graph"]["root"] == "default/content"
    assert [json.loads(line) for line in lines[1:]] == [e.to_dict() for e in store.read_events(result.id)]

    with Engine(home=tmp_path / "fresh") as fresh:   # nothing applied, no run recorded there
        report = asyncio.run(fresh.replay(file))
        assert report.same, report.divergence
        assert fresh.store.list_runs() == [] and fresh.store.latest_revision() is None

        # a recording edited by hand: the replay computes the stage's output again and tells
        events = [json.loads(line) for line in lines[1:]]
        stage = next(e for e in events if e["type"] == "stage.completed" and e["path"] == "content/draft")
        stage["data"]["output"] = "an outline nobody wrote"
        file.write_text("\n".join([lines[0], *(json.dumps(e) for e in events)]) + "\n")
        report = asyncio.run(fresh.replay(file))
    assert report.exit_code == 1
    assert (report.divergence.path, report.divergence.seq) == ("content/draft", stage["seq"])
    assert report.divergence.expected["data"]["output"] == "an outline nobody wrote"


def _calc(**spec):
    return manifest("ToolServer", "calc", {"transport": "stdio",
                                           "command": [sys.executable, str(HERE / "mcp_calc.py")], **spec})


def test_tool_results_come_from_the_recording_and_no_server_starts(store, tmp_path):
    db = tmp_path / "calc.db"
    calls = [{"name": "add", "arguments": {"a": 2, "b": 3}},
             {"name": "boom", "arguments": {"text": "x"}},
             {"name": "add", "arguments": {"a": "two", "b": 3}},
             {"name": "nope", "arguments": {}}]
    script = {"agents": {"solo": [{"toolCalls": calls},
                                  {"toolCalls": [{"name": "slow", "arguments": {"seconds": 5}}]},
                                  {"content": "done"}]}}
    root = project(tmp_path / "m", script, [_calc(env={"CALC_DB": str(db)}, timeout="300ms"),
                                            agent("solo", tools=[{"toolServer": "calc"}])])
    engine = Engine(home=tmp_path, store=store)
    engine.apply(root)
    result = asyncio.run(engine.run("agent/solo", input="go"))
    assert result.status == "succeeded", result.error
    errors = [e.data.get("error", "") for e in of(store.read_events(result.id), "tool.result")]
    assert any("boom" in e for e in errors) and any("bad arguments" in e for e in errors)
    assert any("timed out" in e for e in errors) and any("unknown tool" in e for e in errors)

    file = tmp_path / "recording.jsonl"
    engine.export_run(result.id, file)
    header, *rest = file.read_text().splitlines()
    graph = json.loads(header)
    # a server that cannot start: the replay must not need it
    graph["graph"]["tool_servers"]["default/calc"]["command"] = [str(tmp_path / "no-such-server")]
    file.write_text("\n".join([json.dumps(graph), *rest]) + "\n")
    logs = tmp_path / "logs"
    shutil.rmtree(logs, ignore_errors=True)

    report = asyncio.run(Engine(home=tmp_path / "fresh").replay(file))

    assert report.same, report.divergence
    assert not logs.exists() and not (tmp_path / "fresh" / "logs").exists()   # no server's stderr log


def test_a_real_model_run_replays_without_the_network(tmp_path, monkeypatch):
    from agentform.engine.store import open_store

    from .helpers import write_tree
    from .openai_stub import OpenAIStub
    from .test_litellm import KEY, manifests

    monkeypatch.setenv("STUB_KEY", KEY)
    with OpenAIStub() as stub:
        write_tree(tmp_path / "m", manifests(stub.url))
        store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
        engine = Engine(home=tmp_path, store=store)
        engine.apply(tmp_path / "m")
        stub.replies["stub-main"] = [
            {"tool_calls": [("ask_helper", {"task": "say hi"})], "usage": (100, 20)},
            {"content": "helper says hi", "usage": (50, 10)},
            {"content": "the final answer", "usage": (200, 30)},
        ]
        result = asyncio.run(engine.run("team/crew", input="go"))
        assert result.status == "succeeded", result.error
        sent = len(stub.requests)
    # the server is gone: a call to it would fail the replay
    report = asyncio.run(engine.replay(result.id))
    assert report.same, report.divergence
    assert sent == 3 == len(stub.requests)
    # the manager's second request carried the helper's answer: its hash covers the conversation
    boss = of(store.read_events(result.id), "message.completed", "crew")
    assert len({e.data["requestHash"] for e in boss}) == 2
    store.close()


def test_the_cli_replays_runs_and_files(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    root = _research_copy(tmp_path)
    assert af(tmp_path, store_url, "apply", str(root)).returncode == 0
    done = af(tmp_path, store_url, "run", "team/research", "-i", "heat pumps?", "--ci", "-o", "json")
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["id"]

    same = af(tmp_path, store_url, "replay", run_id)
    assert same.returncode == 0 and "same (31 events on 5 paths)" in same.stdout, same.stdout + same.stderr

    _change_instruction(root, "You list the top risks", "You list the three top risks")
    assert af(tmp_path, store_url, "apply", str(root)).returncode == 0
    diverged = af(tmp_path, store_url, "replay", run_id[:10], "--revision", "current")
    assert diverged.returncode == 1, diverged.stdout + diverged.stderr
    assert "diverged at research/risk-analyst" in diverged.stdout and "requestHash" in diverged.stdout
    data = json.loads(af(tmp_path, store_url, "replay", run_id, "--revision", "current", "-o", "json").stdout)
    assert data["same"] is False and data["divergence"]["path"] == "research/risk-analyst"

    file = tmp_path / "rec.jsonl"
    exported = af(tmp_path, store_url, "logs", run_id, "--export", str(file))
    assert exported.returncode == 0 and file.exists(), exported.stderr
    other = tmp_path / "other"
    elsewhere = af(other, f"sqlite:///{other / 'state.db'}", "replay", str(file))
    assert elsewhere.returncode == 0, elsewhere.stdout + elsewhere.stderr
    bad = af(tmp_path, store_url, "replay", run_id, "--revision", "newest")
    assert bad.returncode == 1 and "use pinned" in bad.stderr


def test_a_run_resumed_after_its_owner_died_replays_the_same(store, tmp_path):
    from agentform.engine.ids import new_run_id
    from agentform.engine.store.base import Event, RunRecord

    engine = Engine(home=tmp_path, store=store)
    engine.apply(EXAMPLES / "research-team")
    done = _record(engine, "research-team")
    events = store.read_events(done.id)
    cut = of(events, "message.completed", "research/tech-scout")[0].seq
    # the same run as a process left it when it died there (another host, silent for an hour)
    source, now = store.get_run(done.id), events[-1].ts
    died = RunRecord(id=new_run_id(now), target=source.target, status="running", revision=source.revision,
                     created_at=now - 3600, input=source.input, owner="elsewhere:4242", heartbeat_at=now - 3600,
                     started_at=now - 3600, owner_epoch=1)
    store.append_events([Event(died.id, e.seq, e.ts, e.type, e.path, e.data) for e in events[:cut]],
                        new_runs=[died])
    resumed = asyncio.run(engine.resume(died.id))
    assert resumed.status == "succeeded" and resumed.output == done.output, resumed.error
    stream = store.read_events(died.id)
    ends = [e for e in stream if e.type in ("run.failed", "run.resumed")]
    assert [e.type for e in ends] == ["run.failed", "run.resumed"] and ends[0].data["reason"] == "owner died"

    report = asyncio.run(engine.replay(died.id))

    assert report.same, report.divergence
    # the interrupted part is held to what it recorded: a changed answer in it is found
    changed = [e if e.seq != cut else Event(e.run_id, e.seq, e.ts, e.type, e.path, {**e.data, "content": "no"})
               for e in stream]
    from agentform.engine.runtime.recordings import from_store
    from agentform.engine.runtime.replay import replay
    from agentform.engine.runtime.runner import load_graph

    recording = from_store(store, died.id)
    recording.events = changed
    graph, number = load_graph(store, recording.key, recording.revision)
    report = asyncio.run(replay(recording, graph, number, home=tmp_path))
    assert report.exit_code == 1 and report.divergence.path == "research/tech-scout"


@pytest.mark.parametrize("messages, tools", [
    ([{"role": "system", "content": "You are é \u2028 \" \\ \n\x00"}, {"role": "user", "content": "go"}], []),
    ([{"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]}], []),
    ([{"role": "user", "content": "go"}], [{"type": "function", "function": {"name": "ask_x", "parameters": {}}}]),
])
def test_request_hash_is_sha256_of_the_canonical_json_of_what_is_sent(messages, tools):
    import hashlib

    from agentform.engine.runtime.models import request_hash

    text = json.dumps([messages, tools], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert request_hash(messages, tools) == hashlib.sha256(text.encode()).hexdigest()[:32]
    assert request_hash(messages, tools) != request_hash([*messages, {"role": "user", "content": "more"}], tools)


def test_a_team_control_run_replays_its_created_agents(store, tmp_path):
    def call(tool, **arguments):
        return {"name": tool, "arguments": arguments}

    script = {"agents": {
        "lead": [
            {"toolCalls": [call("create_agent", name="alpha", instructions="You add.", tools=["add"]),
                           call("create_agent", name="beta", instructions="You write.")]},
            {"toolCalls": [call("command_agent", name="alpha", task="add 2 and 3"),
                           call("command_agent", name="beta", task="a haiku")]},
            {"toolCalls": [call("check_agent_status", handle="alpha#1", wait=30),
                           call("check_agent_status", handle="beta#1", wait=30)]},
            {"toolCalls": [call("read_logs", name="alpha"), call("list_agents")]},
            {"content": "all done"}],
        "alpha": [{"toolCalls": [call("add", a=2, b=3)], "latency": "100ms"}, {"content": "5"}],
        "beta": [{"content": "old pond", "latency": "100ms"}]}}
    root = project(tmp_path / "m", script, [_calc(), agent("lead", tools=[
        {"builtin": "team-control"}, {"toolServer": "calc", "allow": ["add"]}])])
    engine = Engine(home=tmp_path, store=store)
    engine.apply(root)
    result = asyncio.run(engine.run("agent/lead", input="go"))
    assert result.status == "succeeded", result.error
    events = store.read_events(result.id)
    assert of(events, "agent.completed", "lead/alpha") and of(events, "tool.result", "lead/alpha")

    report = asyncio.run(engine.replay(result.id))

    assert report.same, report.divergence


def test_a_pipeline_with_tool_stages_and_a_thread_replays_the_same(store, tmp_path):
    time_server = manifest("ToolServer", "time", {"transport": "stdio", "command": [
        sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]})
    pipe = manifest("Pipeline", "p", {"stages": [
        {"name": "clock", "tool": {"toolServer": "time", "name": "get_current_time",
                                   "arguments": {"timezone": "Asia/Tokyo"}}},
        {"name": "fails", "continueOnError": True, "tool": {"toolServer": "calc", "name": "boom",
                                                            "arguments": {"text": "x"}}},
        {"name": "report", "needs": ["clock"], "agent": "worker",
         "input": "It is {{ stages.clock.output.datetime }}"}],
        "output": "{{ stages.report.output }} {{ stages.fails.status }}"})
    script = {"agents": {"worker": [{"content": "noted"}], "chat": [{"content": "hi"}, {"content": "again"}]}}
    root = project(tmp_path / "m", script, [time_server, _calc(), agent("worker"), agent("chat"), pipe])
    engine = Engine(home=tmp_path, store=store)
    engine.apply(root)
    result = asyncio.run(engine.run("pipeline/p"))
    assert result.status == "succeeded" and result.output == "noted failed", result.error
    # a thread: the second turn's request carries the first (its hash too)
    first = asyncio.run(engine.run("agent/chat", input="hello", thread="t1"))
    second = asyncio.run(engine.run("agent/chat", input="more", thread="t1"))
    assert second.output == "again"

    for run_id in (result.id, first.id, second.id):
        report = asyncio.run(engine.replay(run_id))
        assert report.same, (run_id, report.divergence)
    # the tool stage's output came from the recording: the clock did not move
    file = tmp_path / "p.jsonl"
    engine.export_run(result.id, file)
    events = [json.loads(line) for line in file.read_text().splitlines()[1:]]
    clock = next(e for e in events if e["type"] == "tool.result" and e["path"] == "p/clock")
    clock["data"]["output"]["datetime"] = "1999-12-31T23:59:59+09:00"
    file.write_text("\n".join([file.read_text().splitlines()[0], *(json.dumps(e) for e in events)]) + "\n")
    report = asyncio.run(engine.replay(file))
    assert report.exit_code == 1 and report.divergence.path == "p/clock"
    assert report.divergence.expected["type"] == "stage.completed"


RECORDINGS = sorted((HERE / "recordings").glob("*.jsonl"))


@pytest.mark.parametrize("file", RECORDINGS, ids=[f.stem for f in RECORDINGS])
def test_committed_recordings_replay_the_same_on_a_fresh_store(file, tmp_path):
    with Engine(home=tmp_path) as fresh:
        report = asyncio.run(fresh.replay(file))
    assert report.same, (f"{file.name} diverged {report.divergence}: if the engine's stream changed on "
                         "purpose, record it again (tests/runtime/recordings/README.md)")
    assert report.events == len(file.read_text().splitlines()) - 1


def test_there_are_committed_recordings():
    assert [f.stem for f in RECORDINGS] == ["company", "content-pipeline"]


def test_replay_on_the_current_revision_reports_where_a_changed_graph_leaves_the_path(store, tmp_path):
    root = _research_copy(tmp_path)
    engine = Engine(home=tmp_path, store=store)
    engine.apply(root)
    result = _record(engine, "research-team")
    for file in (root / "team.yaml", root / "scripts" / "research.yaml"):   # the member and the call of it
        file.write_text("\n".join(line for line in file.read_text().splitlines()
                                  if "- agent: risk-analyst" not in line and "ask_risk_analyst" not in line) + "\n")
    engine.apply(root)

    report = asyncio.run(engine.replay(result.id, revision="current"))

    started = of(store.read_events(result.id), "agent.started", "research/risk-analyst")[0]
    assert report.exit_code == 1
    assert (report.divergence.path, report.divergence.seq) == ("research/risk-analyst", started.seq)
    assert report.divergence.expected["type"] == "agent.started" and report.divergence.got is None
