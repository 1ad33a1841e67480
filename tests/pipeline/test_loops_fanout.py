"""Loops bounded by maxVisits, forEach fan-out over structured output, nested pipelines."""

from __future__ import annotations

from .helpers import apply, index_of, max_in_flight, run, stream, write_project

REVIEW_LOOP = {"stages": [
    {"name": "draft", "agent": "writer", "input": "write"},
    {"name": "review", "agent": "reviewer", "needs": ["draft"],
     "input": "{{ stages.draft.output }}",
     "routes": [{"when": "'REVISE' in output", "goto": "draft"}], "maxVisits": 3},
    {"name": "publish", "agent": "publisher", "needs": ["review"], "input": "{{ stages.draft.output }}"},
], "output": "{{ stages.publish.output }}"}


def test_loop_ends_by_its_route(store, tmp_path):
    script = {
        "writer": [{"content": "draft one"}, {"content": "draft two"}],
        "reviewer": [{"content": "REVISE: shorter"}, {"content": "APPROVED"}],
        "publisher": [{"content": "published"}],
    }
    folder = write_project(tmp_path / "m", script=script, agents=["writer", "reviewer", "publisher"],
                           pipelines={"p": REVIEW_LOOP})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "succeeded", result.error
    assert result.output == "published"
    events = stream(store, result.id)
    order = [(e.type, e.path) for e in events if e.type in ("stage.started", "stage.completed")]
    assert [p for t, p in order if t == "stage.started"] == [
        "p/draft", "p/review", "p/draft#2", "p/review#2", "p/publish"]
    review = events[index_of(events, "stage.completed", "p/review")].data
    assert review["goto"] == "draft"
    assert "goto" not in events[index_of(events, "stage.completed", "p/review#2")].data
    # The second review saw the second draft; publish saw it too.
    assert events[index_of(events, "stage.started", "p/review#2")].data["input"] == "draft two"
    assert events[index_of(events, "stage.started", "p/publish")].data["input"] == "draft two"
    assert events[index_of(events, "stage.started", "p/draft#2")].data["visit"] == 2


def test_loop_that_hits_max_visits_fails_naming_stage_and_count(store, tmp_path):
    script = {
        "writer": [{"content": f"draft {i}"} for i in range(5)],
        "reviewer": [{"content": "REVISE"}] * 5,
        "publisher": [{"content": "published"}],
    }
    folder = write_project(tmp_path / "m", script=script, agents=["writer", "reviewer", "publisher"],
                           pipelines={"p": REVIEW_LOOP})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "failed" and result.exit_code == 1
    assert "stage 'review'" in result.error and "maxVisits of 3" in result.error
    events = stream(store, result.id)
    reviews = [e.path for e in events if e.type == "stage.started" and e.path.startswith("p/review")]
    assert reviews == ["p/review", "p/review#2", "p/review#3"]
    assert [e.path for e in events if e.type == "stage.failed"] == ["p/review#3"]
    assert not [e for e in events if e.path.startswith("p/draft#4") or e.path.startswith("p/publish")]


