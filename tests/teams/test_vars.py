"""What instructions read from around the agent: ``vars`` of every Team and Pipeline it is in
(inner shadows outer), the innermost pipeline's ``params``, the run's ``run.input``; and
``instructionsFile``: a prompt file of the repository, checked, confined and pinned at apply."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from agentform.engine.api import Engine
from tests.runtime.helpers import manifest
from tests.runtime.openai_stub import OpenAIStub

KEY = "sk-test-vars-key-4242"

BOSS = ("boss: {{ vars.tone }} / {{ vars.who | default('alone') }} / {{ params.topic | default('none') }} / "
        "{{ run.input }}")


def _docs(url: str, boss: str = BOSS) -> list[str]:
    return [
        manifest("Secret", "stub-key", {"fromEnv": "STUB_KEY"}),
        manifest("Model", "main", {"model": "openai/stub-main", "baseUrl": url, "apiKey": {"secretRef": "stub-key"},
                                   "retries": 0}),
        manifest("Agent", "boss", {"model": "main", "instructions": boss}),
        manifest("Agent", "helper", {"model": "main", "instructions": "helper: {{ vars.tone }}"}),
        manifest("Team", "t", {"manager": "boss", "members": [{"agent": "helper"}], "vars": {"tone": "dry"}}),
        manifest("Pipeline", "p", {
            "params": {"input": {"type": "string"}, "topic": {"type": "string", "default": "lamps"}},
            "vars": {"tone": "warm", "who": "the pipeline"},
            "stages": [{"name": "s", "team": "t", "input": "{{ params.input }}"}]})]


def test_vars_shadow_params_and_run_input_reach_the_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_KEY", KEY)
    with OpenAIStub() as stub:
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "all.yaml").write_text("---\n".join(_docs(stub.url)))
        engine = Engine(home=tmp_path / "home")
        engine.apply(tmp_path / "m")
        ask = {"tool_calls": [("ask_helper", {"task": "help"})]}
        stub.replies["stub-main"] = [ask, {"content": "helped"}, {"content": "done"}]
        result = asyncio.run(engine.run("pipeline/p", input="the brief"))
        assert result.status == "succeeded", result.error
        stub.replies["stub-main"] = [ask, {"content": "helped"}, {"content": "done"}]
        alone = asyncio.run(engine.run("team/t", input="on its own"))
        assert alone.status == "succeeded", alone.error
        systems = [r["messages"][0]["content"] for r in stub.requests]
    assert systems == [
        "boss: dry / the pipeline / lamps / the brief", "helper: dry", "boss: dry / the pipeline / lamps / the brief",
        "boss: dry / alone / none / on its own", "helper: dry", "boss: dry / alone / none / on its own"]


# -- validate -------------------------------------------------------------------------------------

@pytest.fixture
def diagnostics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)

    def validate(docs: list[str], files: dict[str, str] | None = None) -> list[str]:
        from agentform.engine.validation import validate_path

        (tmp_path / "all.yaml").write_text("---\n".join(docs))
        for name, text in (files or {}).items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(text)
        return [str(d) for d in validate_path(Path(".")).diagnostics]

    return validate


def test_the_example_shape_validates(diagnostics):
    assert diagnostics(_docs("http://127.0.0.1:9/v1")) == []


def test_a_var_no_container_sets_names_each_way_that_lacks_it(diagnostics):
    found = diagnostics(_docs("http://127.0.0.1:9/v1", boss="boss: {{ vars.who }}"))
    assert found == [
        "all.yaml:14:51: spec.instructions: var 'who' is not set when Team t runs this agent: set it in vars "
        "of Team 't' (or of a container around it), or write {{ vars.who | default(...) }}"]


def test_params_are_the_innermost_pipelines(diagnostics):
    found = diagnostics(_docs("http://127.0.0.1:9/v1", boss="{{ params.topic }} {{ params.depth }}"))
    assert found == [
        "all.yaml:14:45: spec.instructions: when Team t runs this agent there are no params (only a Pipeline "
        "declares them); write {{ params.topic | default(...) }}",
        "all.yaml:14:64: spec.instructions: param 'depth' is not declared by Pipeline 'p', the innermost "
        "pipeline when Pipeline p > Team t runs this agent; declare it there, or write "
        "{{ params.depth | default(...) }}",
        "all.yaml:14:64: spec.instructions: when Team t runs this agent there are no params (only a Pipeline "
        "declares them); write {{ params.depth | default(...) }}"]


def test_guarded_reads_and_unknown_names(diagnostics):
    guarded = "{% if vars.who is defined %}{{ vars.who }}{% endif %}{{ params.x | default(1) }}"
    assert diagnostics(_docs("http://127.0.0.1:9/v1", boss=guarded)) == []
    (d,) = diagnostics(_docs("http://127.0.0.1:9/v1", boss="{{ run.inputs }}"))
    assert d.endswith("spec.instructions: 'run' has id and input, not 'inputs'")


# -- instructionsFile ----------------------------------------------------------------------------

def _agent_with_file(path: str) -> list[str]:
    return [manifest("Model", "main", {"model": "openai/x"}),
            manifest("Agent", "writer", {"model": "main", "instructionsFile": path})]


def test_an_instructions_file_is_checked_where_its_text_is(diagnostics):
    assert diagnostics(_agent_with_file("prompts/w.md"), {"prompts/w.md": "You are {{ agent.name }}.\n"}) == []
    found = diagnostics(_agent_with_file("prompts/w.md"), {"prompts/w.md": "Hello.\nYou are {{ agent.name }.\n"})
    assert found == ["prompts/w.md:2: template error in instructionsFile prompts/w.md: unexpected '}'"
                     .replace("w.md:2:", "w.md:2:1:")]
    found = diagnostics(_agent_with_file("prompts/w.md"), {"prompts/w.md": "One.\nFor {{ reader }} today.\n"})
    assert found == ["prompts/w.md:2:8: instructionsFile prompts/w.md: unknown name 'reader' "
                     "(available: agent, now, params, run, vars, workspace)"]


def test_an_instructions_file_must_exist_and_stay_inside(diagnostics, tmp_path):
    (d,) = diagnostics(_agent_with_file("prompts/none.md"))
    assert d == "all.yaml:9:45: spec.instructionsFile 'prompts/none.md': No such file or directory"
    (d,) = diagnostics(_agent_with_file("../outside.md"))
    assert "spec.instructionsFile '../outside.md' leads outside the applied folder" in d
    (d,) = diagnostics(_agent_with_file("/etc/hostname"))
    assert "spec.instructionsFile '/etc/hostname' is an absolute path" in d
    os.symlink("/etc/hostname", tmp_path / "link.md")
    (d,) = diagnostics(_agent_with_file("link.md"))
    assert "resolves through a symlink to /etc/hostname, outside the applied folder" in d
    (d,) = diagnostics([manifest("Model", "main", {"model": "openai/x"}), manifest(
        "Agent", "writer", {"model": "main", "instructions": "hi", "instructionsFile": "w.md"})], {"w.md": "x"})
    assert "an agent takes 'instructions' or 'instructionsFile', not both" in d


def test_an_instructions_file_is_pinned_at_apply_and_plan_shows_its_edit(tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_KEY", KEY)
    with OpenAIStub() as stub:
        root = tmp_path / "m"
        (root / "prompts").mkdir(parents=True)
        (root / "prompts" / "w.md").write_text("You are {{ agent.name }}, version one.\n")
        (root / "all.yaml").write_text("---\n".join([*_docs(stub.url)[:2], manifest(
            "Agent", "writer", {"model": "main", "instructionsFile": "prompts/w.md"})]))
        engine = Engine(home=tmp_path / "home")
        engine.apply(root)
        (root / "prompts" / "w.md").write_text("You are {{ agent.name }}, version two.\n")
        plan, _ = engine.plan(root)
        (change,) = plan.changes
        assert (change.action, change.key.name) == ("update", "writer")
        assert [d.path for d in change.diff] == ["resolved.instructions"]
        stub.replies["stub-main"] = [{"content": "hi"}, {"content": "hi"}]
        asyncio.run(engine.run("agent/writer", input="go"))      # the pinned text, not the file's
        engine.apply(root)
        asyncio.run(engine.run("agent/writer", input="go"))
        systems = [r["messages"][0]["content"] for r in stub.requests]
    assert systems == ["You are writer, version one.\n", "You are writer, version two.\n"]
