"""A stage's own ``output.schema`` (overriding the agent's, with the same one-retry rule) and
its ``instructions``, appended to the agent's for that stage only."""

from __future__ import annotations

import asyncio

from agentform.engine.api import Engine

from .helpers import apply, index_of, run, stream, write_project

ASKS_A = {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}
ASKS_B = {"type": "object", "required": ["b"], "properties": {"b": {"type": "string"}}}


def _pipeline(**stage):
    return {"stages": [{"name": "one", "agent": "worker", "input": "go", "output": {"schema": ASKS_B}, **stage},
                       {"name": "two", "agent": "worker", "needs": ["one"], "input": "{{ stages.one.output.b }}"}],
            "output": "{{ [stages.one.output, stages.two.output] }}"}


def test_the_stage_schema_overrides_the_agents_and_other_stages_keep_the_agents(store, tmp_path):
    script = {"worker": [{"content": {"b": "bee"}}, {"content": {"a": 1}}]}
    folder = write_project(tmp_path / "m", script=script, agents={"worker": ASKS_A}, pipelines={"p": _pipeline()})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "succeeded", result.error
    assert result.output == [{"b": "bee"}, {"a": 1}]
    assert stream(store, result.id)[index_of(stream(store, result.id), "stage.started", "p/two")].data["input"] == "bee"


def test_a_mismatch_is_sent_back_once(store, tmp_path):
    script = {"worker": [{"content": {"a": 1}}, {"content": {"b": "fixed"}}, {"content": {"a": 2}}]}
    folder = write_project(tmp_path / "m", script=script, agents={"worker": None}, pipelines={"p": _pipeline()})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "succeeded", result.error
    events = stream(store, result.id)
    assert [e.path for e in events if e.type == "message.completed"] == [
        "p/one/worker", "p/one/worker", "p/two/worker"]


def test_a_second_mismatch_fails_the_stage(store, tmp_path):
    script = {"worker": [{"content": {"a": 1}}, {"content": "still not it"}]}
    folder = write_project(tmp_path / "m", script=script, agents={"worker": None}, pipelines={"p": _pipeline()})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "failed"
    assert "agent worker: the final answer does not match output.schema" in result.error


def test_stage_instructions_are_appended_for_that_stage_only(tmp_path, monkeypatch):
    from tests.runtime.helpers import manifest
    from tests.runtime.openai_stub import OpenAIStub

    monkeypatch.setenv("STUB_KEY", "sk-test-stage-key-4242")
    with OpenAIStub() as stub:
        pipe = {"params": {"topic": {"type": "string", "default": "lamps"}}, "stages": [
            {"name": "one", "agent": "worker", "input": "go", "output": {"schema": {"type": "object", "required": ["b"]}},
             "instructions": "Answer as JSON about {{ params.topic }}: {{ '{{' }}not a template{{ '}}' }}"},
            {"name": "two", "agent": "worker", "needs": ["one"], "input": "again"}]}
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "all.yaml").write_text("---\n".join([
            manifest("Secret", "stub-key", {"fromEnv": "STUB_KEY"}),
            manifest("Model", "main", {"model": "openai/stub-main", "baseUrl": stub.url,
                                       "apiKey": {"secretRef": "stub-key"}, "retries": 0}),
            manifest("Agent", "worker", {"model": "main", "instructions": "You are {{ agent.name }}."}),
            manifest("Pipeline", "p", pipe)]))
        stub.replies["stub-main"] = [{"content": '{"b": 1}'}, {"content": "plain"}]
        engine = Engine(home=tmp_path / "home")
        engine.apply(tmp_path / "m")
        result = asyncio.run(engine.run("pipeline/p"))
        assert result.status == "succeeded", result.error
        systems = [r["messages"][0] for r in stub.requests]
    assert systems == [
        {"role": "system", "content": "You are worker.\n\nAnswer as JSON about lamps: {{not a template}}"},
        {"role": "system", "content": "You are worker."}]


def _diagnostics(tmp_path, monkeypatch, **stage):
    from agentform.engine.validation import validate_path

    spec = {"stages": [{"name": "one", "agent": "worker", **stage}]}
    folder = write_project(tmp_path / "v", script={}, agents={"worker": None}, pipelines={"p": spec})
    monkeypatch.chdir(folder)
    return [str(d) for d in validate_path(folder).diagnostics]


def test_validate_checks_the_stage_schema_and_instructions(tmp_path, monkeypatch):
    (d,) = _diagnostics(tmp_path, monkeypatch, output={"schema": {"type": "objekt"}})
    assert "spec.stages[0].output.schema is not a valid JSON Schema" in d
    (d,) = _diagnostics(tmp_path, monkeypatch, instructions="About {{ params.topic }}")
    assert "spec.stages[0].instructions: param 'topic' is not declared in spec.params" in d
    (d,) = _diagnostics(tmp_path, monkeypatch, instructions="About {{ topic }")
    assert "template syntax error in spec.stages[0].instructions" in d


def test_validate_refuses_output_and_instructions_on_other_stages(tmp_path, monkeypatch):
    from agentform.engine.validation import validate_path

    spec = {"stages": [{"name": "ok", "approval": {"message": "go?"}, "instructions": "x"}]}
    folder = write_project(tmp_path / "v", script={}, agents={"worker": None}, pipelines={"p": spec})
    (d,) = [d.message for d in validate_path(folder).diagnostics]
    assert "stage 'ok': 'output' and 'instructions' apply to an agent stage" in d
