"""``gc`` on SQLite and PostgreSQL: what expired goes with its events and artifacts; queued,
running and waiting runs, runs of a thread still in use and a kept fork's origins stay."""

from __future__ import annotations

import pytest

from agentform import Engine, GcReport, UsageError

from .helpers import age, present, project, record


@pytest.fixture
def engine(tmp_path, store_url):
    with Engine(home=tmp_path / "home", store=store_url) as eng:
        eng.apply(project(tmp_path / "m"))
        yield eng


async def test_only_finished_runs_past_retention_go_and_dry_run_deletes_nothing(engine):
    store = engine.store
    old_ok = (await engine.run("agent/ok", input="x")).id
    old_failed = await engine.run("agent/boom", input="x")
    assert old_failed.status == "failed"
    waiting = await engine.run("pipeline/gate")
    assert waiting.status == "waiting"
    cancelled = await engine.run("pipeline/gate")
    engine.cancel(cancelled.id)
    assert engine.get_run(cancelled.id).status == "cancelled"
    record(store, "queued0000000000000000000a", "queued", days=90)
    record(store, "running000000000000000000a", "running", days=90, events=5)
    for run_id in (old_ok, old_failed.id, waiting.id, cancelled.id):
        age(store, run_id, days=40)
    recent = (await engine.run("agent/ok", input="y")).id
    everyone = [old_ok, old_failed.id, waiting.id, cancelled.id, "queued0000000000000000000a",
                "running000000000000000000a", recent]
    before = present(store, everyone)
    expired = {old_ok, old_failed.id, cancelled.id}

    dry = engine.gc("30d", dry_run=True)
    assert isinstance(dry, GcReport) and dry.dry_run
    assert {r.id for r in dry.runs} == expired
    assert dry.events == sum(before[i] for i in expired) and dry.kept == [] and dry.threads == []
    assert present(store, everyone) == before               # nothing deleted

    done = engine.gc("30d")
    assert {r.id for r in done.runs} == expired and done.events == dry.events
    kept = {i: n for i, n in before.items() if i not in expired}
    assert present(store, everyone) == kept                  # the rest, events and all
    assert engine.get_run(waiting.id).status == "waiting"
    data = done.to_dict()
    assert data["events"] == dry.events and {r["id"] for r in data["runs"]} == expired and not data["dryRun"]
    assert engine.gc("30d").runs == []                       # nothing left to do
    assert [r.id for r in engine.gc("1ms").runs] == [recent]  # finished just now: past a 1 ms retention
    assert set(present(store, everyone)) == {waiting.id, "queued0000000000000000000a", "running000000000000000000a"}


async def test_threads_go_whole_and_a_kept_fork_keeps_its_origins(engine):
    store = engine.store
    t1 = (await engine.run("agent/ok", input="a", thread="old")).id
    t2 = (await engine.run("agent/ok", input="b", thread="old")).id
    m1 = (await engine.run("agent/ok", input="c", thread="mixed")).id
    origin = (await engine.run("agent/ok", input="d")).id
    fork1 = (await engine.fork(origin, 1)).id                   # origin <- fork1 <- fork2
    fork2 = (await engine.fork(fork1, 1)).id
    lone = (await engine.run("agent/ok", input="e")).id
    lone_fork = (await engine.fork(lone, 1)).id
    for run_id in (t1, t2, m1, origin, fork1, lone, lone_fork):
        age(store, run_id, days=40)
    m2 = (await engine.run("agent/ok", input="f", thread="mixed")).id   # the thread is still in use
    assert store.get_run(fork2).thread is None

    report = engine.gc("30d")
    assert {r.id for r in report.runs} == {t1, t2, lone, lone_fork}
    assert report.threads == ["old"]
    reasons = {k.id: k.reason for k in report.kept}
    assert reasons == {m1: "thread mixed has a run that has not expired",
                       fork1: f"its fork {fork2} is kept", origin: f"its fork {fork1} is kept"}
    assert set(present(store, [t1, t2, m1, m2, origin, fork1, fork2, lone, lone_fork])) == {
        m1, m2, origin, fork1, fork2}

    age(store, fork2, days=40)
    age(store, m2, days=31)
    report = engine.gc("30d")
    assert {r.id for r in report.runs} == {origin, fork1, fork2, m1, m2} and report.kept == []
    assert report.threads == ["mixed"]


async def test_a_deleted_runs_tool_server_log_sections_go_and_the_rest_stays(engine, tmp_path):
    log = tmp_path / "home" / "logs" / "toolservers" / "default-talker.log"
    old = await engine.run("agent/talker", input="x")
    assert old.status == "succeeded", old.error
    new = await engine.run("agent/talker", input="y")
    assert new.status == "succeeded", new.error
    text = log.read_text()
    assert f"--- run {old.id}: starting default/talker" in text and f"--- run {new.id}: " in text
    start, end = text.index(f"--- run {old.id}: "), text.index(f"--- run {new.id}: ")
    assert start < end and "talker said hello" in text[start:end] and "talker said hello" in text[end:]
    assert text[:start].startswith("--- run apply: ")   # apply's probe of the server: no run, kept
    age(engine.store, old.id, days=40)

    dry = engine.gc("30d", dry_run=True)
    assert dry.artifacts == [str(log)] and dry.log_sections == 1 and log.read_text() == text
    report = engine.gc("30d")
    assert [r.id for r in report.runs] == [old.id]
    assert report.artifacts == [str(log)] and report.log_sections == 1
    assert log.read_text() == text[:start] + text[end:]   # byte for byte, less the old run's section


def test_bad_ages_are_usage_errors_naming_where(engine, tmp_path):
    with pytest.raises(UsageError, match="--older-than: 'soon' is not an age; write one such as 30d"):
        engine.gc("soon")
    with pytest.raises(UsageError, match="--older-than: '0d' must be more than 0"):
        engine.gc("0d")
    (tmp_path / "home" / "config.yaml").write_text("retention: [30d]\n")
    with pytest.raises(UsageError, match=r"config.yaml: retention: \['30d'\] is not an age"):
        engine.gc(dry_run=True)
