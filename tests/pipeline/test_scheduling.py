"""Scheduling: parallel stages, skip propagation (GitHub Actions rules), failures, budgets."""

from __future__ import annotations

from .helpers import apply, index_of, max_in_flight, run, stream, write_project


def test_independent_stages_run_in_parallel(store, tmp_path):
    script = {
        "left": [{"content": "L", "latency": "300ms"}],
        "right": [{"content": "R", "latency": "300ms"}],
        "join": [{"content": "joined"}],
    }
    pipe = {"stages": [
        {"name": "a", "agent": "left", "input": "go"},
        {"name": "b", "agent": "right", "input": "go"},
        {"name": "c", "agent": "join", "needs": ["a", "b"],
         "input": "{{ stages.a.output }}+{{ stages.b.output }}"},
    ]}
    folder = write_project(tmp_path / "m", script=script, agents=["left", "right", "join"],
                           pipelines={"p": pipe})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "succeeded" and result.exit_code == 0
    assert result.output == "joined"
    events = stream(store, result.id)
    # Both independent stages started before either finished: they overlapped in time.
    first_done = min(index_of(events, "stage.completed", "p/a"), index_of(events, "stage.completed", "p/b"))
    assert index_of(events, "stage.started", "p/a") < first_done
    assert index_of(events, "stage.started", "p/b") < first_done
    # The joining stage waited for both, and saw both outputs.
    last_done = max(index_of(events, "stage.completed", "p/a"), index_of(events, "stage.completed", "p/b"))
    assert index_of(events, "stage.started", "p/c") > last_done
    assert events[index_of(events, "stage.started", "p/c")].data["input"] == "L+R"


def test_skips_propagate_unless_when_uses_a_status_function(store, tmp_path):
    script = {"worker": [{"content": "ran"}] * 3}
    pipe = {"stages": [
        {"name": "gate", "agent": "worker", "when": "false"},
        {"name": "after-gate", "agent": "worker", "needs": ["gate"]},
        {"name": "later", "agent": "worker", "needs": ["after-gate"], "when": "true"},
        {"name": "cleanup", "agent": "worker", "needs": ["later"], "when": "always()",
         "input": "{{ stages.later.status }}"},
        {"name": "on-failure", "agent": "worker", "needs": ["gate"], "when": "failure()"},
        {"name": "on-success", "agent": "worker", "needs": ["cleanup"], "when": "success()"},
    ]}
    folder = write_project(tmp_path / "m", script=script, agents=["worker"], pipelines={"p": pipe})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "succeeded", result.error
    events = stream(store, result.id)
    skipped = {e.path: e.data["reason"] for e in events if e.type == "stage.skipped"}
    assert set(skipped) == {"p/gate", "p/after-gate", "p/later", "p/on-failure"}
    assert "when is false" in skipped["p/gate"]
    assert "gate" in skipped["p/after-gate"] and "skipped" in skipped["p/after-gate"]
    # `later` has a plain `when`: that implies success(), so it is skipped too.
    assert "after-gate" in skipped["p/later"]
    completed = {e.path: e.data["output"] for e in events if e.type == "stage.completed"}
    assert set(completed) == {"p/cleanup", "p/on-success"}
    started = {e.path: e.data for e in events if e.type == "stage.started"}
    assert started["p/cleanup"]["input"] == "skipped"  # stages.later.status


def test_failed_stage_fails_the_run_unless_continue_on_error(store, tmp_path):
    # `broken` has no turns in the script: its stage fails.
    script = {"worker": [{"content": "ok"}] * 3}
    pipe = {"stages": [
        {"name": "flaky", "agent": "broken", "continueOnError": True},
        {"name": "dependent", "agent": "worker", "needs": ["flaky"]},
        {"name": "handler", "agent": "worker", "needs": ["flaky"], "when": "failure()"},
        {"name": "fatal", "agent": "broken", "needs": ["handler"]},
        {"name": "never", "agent": "worker", "needs": ["fatal"], "when": "always()"},
    ]}
    folder = write_project(tmp_path / "m", script=script, agents=["worker", "broken"], pipelines={"p": pipe})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "failed" and result.exit_code == 1
    assert "stage 'fatal'" in result.error
    events = stream(store, result.id)
    failed = {e.path: e.data for e in events if e.type == "stage.failed"}
    assert set(failed) == {"p/flaky", "p/fatal"}
    assert failed["p/flaky"]["continueOnError"] is True
    assert index_of(events, "stage.skipped", "p/dependent") > index_of(events, "stage.failed", "p/flaky")
    assert index_of(events, "stage.completed", "p/handler") > 0
    assert not [e for e in events if e.path == "p/never"]  # the run ended at the fatal failure
    assert events[-1].type == "run.failed"


def test_max_steps_spans_the_pipeline(store, tmp_path):
    script = {"worker": [{"content": "ok"}] * 5}
    pipe = {"budget": {"maxSteps": 2}, "stages": [
        {"name": "one", "agent": "worker"},
        {"name": "two", "agent": "worker", "needs": ["one"]},
        {"name": "three", "agent": "worker", "needs": ["two"]},
    ]}
    folder = write_project(tmp_path / "m", script=script, agents=["worker"], pipelines={"p": pipe})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "failed"
    assert "maxSteps" in result.error
    events = stream(store, result.id)
    exceeded = [e for e in events if e.type == "budget.exceeded"]
    assert exceeded and exceeded[0].data["budget"] == "maxSteps" and exceeded[0].data["limit"] == 2
    assert not [e for e in events if e.type == "stage.started" and e.path == "p/three"]
    assert [e.path for e in events if e.type == "stage.completed"] == ["p/one", "p/two"]


def test_pipeline_max_parallel_bounds_stages_in_flight(store, tmp_path):
    script = {"worker": [{"content": "ok", "latency": "100ms"}] * 5}
    pipe = {"maxParallel": 2, "stages": [{"name": f"s{i}", "agent": "worker"} for i in range(5)]}
    folder = write_project(tmp_path / "m", script=script, agents=["worker"], pipelines={"p": pipe})
    apply(store, folder, tmp_path / "home")
    result = run(store, "pipeline/p", tmp_path / "home")
    assert result.status == "succeeded", result.error
    events = stream(store, result.id)
    assert max_in_flight(events, "p/") == 2
    assert sum(e.type == "stage.completed" for e in events) == 5
