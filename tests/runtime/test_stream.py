"""The event stream: envelope, types where they belong, contiguous seq under concurrency, run records."""

from __future__ import annotations

import asyncio

from agentform.engine.api import Engine
from agentform.engine.events import EVENT_TYPES

from .helpers import EXAMPLES, agent, apply, of, project, run, team


def test_events_of_a_team_run(store, tmp_path):
    script = {"agents": {
        "boss": [{"toolCalls": [{"name": "ask_w", "arguments": {"task": "x"}}], "usage": {"input": 3, "output": 4}},
                 {"content": "the end", "stream": "words"}],
        "w": [{"content": {"answer": 42}}],
    }}
    root = project(tmp_path / "m", script, [
        agent("boss"), agent("w", output={"schema": {"type": "object", "required": ["answer"]}}),
        team("t", "boss", [{"agent": "w"}])])
    result, events = run(store, tmp_path, root, "team/t", input="hello")
    assert result.status == "succeeded", result.error
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {e.type for e in events} <= EVENT_TYPES
    first, last = events[0], events[-1]
    assert (first.type, first.path, first.data["target"], first.data["input"]) == ("run.started", "", "team/default/t", "hello")
    assert (last.type, last.path, last.data["output"]) == ("run.completed", "", "the end")
    for e in events:
        if e.type.startswith("agent."):
            assert e.data["agent"] == {"t": "boss", "t/w": "w"}[e.path]
    assert [d.data["text"] for d in of(events, "message.delta", "t")] == ["the", " end"]
    assert of(events, "message.delta", "t/w")[0].data["text"] == '{"answer": 42}'
    assert of(events, "agent.completed", "t/w")[0].data["output"] == {"answer": 42}
    assert of(events, "tool.result", "t")[0].data["output"] == {"answer": 42}
    call = of(events, "tool.call", "t")[0]
    assert call.data == {"id": "call_1", "name": "ask_w", "arguments": {"task": "x"}}
    completed = of(events, "message.completed", "t")[0]
    assert completed.data["tool_calls"] == [call.data]
    assert of(events, "usage", "t")[0].data == {"agent": "boss", "model": "scripted", "tokens_in": 3,
                                                 "tokens_out": 4, "cost_usd": 0.0}
    record = store.get_run(result.id)
    assert (record.status, record.last_seq, record.tokens_in, record.tokens_out) == ("succeeded", len(events), 3, 4)
    assert record.owner and record.heartbeat_at and record.finished_at and record.revision == 1
    assert record.output == "the end"


def test_structured_output_gets_one_more_chance(store, tmp_path):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    script = {"agents": {"solo": [{"content": "not json"}, {"content": {"n": "x"}}],
                         "fixer": [{"content": "oops"}, {"content": '{"n": 3}'}]}}
    root = project(tmp_path / "m", script, [agent("solo", output={"schema": schema}),
                                            agent("fixer", output={"schema": schema})])
    failed, _ = run(store, tmp_path, root, "agent/solo")
    assert failed.status == "failed" and "output.schema" in failed.error and "'x' is not of type 'integer'" in failed.error
    fixed, _ = run(store, tmp_path, root, "agent/fixer")
    assert fixed.status == "succeeded" and fixed.output == {"n": 3}


def test_script_keys_by_path_suffix_most_specific_wins(store, tmp_path):
    script = {"agents": {
        "boss": [{"toolCalls": [{"name": "ask_w", "arguments": {"task": "a"}},
                                {"name": "ask_v", "arguments": {"task": "b"}}]}, {"content": "done"}],
        "w": [{"content": "generic w"}],
        "t/w": [{"content": "specific w"}],
        "v": [{"content": "generic v"}],
    }}
    root = project(tmp_path / "m", script, [agent("boss"), agent("w"), agent("v"),
                                            team("t", "boss", [{"agent": "w"}, {"agent": "v"}])])
    result, events = run(store, tmp_path, root, "team/t")
    outputs = {e.path: e.data["output"] for e in of(events, "agent.completed")}
    assert outputs["t/w"] == "specific w" and outputs["t/v"] == "generic v"


