"""The read side of ``agentform.Engine`` on SQLite and PostgreSQL: typed, JSON-able views."""

from __future__ import annotations

import asyncio
import json

import pytest

from agentform import (
    Engine,
    NotFound,
    ResourceDetail,
    ResourceStatus,
    RevisionDiff,
    RunPage,
    UsageError,
    ValidationReport,
)

from .helpers import agent, doc, write_project


@pytest.fixture
def engine(tmp_path, store_url):
    with Engine(home=tmp_path / "home", store=store_url) as eng:
        yield eng


def _roundtrip(value):
    """What -o json prints and HTTP returns must be JSON (no dataclass, no tuple key)."""
    return json.loads(json.dumps(value.to_dict()))


def test_validate_reports_every_problem_with_its_location(tmp_path):
    good = write_project(tmp_path / "good", [agent("a")])
    report = Engine.validate(good)
    assert isinstance(report, ValidationReport)
    assert report.ok and report.manifests == 3 and report.files == 1 and report.errors == []
    bad = write_project(tmp_path / "bad", [doc("Agent", "b", {"model": "nope", "instructions": "x"})])
    report = Engine.validate(bad)
    assert not report.ok
    [error] = report.errors
    assert error.file.endswith("all.yaml") and error.line > 1 and "nope" in error.message
    data = _roundtrip(report)
    assert set(data) == {"ok", "diagnostics", "manifests", "files", "skipped"}
    assert data["diagnostics"][0]["line"] == error.line and data["ok"] is False


def test_resources_filter_by_kind_namespace_and_labels(engine, tmp_path):
    root = write_project(tmp_path / "m", [
        agent("a", labels={"tier": "cheap"}), agent("b"), agent("c", namespace="other", labels={"tier": "cheap"})])
    engine.apply(root)
    listed = engine.resources("agents")
    assert all(isinstance(r, ResourceStatus) for r in listed)
    assert [(r.name, r.sync, r.health, r.reason, r.revision) for r in listed] == [
        ("a", "Synced", "Healthy", "Compiled", 1), ("b", "Synced", "Healthy", "Compiled", 1)]
    assert listed[0].revision_at is not None
    assert [(r.namespace, r.name) for r in engine.resources("Agent", namespace=None)] == [
        ("default", "a"), ("default", "b"), ("other", "c")]
    assert [r.name for r in engine.resources("agent", namespace=None, labels={"tier": "cheap"})] == ["a", "c"]
    assert engine.resources("agents", namespace="nowhere") == []
    kinds = {r.kind for r in engine.resources(namespace=None)}
    assert kinds == {"Agent", "Model"}
    data = _roundtrip(listed[0])
    assert data["resource"] == "agent.agentform.dev/default/a" and data["observedGeneration"] == 1
    assert data["conditions"][0]["type"] == "Ready" and data["spec"]["spec"]["instructions"] == "Help."
    with pytest.raises(UsageError, match="unknown kind 'gadget'"):
        engine.resources("gadget")


def test_resource_detail_and_not_found(engine, tmp_path):
    root = write_project(tmp_path / "m", [agent("a")])
    engine.apply(root)
    detail = engine.resource("agent", "a")
    assert isinstance(detail, ResourceDetail)
    assert detail.status.name == "a" and detail.revision is not None and detail.revision.number == 1
    data = _roundtrip(detail)
    assert data["lastRevision"]["number"] == 1 and "changes" not in data["lastRevision"]
    with pytest.raises(NotFound, match='agent "zz" not found in namespace "default"'):
        engine.resource("agents", "zz")
    with pytest.raises(NotFound):
        engine.resource("agent", "a", namespace="other")
    # compared with the manifests on disk: an edit makes it OutOfSync there, not in the store
    write_project(root, [agent("a", instructions="Changed.")])
    assert engine.resource("agent", "a", path=root).status.sync == "OutOfSync"
    assert engine.resources("agents", path=root)[0].sync == "OutOfSync"
    assert engine.resource("agent", "a").status.sync == "Synced"


