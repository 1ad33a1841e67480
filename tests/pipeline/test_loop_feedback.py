"""Loop feedback: a stage on a loop reads, from its second visit on, the latest outputs of the
stages on that loop and its own previous output (``loop.visit``, ``loop.previous.<stage>``);
``onExhausted: continue`` keeps the last result when maxVisits runs out."""

from __future__ import annotations

import asyncio

from agentform.engine.api import Engine
from tests.runtime.test_cli import af, wait_for
from tests.runtime.test_resume import _check_stream, _has, _kill, _run_of, _start

from .helpers import apply, index_of, run, stream, write_project

JUDGE = {"type": "object", "required": ["score", "note"],
         "properties": {"score": {"type": "integer"}, "note": {"type": "string"}}}

LOOP = {"stages": [
    {"name": "draft", "agent": "writer",
     "input": "v{{ loop.visit }} prev={{ loop.previous.draft.output | default('none') }} "
              "note={{ loop.previous.review.output.note | default('none') }} "
              "edit={{ loop.previous.edit.output | default('none') }}"},
    {"name": "edit", "agent": "editor", "needs": ["draft"],
     "input": "{{ stages.draft.output }} (edit visit {{ loop.visit }})"},
    {"name": "review", "agent": "judge", "needs": ["edit"], "input": "{{ stages.edit.output }}",
     "routes": [{"when": "output.score < 8", "goto": "draft"}], "maxVisits": 3},
    {"name": "ship", "agent": "shipper", "needs": ["review"], "input": "{{ stages.edit.output }}"},
], "output": "{{ stages.ship.output }}"}


def _script(scores=(5, 6, 9)):
    return {"writer": [{"content": f"draft {i}"} for i in (1, 2, 3)],
            "editor": [{"content": f"edited {i}"} for i in (1, 2, 3)],
            "judge": [{"content": {"score": s, "note": f"note {i}"}} for i, s in enumerate(scores, 1)],
            "shipper": [{"content": "shipped"}]}


def _inputs(events, stage):
    return [e.data.get("input") for e in events if e.type == "stage.started" and e.path.split("/")[-1]
            .split("#")[0] == stage]


def test_a_revisited_stage_reads_the_loop_and_its_own_previous_output(store, tmp_path):
    folder = write_project(tmp_path / "m", script=_script(), agents={"writer": None, "editor": None,
                           "judge": JUDGE, "shipper": None}, pipelines={"p": LOOP})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "succeeded", result.error
    events = stream(store, result.id)
    assert _inputs(events, "draft") == [
        "v1 prev=none note=none edit=none",
        "v2 prev=draft 1 note=note 1 edit=edited 1",
        "v3 prev=draft 2 note=note 2 edit=edited 2"]
    # a stage inside the loop span has loop too (its own visit)
    assert _inputs(events, "edit") == [f"draft {i} (edit visit {i})" for i in (1, 2, 3)]


def test_without_default_the_first_visit_fails_with_a_located_message(store, tmp_path):
    spec = {"stages": [{"name": "draft", "agent": "writer", "input": "{{ loop.previous.review.output }}"},
                       *LOOP["stages"][1:]]}
    folder = write_project(tmp_path / "m", script=_script(), agents={"writer": None, "editor": None,
                           "judge": JUDGE, "shipper": None}, pipelines={"p": spec})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "failed"
    assert result.error == (
        "stage 'draft' of pipeline 'p' failed: input: expression error in '{{ loop.previous.review.output }}': "
        "undefined name: loop.previous.review is empty until review has run on an earlier visit of this "
        "loop; write loop.previous.review.output | default(...)")


def test_exhausted_loop_fails_by_default(store, tmp_path):
    folder = write_project(tmp_path / "m", script=_script((1, 2, 3)), agents={"writer": None, "editor": None,
                           "judge": JUDGE, "shipper": None}, pipelines={"p": LOOP})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "failed" and "its maxVisits of 3" in result.error


def test_on_exhausted_continue_keeps_the_last_result(store, tmp_path):
    spec = {**LOOP, "stages": [*LOOP["stages"][:2], {**LOOP["stages"][2], "onExhausted": "continue"},
                               LOOP["stages"][3]],
            "output": "{{ [stages.edit.output, stages.review.output.score, stages.ship.output] }}"}
    folder = write_project(tmp_path / "m", script=_script((1, 2, 3)), agents={"writer": None, "editor": None,
                           "judge": JUDGE, "shipper": None}, pipelines={"p": spec})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "succeeded", result.error
    assert result.output == ["edited 3", 3, "shipped"]
    events = stream(store, result.id)
    last = events[index_of(events, "stage.completed", "p/review#3")].data
    assert last["exhausted"] is True and "goto" not in last
    assert events[index_of(events, "stage.started", "p/ship")].data["input"] == "edited 3"


