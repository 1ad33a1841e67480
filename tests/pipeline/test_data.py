"""Typed params (conversion, defaults, enums, clear errors) and templates at run time."""

from __future__ import annotations

import pytest

from agentform.engine.errors import UsageError
from agentform.engine.graph import PipelineNode, StageEdge
from agentform.engine.runtime.params import coerce_params
from agentform.specs.pipeline import PipelineSpec

from .helpers import agentform, apply, index_of, run, stream, write_project

PARAMS = {
    "topic": {"type": "string"},
    "depth": {"type": "integer", "default": 2, "enum": [1, 2, 3]},
    "ratio": {"type": "number", "default": 0.5},
    "draft": {"type": "boolean", "default": False},
    "tags": {"type": "array", "default": []},
    "meta": {"type": "object", "default": {"a": 1}},
}


def _node(params: dict) -> PipelineNode:
    spec = PipelineSpec.model_validate({"params": params, "stages": [{"name": "s", "agent": "a"}]})
    return PipelineNode(name="p", namespace="default", spec=spec, order=["s"],
                        targets={"s": StageEdge(stage="s", kind="agent", target="default/a")})


def test_cli_strings_are_converted_to_the_declared_types():
    raw = {"topic": "heat", "depth": "3", "ratio": "1e-2", "draft": "TRUE",
           "tags": '["x", "y"]', "meta": '{"k": [1]}'}
    assert coerce_params(_node(PARAMS), raw, None) == {
        "topic": "heat", "depth": 3, "ratio": 0.01, "draft": True, "tags": ["x", "y"], "meta": {"k": [1]}}


def test_defaults_fill_in_and_native_values_pass():
    values = coerce_params(_node(PARAMS), {"topic": "t", "depth": 1, "ratio": 2}, None)
    assert values == {"topic": "t", "depth": 1, "ratio": 2, "draft": False, "tags": [], "meta": {"a": 1}}


@pytest.mark.parametrize(("raw", "message"), [
    ({"topic": "t", "depth": "abc"}, r"param 'depth' of pipeline 'p': 'abc' is not a whole number"),
    ({"topic": "t", "depth": "5"}, r"param 'depth' of pipeline 'p': 5 is not one of 1, 2, 3"),
    ({"topic": "t", "draft": "maybe"}, r"param 'draft'.*true or false"),
    ({"topic": "t", "tags": "{}"}, r"param 'tags'.*JSON array"),
    ({"topic": "t", "meta": "not json"}, r"param 'meta'.*JSON object"),
    ({"topic": "t", "depth": True}, r"param 'depth'"),
    ({"topic": "t", "colour": "red"}, r"unknown param 'colour' for pipeline 'p' \(declared: depth, draft"),
    ({}, r"param 'topic' of pipeline 'p' is required \(it has no default\): pass it with -p topic="),
])
def test_bad_params_are_usage_errors_naming_the_param(raw, message):
    with pytest.raises(UsageError, match=message):
        coerce_params(_node(PARAMS), raw, None)


def test_input_text_sets_the_input_param_only_when_declared():
    declared = {"input": {"type": "string"}, "n": {"type": "integer", "default": 1}}
    assert coerce_params(_node(declared), {}, "hello") == {"input": "hello", "n": 1}
    with pytest.raises(UsageError, match=r"declares no param 'input', so -i is refused"):
        coerce_params(_node(PARAMS), {"topic": "t"}, "hello")


def test_param_error_from_the_command_line(tmp_path):
    pipe = {"params": {"depth": {"type": "integer", "enum": [1, 2]}},
            "stages": [{"name": "s", "agent": "worker", "input": "{{ params.depth }}"}]}
    folder = write_project(tmp_path / "m", script={"worker": [{"content": "ok"}]}, agents=["worker"],
                           pipelines={"p": pipe})
    home = tmp_path / "home"
    assert agentform("apply", str(folder), home=home).returncode == 0
    done = agentform("run", "pipeline/p", "-p", "depth=deep", home=home)
    assert done.returncode == 1
    assert "param 'depth'" in done.stderr and "Traceback" not in done.stderr
    done = agentform("run", "pipeline/p", "-p", "depth=2", home=home)
    assert done.returncode == 0, done.stdout + done.stderr


def test_template_error_at_run_time_fails_the_stage_named(store, tmp_path):
    # `first` answers text, so `.missing` is undefined: only run time can tell.
    pipe = {"params": {"topic": {"type": "string", "default": "x"}}, "stages": [
        {"name": "first", "agent": "worker", "input": "{{ params.topic }}"},
        {"name": "second", "agent": "worker", "needs": ["first"],
         "input": "use {{ stages.first.output.missing }}"},
    ]}
    folder = write_project(tmp_path / "m", script={"worker": [{"content": "plain text"}] * 2},
                           agents=["worker"], pipelines={"p": pipe})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "failed"
    assert "stage 'second'" in result.error and "missing" in result.error
    events = stream(store, result.id)
    failed = events[index_of(events, "stage.failed", "p/second")]
    assert failed.data["error"].startswith("input:") and "missing" in failed.data["error"]
    assert not any(e.type == "agent.started" and e.path.startswith("p/second") for e in events)


def test_output_and_inputs_keep_data_as_data(store, tmp_path):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    pipe = {"params": {"cfg": {"type": "object", "default": {"k": "v"}}}, "stages": [
        {"name": "count", "agent": "counter", "input": "{{ params.cfg }}"},
        {"name": "gate", "agent": "counter", "needs": ["count"], "when": "stages.count.output.n > 5"},
    ], "output": "{{ stages.count.output }}"}
    folder = write_project(tmp_path / "m", script={"counter": [{"content": {"n": 3}}]},
                           agents={"counter": schema}, pipelines={"p": pipe})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "succeeded", result.error
    assert result.output == {"n": 3}
    events = stream(store, result.id)
    assert events[index_of(events, "stage.started", "p/count")].data["input"] == {"k": "v"}
    assert index_of(events, "stage.skipped", "p/gate") > 0


def test_undefined_lone_expression_fails_the_stage_not_the_engine(store, tmp_path):
    # `{{ params.zone.missing }}` compiles to a StrictUndefined value rather than an error;
    # as a `when` or a stage input it must fail that stage with the name, like any template error.
    pipe = {"params": {"zone": {"type": "string", "default": "UTC"}}, "stages": [
        {"name": "gate", "agent": "worker", "when": "{{ params.zone.missing }}", "continueOnError": True},
        {"name": "feed", "agent": "worker", "input": "{{ params.zone.missing }}"},
    ]}
    folder = write_project(tmp_path / "m", script={"worker": [{"content": "ok"}]}, agents=["worker"],
                           pipelines={"p": pipe})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "failed" and "stage 'feed'" in result.error and "missing" in result.error
    failed = {e.path: e.data["error"] for e in stream(store, result.id) if e.type == "stage.failed"}
    assert failed["p/gate"].startswith("when: ") and "missing" in failed["p/gate"]
    assert failed["p/feed"].startswith("input: ") and "missing" in failed["p/feed"]