def test_revisions_and_the_net_diff_between_two(engine, tmp_path):
    root = tmp_path / "app"
    write_project(root, [agent("a"), agent("b")])
    engine.apply(root)                                                        # 1
    write_project(root, [agent("a", instructions="Be brief."), agent("b")])
    engine.apply(root)                                                        # 2: a updated
    write_project(root, [agent("a", instructions="Be brief."), agent("b"), agent("n")])
    engine.apply(root)                                                        # 3: n created
    write_project(root, [agent("a", instructions="Be very brief."), agent("b")])
    engine.apply(root, prune=True)                                            # 4: a updated, n deleted
    other = write_project(tmp_path / "other", [agent("x", namespace="elsewhere")])
    other.joinpath("all.yaml").write_text(other.joinpath("all.yaml").read_text().split("---\n")[-1]
                                          .replace('"model": "m"', '"model": "m2"') + "---\n" +
                                          doc("Model", "m2", {"model": "scripted", "script": "script.yaml"},
                                              namespace="elsewhere"))
    engine.apply(other)                                                       # 5: another app

    revs = engine.revisions()
    assert [r.number for r in revs] == [5, 4, 3, 2, 1]
    assert [r.number for r in engine.revisions(app="app")] == [4, 3, 2, 1]
    assert [r.number for r in engine.revisions(app="app", limit=2)] == [4, 3]
    assert engine.revision(2).summary()["update"] == 1 and _roundtrip(revs[0])["app"] == "other"

    diff = engine.revision_diff("app", 1, 4)
    assert isinstance(diff, RevisionDiff) and diff.revisions == [2, 3, 4]
    [change] = diff.changes   # n was created and deleted in between: no net change
    assert (change.action, change.name) == ("update", "a")
    [field] = change.diff
    assert (field["old"], field["new"]) == ("Help.", "Be very brief.") and field["path"].endswith("instructions")
    assert change.revisions == [2, 4]

    grown = engine.revision_diff("app", 2, 3)
    assert [(c.action, c.name, c.diff) for c in grown.changes] == [("create", "n", [])]
    gone = engine.revision_diff("app", 3, 4)
    assert sorted((c.action, c.name) for c in gone.changes) == [("delete", "n"), ("update", "a")]
    everything = engine.revision_diff(None, 0, 5)
    assert {(c.namespace, c.name) for c in everything.changes if c.kind == "Agent"} == {
        ("default", "a"), ("default", "b"), ("elsewhere", "x")}
    assert all(c.action == "create" for c in everything.changes)
    assert _roundtrip(diff)["changes"][0]["resource"] == "agent.agentform.dev/default/a"

    with pytest.raises(UsageError, match="older revision to a newer one"):
        engine.revision_diff("app", 4, 2)
    with pytest.raises(NotFound, match="revision 9 does not exist"):
        engine.revision_diff("app", 1, 9)
    with pytest.raises(UsageError, match="limit must be between 1 and 1000"):
        engine.revisions(limit=0)


def _record(store, run_id: str, target: str, created_at: float, status: str = "succeeded",
            thread: str | None = None) -> None:
    from agentform.engine.store.base import RunRecord  # test set-up only: runs at chosen times

    store.create_run(RunRecord(id=run_id, target=target, status=status, revision=1, created_at=created_at,
                               thread=thread, finished_at=created_at + 1 if status == "succeeded" else None))