def test_a_stage_bounded_tighter_than_its_loop_keeps_its_output_with_continue(store, tmp_path):
    stages = [{**LOOP["stages"][0], "maxVisits": 2, "onExhausted": "continue"}, *LOOP["stages"][1:]]
    script = _script((1, 2, 9))
    script["writer"] = script["writer"][:2]
    folder = write_project(tmp_path / "m", script=script, agents={"writer": None, "editor": None,
                           "judge": JUDGE, "shipper": None}, pipelines={"p": {**LOOP, "stages": stages}})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "succeeded", result.error
    events = stream(store, result.id)
    assert [e.path for e in events if e.type == "stage.started" and "draft" in e.path] == ["p/draft", "p/draft#2"]
    assert _inputs(events, "edit")[-1] == "draft 2 (edit visit 3)"


def test_loop_feedback_replays_the_same(store, tmp_path):
    folder = write_project(tmp_path / "m", script=_script(), agents={"writer": None, "editor": None,
                           "judge": JUDGE, "shipper": None}, pipelines={"p": LOOP})
    engine = Engine(home=tmp_path / "home", store=store)
    engine.apply(folder)
    result = asyncio.run(engine.run("pipeline/p"))
    assert result.status == "succeeded", result.error
    report = asyncio.run(engine.replay(result.id))
    assert report.same, report.divergence


def test_resume_after_kill_on_the_second_visit_reads_the_same_feedback(store, store_url, tmp_path):
    script = _script()
    script["editor"][1] = {"content": "edited 2", "latency": "2s"}
    folder = write_project(tmp_path / "m", script=script, agents={"writer": None, "editor": None,
                           "judge": JUDGE, "shipper": None}, pipelines={"p": LOOP})
    apply(store, folder, tmp_path)
    proc = _start(tmp_path, store_url, "run", "pipeline/p")
    run_ = wait_for(lambda: _run_of(store))
    wait_for(lambda: _has(store, run_.id, "agent.started", "p/edit#2/editor"))
    _kill(proc)
    resumed = af(tmp_path, store_url, "resume", run_.id)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "shipped"
    events = store.read_events(run_.id)
    _check_stream(events)
    assert _inputs(events, "draft") == [
        "v1 prev=none note=none edit=none",
        "v2 prev=draft 1 note=note 1 edit=edited 1",
        "v3 prev=draft 2 note=note 2 edit=edited 2"]


# -- validate ---------------------------------------------------------------------------------------

def _diagnostics(tmp_path, stages, monkeypatch):
    from agentform.engine.validation import validate_path

    folder = write_project(tmp_path / "v", script={}, agents={"writer": None, "editor": None, "judge": JUDGE,
                                                                "shipper": None}, pipelines={"p": {"stages": stages}})
    monkeypatch.chdir(folder)
    return [str(d) for d in validate_path(folder).diagnostics]


def _with(stage: int, **changes):
    stages = [dict(s) for s in LOOP["stages"]]
    stages[stage].update(changes)
    return stages


def test_validate_accepts_the_loop_feedback_names(tmp_path, monkeypatch):
    assert _diagnostics(tmp_path, LOOP["stages"], monkeypatch) == []


def test_validate_says_how_to_read_a_stage_on_the_loop_back(tmp_path, monkeypatch):
    (d,) = _diagnostics(tmp_path, _with(0, input="{{ stages.review.output }}"), monkeypatch)
    assert d.endswith("spec.stages[0].input: stage 'review' is not upstream of this stage; it is on a loop "
                      "back to it: read loop.previous.review.output (empty on the first visit: add | default(...))")
    (d,) = _diagnostics(tmp_path, _with(0, input="{{ stages.draft.output }}"), monkeypatch)
    assert "cannot read its own output here; on its loop, its previous output is loop.previous.draft.output" in d


def test_validate_refuses_a_stage_neither_upstream_nor_on_the_loop(tmp_path, monkeypatch):
    (d,) = _diagnostics(tmp_path, _with(0, input="{{ stages.ship.output }}"), monkeypatch)
    assert d.endswith("spec.stages[0].input: stage 'ship' is not upstream of this stage (add it to needs)")
    (d,) = _diagnostics(tmp_path, _with(0, input="{{ loop.previous.ship.output | default('') }}"), monkeypatch)
    assert d.endswith("spec.stages[0].input: stage 'ship' is not on a loop through this stage "
                      "(loop.previous holds: draft, edit, review)")


def test_validate_refuses_loop_off_the_loop_and_unknown_loop_fields(tmp_path, monkeypatch):
    (d,) = _diagnostics(tmp_path, _with(3, input="{{ loop.visit }}"), monkeypatch)
    assert "spec.stages[3].input: 'loop' is only set in a stage on a loop" in d
    (d,) = _diagnostics(tmp_path, _with(0, input="{{ loop.round }}"), monkeypatch)
    assert d.endswith("spec.stages[0].input: 'loop' has visit and previous, not 'round'")
    # inside {% for %} `loop` is Jinja's own: not checked as loop feedback
    assert _diagnostics(tmp_path, _with(3, input="{% for x in [1, 2] %}{{ loop.index }}{% endfor %}"),
                        monkeypatch) == []


def test_validate_needs_max_visits_for_on_exhausted(tmp_path, monkeypatch):
    (d,) = _diagnostics(tmp_path, _with(3, onExhausted="continue"), monkeypatch)
    assert "stage 'ship': onExhausted applies with maxVisits" in d
