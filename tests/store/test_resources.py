"""Resources, revisions and graphs on both backends."""

from __future__ import annotations

import pytest

from agentform.engine.errors import NotFound, StoreError
from agentform.engine.store.base import AppliedResource, Condition, RevisionRecord
from agentform.specs import ResourceKey

AGENT = ResourceKey("Agent", "default", "writer")
TEAM = ResourceKey("Team", "default", "research")
MODEL = ResourceKey("Model", "default", "fast")


def rev(app: str = "demo", content_hash: str = "h1") -> RevisionRecord:
    return RevisionRecord(number=0, content_hash=content_hash, app=app, author="alice", created_at=1000.0,
                          git_commit="abc123", git_dirty=True, changes=[{"op": "create"}], extra={"prices": {"fast": 1.5}})


def res(key: ResourceKey, app: str = "demo", **spec) -> AppliedResource:
    return AppliedResource(key=key, app=app, spec=spec or {"model": "fast"}, spec_hash=f"hash-{spec}",
                           source="agents.yaml:3", labels={"tier": "cheap"})


def test_revisions_are_numbered_and_read_back(store):
    assert store.latest_revision() is None
    first = store.commit_revision(rev(), [res(MODEL)], [], {})
    second = store.commit_revision(rev(content_hash="h2"), [res(AGENT)], [], {})
    assert (first.number, second.number) == (1, 2)
    assert store.latest_revision() == second
    assert store.get_revision(1) == first
    assert store.get_revision(3) is None
    assert [r.number for r in store.list_revisions()] == [2, 1]
    got = store.get_revision(1)
    assert got.git_dirty is True and got.changes == [{"op": "create"}] and got.extra == {"prices": {"fast": 1.5}}


def test_upserts_update_and_record_the_revision(store):
    store.commit_revision(rev(), [res(AGENT, model="fast")], [], {})
    store.commit_revision(rev(), [res(AGENT, model="slow")], [], {})
    got = store.get_resource(AGENT)
    assert got.spec == {"model": "slow"} and got.revision == 2
    assert got.labels == {"tier": "cheap"} and got.source == "agents.yaml:3"
    assert store.get_resource(TEAM) is None


def _unencodable(key: ResourceKey) -> AppliedResource:
    broken = res(key)
    broken.spec = {"bad": object()}          # not JSON: fails inside the transaction
    return broken


def _out_of_range(key: ResourceKey) -> AppliedResource:
    broken = res(key)
    broken.generation = 2**70                # the database refuses it, mid-transaction
    return broken


@pytest.mark.parametrize("make_broken, error", [(_unencodable, TypeError), (_out_of_range, Exception)],
                         ids=["unencodable-spec", "database-refuses-row"])
def test_a_failing_upsert_rolls_back_the_whole_revision(store, make_broken, error):
    store.commit_revision(rev(), [res(MODEL)], [], {})
    broken = make_broken(TEAM)
    with pytest.raises(error):
        store.commit_revision(rev(content_hash="h2"), [res(AGENT), broken], [MODEL], {AGENT: {"nodes": []}})
    assert store.latest_revision().number == 1
    assert store.get_resource(AGENT) is None
    assert store.get_resource(MODEL) is not None          # the delete was rolled back too
    assert store.get_graph(AGENT) is None
    # and numbering continues without a gap
    assert store.commit_revision(rev(content_hash="h3"), [], [], {}).number == 2


def test_graph_lookup_by_revision(store):
    store.commit_revision(rev(), [res(TEAM)], [], {TEAM: {"v": 1}})              # 1
    store.commit_revision(rev(), [res(AGENT)], [], {AGENT: {"a": 1}})            # 2
    store.commit_revision(rev(), [res(TEAM, x=2)], [], {TEAM: {"v": 3}})         # 3
    store.commit_revision(rev(), [], [TEAM], {})                                 # 4
    assert store.get_graph(TEAM, 1) == {"v": 1}
    assert store.get_graph(TEAM, 2) == {"v": 1}
    assert store.get_graph(TEAM, 3) == {"v": 3}
    assert store.get_graph(TEAM, 4) is None                  # deleted at 4
    assert store.get_graph(TEAM) is None
    assert store.get_graph(AGENT) == {"a": 1}
    assert store.get_graph(AGENT, 1) is None                 # not compiled yet


def test_delete_and_compile_the_same_key_is_refused(store):
    with pytest.raises(StoreError):
        store.commit_revision(rev(), [], [TEAM], {TEAM: {}})


def test_inventory_per_app(store):
    other = ResourceKey("Agent", "ops", "pager")
    store.commit_revision(rev(), [res(AGENT), res(TEAM)], [], {})
    store.commit_revision(rev(app="ops"), [res(other, app="ops")], [], {})
    assert store.inventory("demo") == {AGENT, TEAM}
    assert store.inventory("ops") == {other}
    assert store.inventory("none") == set()
    store.commit_revision(rev(), [], [TEAM], {})
    assert store.inventory("demo") == {AGENT}


def test_list_resources_filters(store):
    other = ResourceKey("Agent", "ops", "pager")
    store.commit_revision(rev(), [res(AGENT), res(TEAM), res(other)], [], {})
    assert [r.key for r in store.list_resources()] == [AGENT, other, TEAM]
    assert [r.key for r in store.list_resources(kind="Agent")] == [AGENT, other]
    assert [r.key for r in store.list_resources(kind="Agent", namespace="ops")] == [other]
    assert all(isinstance(r.key, ResourceKey) for r in store.list_resources())


def test_set_status_stores_conditions(store):
    store.commit_revision(rev(), [res(AGENT)], [], {})
    conditions = [Condition("Ready", "False", "SourceNotFound", "env GITHUB_TOKEN is not set"),
                  Condition("Stalled", "True", "SourceNotFound")]
    store.set_status(AGENT, conditions, 1)
    got = store.get_resource(AGENT)
    assert got.conditions == conditions and got.observed_generation == 1
    with pytest.raises(NotFound):
        store.set_status(TEAM, conditions, 1)


def test_concurrent_commits_get_distinct_numbers(store):
    import threading

    numbers: list[int] = []
    lock = threading.Lock()

    def commit(i: int) -> None:
        got = store.commit_revision(rev(content_hash=f"h{i}"), [res(ResourceKey("Agent", "default", f"a{i}"))], [], {})
        with lock:
            numbers.append(got.number)

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(numbers) == list(range(1, 9))
    assert {r.number for r in store.list_revisions()} == set(range(1, 9))