def test_runs_page_newest_first_with_filters_and_a_stable_cursor(engine):
    store = engine.store
    specs = [  # id, target, created_at (ties on purpose), status, thread
        ("r01", "team/default/research", 100.0, "succeeded", "t1"),
        ("r02", "team/default/research", 200.0, "failed", "t1"),
        ("r03", "agent/default/solo", 200.0, "succeeded", None),
        ("r04", "agent/other/solo", 200.0, "queued", "t2"),
        ("r05", "pipeline/default/flow", 300.0, "succeeded", None),
        ("r06", "team/other/research", 400.0, "cancelled", "t2"),
        ("r07", "team/default/research", 500.0, "succeeded", "t1"),
    ]
    for run_id, target, at, status, thread in specs:
        _record(store, run_id, target, at, status, thread)
    newest_first = ["r07", "r06", "r05", "r04", "r03", "r02", "r01"]

    seen, cursor, pages = [], None, 0
    while True:
        page = engine.runs(limit=3, cursor=cursor)
        assert isinstance(page, RunPage) and len(page.items) <= 3
        seen += [r.id for r in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
        _record(store, f"new{pages}", "agent/default/fresh", 1000.0 + pages)   # newer runs do not shift pages
    assert seen == newest_first and pages == 3

    def ids(**filters):
        return [r.id for r in engine.runs(limit=50, **filters).items if not r.id.startswith("new")]

    assert ids(status="failed") == ["r02"]
    assert ids(target="team/research") == ["r07", "r02", "r01"]
    assert ids(target="Team/other/research") == ["r06"]
    assert ids(target="team/research", namespace="other") == ["r06"]
    assert ids(namespace="other") == ["r06", "r04"]
    assert ids(namespace="Other") == [] and ids(namespace="oth%") == []
    assert ids(thread="t2") == ["r06", "r04"]
    assert ids(thread="t1", status="succeeded") == ["r07", "r01"]
    two = engine.runs(target="team/research", limit=2)
    assert [r.id for r in two.items] == ["r07", "r02"]
    rest = engine.runs(target="team/research", limit=2, cursor=two.next_cursor)
    assert [r.id for r in rest.items] == ["r01"] and rest.next_cursor is None

    data = _roundtrip(engine.runs(limit=1, status="failed"))
    assert data["nextCursor"] is None and data["items"][0]["id"] == "r02"
    assert {"id", "target", "status", "revision", "tokens", "cost_usd", "duration_s", "thread",
            "created_at"} <= set(data["items"][0])
    with pytest.raises(UsageError, match="not one a runs listing returned"):
        engine.runs(cursor="garbage!")
    with pytest.raises(UsageError, match="--status must be one of"):
        engine.runs(status="sleeping")
    with pytest.raises(UsageError, match="limit must be between 1 and 1000"):
        engine.runs(limit=1001)
    with pytest.raises(UsageError, match="not a run target"):
        engine.runs(target="research")

    threads = engine.threads()
    assert [(t.thread, t.runs, t.last_run.id) for t in threads] == [("t1", 3, "r07"), ("t2", 2, "r06")]
    assert (threads[0].first_at, threads[0].last_at) == (100.0, 500.0)
    assert [t.thread for t in engine.threads(namespace="other")] == ["t2"]
    assert _roundtrip(threads[1])["lastRun"]["status"] == "cancelled"


def test_a_real_run_lists_and_pages_its_events(engine, tmp_path):
    script = {"agents": {"solo": [{"content": "Hello there.", "usage": {"input": 10, "output": 4}}]}}
    root = write_project(tmp_path / "m", [agent("solo")], script=script)
    engine.apply(root)
    result = asyncio.run(engine.run("agent/solo", input="hi", thread="conv"))
    assert result.status == "succeeded"

    [listed] = engine.runs(target="agent/solo").items
    assert (listed.id, listed.status, listed.tokens, listed.thread) == (result.id, "succeeded", 14, "conv")
    assert engine.run_info(result.id[:10]).id == result.id

    everything = engine.event_page(result.id, limit=1000)
    assert everything[0].type == "run.started" and everything[-1].type == "run.completed"
    assert [e.seq for e in everything] == list(range(1, len(everything) + 1))
    paged, after = [], 0
    while batch := engine.event_page(result.id, after=after, limit=2):
        assert len(batch) <= 2
        paged += batch
        after = batch[-1].seq
    assert paged == everything
    assert engine.event_page(result.id, after=len(everything)) == []
    with pytest.raises(NotFound):
        engine.event_page("no-such-run")
    with pytest.raises(UsageError, match="after must be a seq"):
        engine.event_page(result.id, after=-1)
    with pytest.raises(UsageError, match="limit must be between 1 and 1000"):
        engine.event_page(result.id, limit=5000)