def test_for_each_over_structured_output_keeps_order_and_limit(store, tmp_path):
    # Item 0 is the slowest: completion order differs from input order.
    latencies = ["400ms", "50ms", "150ms", "50ms", "100ms"]
    script = {"finder": [{"content": {"sources": [{"title": f"s{i}"} for i in range(5)]}}]}
    for i, latency in enumerate(latencies):
        script[f"summarize[{i}]/summarizer"] = [{"content": f"summary {i}", "latency": latency}]
    schema = {"type": "object", "required": ["sources"],
              "properties": {"sources": {"type": "array", "items": {"type": "object"}}}}
    pipe = {"maxParallel": 8, "stages": [
        {"name": "research", "agent": "finder", "input": "find"},
        {"name": "summarize", "agent": "summarizer", "needs": ["research"],
         "forEach": "{{ stages.research.output.sources }}", "maxParallel": 2,
         "input": "Summarise {{ item.title }}"},
    ], "output": "{{ stages.summarize.output }}"}
    folder = write_project(tmp_path / "m", script=script, agents={"finder": schema, "summarizer": None},
                           pipelines={"p": pipe})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "succeeded", result.error
    assert result.output == [f"summary {i}" for i in range(5)]  # input order, data not text
    events = stream(store, result.id)
    items = [e for e in events if e.path.startswith("p/summarize[") and "/" not in e.path[2:]]
    assert max_in_flight(events, "p/summarize[") == 2  # bounded, and actually parallel
    done = [e.path for e in items if e.type == "stage.completed"]
    assert sorted(done) == [f"p/summarize[{i}]" for i in range(5)]
    assert done != sorted(done)  # they finished out of order, yet the output is in order
    assert events[index_of(events, "stage.started", "p/summarize[3]")].data["input"] == "Summarise s3"
    parent = events[index_of(events, "stage.completed", "p/summarize")]
    assert parent.data["output"] == result.output
    assert events[index_of(events, "stage.started", "p/summarize")].data["items"] == 5


def test_for_each_over_a_non_list_fails_naming_the_stage(store, tmp_path):
    pipe = {"stages": [
        {"name": "research", "agent": "finder"},
        {"name": "fan", "agent": "finder", "needs": ["research"], "forEach": "stages.research.output"},
    ]}
    folder = write_project(tmp_path / "m", script={"finder": [{"content": "just text"}]},
                           agents=["finder"], pipelines={"p": pipe})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "failed"
    assert "stage 'fan'" in result.error and "forEach must evaluate to a list, got str" in result.error


def _nested(max_steps: int) -> dict:
    inner = {"params": {"input": {"type": "string"}}, "stages": [
        {"name": "step", "agent": "worker", "input": "inner got {{ params.input }}"},
    ], "output": "inner: {{ stages.step.output }}"}
    outer = {"budget": {"maxSteps": max_steps}, "stages": [
        {"name": "prep", "agent": "worker", "input": "prep"},
        {"name": "sub", "pipeline": "inner", "needs": ["prep"], "input": "{{ stages.prep.output }}"},
        {"name": "end", "agent": "worker", "needs": ["sub"], "input": "{{ stages.sub.output }}"},
    ], "output": "{{ stages.end.output }}"}
    return {"inner": inner, "outer": outer}


NESTED_SCRIPT = {"worker": [{"content": "prepared"}, {"content": "stepped"}, {"content": "finished"}]}


def test_nested_pipeline_runs_under_its_stage_path(store, tmp_path):
    # 4 steps: prep, sub, the nested pipeline's step, end.
    folder = write_project(tmp_path / "m", script=NESTED_SCRIPT, agents=["worker"], pipelines=_nested(4))
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/outer", tmp_path / "home")
    assert result.status == "succeeded", result.error
    assert result.output == "finished"
    events = stream(store, result.id)
    assert events[index_of(events, "stage.started", "outer/sub/inner/step")].data["input"] == "inner got prepared"
    assert events[index_of(events, "stage.completed", "outer/sub")].data["output"] == "inner: stepped"
    assert events[index_of(events, "stage.started", "outer/end")].data["input"] == "inner: stepped"
    assert any(e.type == "agent.started" and e.path == "outer/sub/inner/step/worker" for e in events)


def test_nested_pipeline_steps_count_against_the_outer_max_steps(store, tmp_path):
    folder = write_project(tmp_path / "m", script=NESTED_SCRIPT, agents=["worker"], pipelines=_nested(3))
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/outer", tmp_path / "home")
    assert result.status == "failed" and "maxSteps" in result.error
    events = stream(store, result.id)
    assert any(e.type == "stage.completed" and e.path == "outer/sub/inner/step" for e in events)
    assert not any(e.type == "stage.started" and e.path == "outer/end" for e in events)