async def test_seq_contiguous_under_50_concurrent_runs(store, tmp_path):
    apply(store, EXAMPLES / "company", tmp_path)
    engine = Engine(home=tmp_path, store=store)
    results = await asyncio.gather(*(engine.run("team/company/company", input=f"run {i}") for i in range(50)))
    assert {r.status for r in results} == {"succeeded"}
    assert len({r.id for r in results}) == 50
    for r in results:
        events = store.read_events(r.id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert events[-1].type == "run.completed" and len(events) == store.get_run(r.id).last_seq
    replayed = [e async for e in engine.events(results[0].id, after=5)]
    assert replayed[0].seq == 6 and replayed[-1].type == "run.completed"


async def test_thread_of_three_turns_sees_history_and_continues_cursors(store, tmp_path):
    script = {"agents": {"bot": [{"content": "first"}, {"content": "second"}, {"content": "third"}]}}
    root = project(tmp_path / "m", script, [agent("bot", instructions="Be brief")])
    apply(store, root, tmp_path)
    engine = Engine(home=tmp_path, store=store)
    outputs = [(await engine.run("agent/bot", input=f"q{i}", thread="th1")).output for i in range(3)]
    assert outputs == ["first", "second", "third"]
    runs = sorted(store.list_runs(thread="th1"), key=lambda r: r.created_at)
    assert [r.input for r in runs] == ["q0", "q1", "q2"]
    other = await engine.run("agent/bot", input="fresh")  # another thread starts from turn 1
    assert other.output == "first"


async def test_thread_history_reaches_the_model(tmp_path):
    """The third turn's request carries the earlier turns (checked on the wire with the litellm stub)."""
    import os

    from agentform.engine.store import open_store

    from .helpers import manifest
    from .openai_stub import OpenAIStub

    with OpenAIStub() as stub:
        root = tmp_path / "m"
        root.mkdir()
        (root / "all.yaml").write_text("---\n".join([
            manifest("Model", "m", {"model": "openai/chat", "baseUrl": stub.url, "retries": 0,
                                    "pricing": {"inputPerMTok": 0, "outputPerMTok": 0}}),
            agent("bot", instructions="Be brief")]))
        stub.replies["chat"] = [{"content": f"answer {i}"} for i in range(3)]
        os.environ.setdefault("OPENAI_API_KEY", "sk-dummy")
        store = open_store(f"sqlite:///{tmp_path / 's.db'}")
        apply(store, root, tmp_path)
        engine = Engine(home=tmp_path, store=store)
        for i in range(3):
            result = await engine.run("agent/bot", input=f"q{i}", thread="t")
            assert result.output == f"answer {i}", result.error
        sent = [(m["role"], m["content"]) for m in stub.requests[2]["messages"]]
        assert sent == [("system", "Be brief"), ("user", "q0"), ("assistant", "answer 0"),
                        ("user", "q1"), ("assistant", "answer 1"), ("user", "q2")]
        store.close()


def test_scripted_provider_errors_are_retried_then_fail(store, tmp_path):
    script = {"agents": {"solo": [{"error": "overloaded"}, {"content": "second try"}],
                         "weak": [{"error": "overloaded"}, {"error": "still overloaded"}]}}
    root = project(tmp_path / "m", script, [agent("solo"), agent("weak")], model_spec={"retries": 1})
    ok, _ = run(store, tmp_path, root, "agent/solo")
    assert ok.status == "succeeded" and ok.output == "second try"
    failed, events = run(store, tmp_path, root, "agent/weak")
    assert failed.status == "failed" and "still overloaded" in failed.error
    assert [e.type for e in events][-2:] == ["agent.failed", "run.failed"]


async def test_engine_follows_a_live_run(store, tmp_path):
    script = {"agents": {"solo": [{"content": "slow and steady", "latency": "300ms", "stream": "words"}]}}
    root = project(tmp_path / "m", script, [agent("solo")])
    apply(store, root, tmp_path)
    engine = Engine(home=tmp_path, store=store)
    running = asyncio.ensure_future(engine.run("agent/solo", input="x"))
    while not store.list_runs():
        await asyncio.sleep(0.01)  # the run record appears (observable state)
    run_id = store.list_runs()[0].id
    seen = [e async for e in engine.events(run_id[:10], follow=True, poll=0.2)]
    result = await running
    assert result.status == "succeeded"
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].type == "run.completed" and len(seen) == store.get_run(run_id).last_seq
    assert [e.data["text"] for e in seen if e.type == "message.delta"] == ["slow", " and", " steady"]


def test_a_resumed_run_keeps_its_totals_and_continues_its_stream(store, tmp_path):
    from agentform.engine.runtime.approvals import resolve_approval

    from .helpers import manifest

    script = {"agents": {"w": [{"content": "draft", "usage": {"input": 10, "output": 5}},
                               {"content": "final", "usage": {"input": 20, "output": 7}}]}}
    pipeline = manifest("Pipeline", "p", {"stages": [
        {"name": "draft", "agent": "w", "input": "go"},
        {"name": "ok", "approval": {"message": "ship?"}, "needs": ["draft"]},
        {"name": "final", "agent": "w", "input": "{{ stages.draft.output }}", "needs": ["ok"]}],
        "output": "{{ stages.final.output }}"})
    root = project(tmp_path / "m", script, [agent("w"), pipeline])
    waiting, events = run(store, tmp_path, root, "pipeline/p", input=None)
    assert (waiting.status, waiting.exit_code, events[-1].type) == ("waiting", 3, "run.waiting")
    assert store.get_run(waiting.id).status == "waiting"
    done = resolve_approval(store, waiting.id, approve=True, by="tester", message=None, home=tmp_path)
    assert done.status == "succeeded" and done.output == "final"
    assert (done.tokens_in, done.tokens_out) == (30, 12)
    record = store.get_run(waiting.id)
    assert (record.tokens_in, record.tokens_out, record.status) == (30, 12, "succeeded")
    events = store.read_events(waiting.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events].count("run.started") == 1
    where = [(e.type, e.path) for e in events if e.type.startswith(("stage.", "approval.", "run.waiting"))]
    assert where == [("stage.started", "p/draft"), ("stage.completed", "p/draft"),
                     ("stage.started", "p/ok"), ("approval.requested", "p/ok"), ("run.waiting", ""),
                     ("approval.resolved", "p/ok"), ("stage.completed", "p/ok"),
                     ("stage.started", "p/final"), ("stage.completed", "p/final")]
    assert {e.path for e in events if e.type == "agent.started"} == {"p/draft/w", "p/final/w"}
