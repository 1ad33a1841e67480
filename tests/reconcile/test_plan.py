"""The pure planner: field diffs, create/update/delete/orphan/drift, sensitive values, hashes."""

from __future__ import annotations

import pytest

from agentform.engine.desired import make_desired
from agentform.engine.errors import ManifestError
from agentform.engine.plan import SENSITIVE, content_hash, diff_state, field_diff
from agentform.engine.store.base import AppliedResource
from agentform.specs import KINDS


def res(kind: str, name: str, spec: dict, **meta):
    return KINDS[kind].model_validate({"apiVersion": "agentform.dev/v1alpha1", "kind": kind,
                                       "metadata": {"name": name, **meta}, "spec": spec})


def applied(desired, app="demo", **changes) -> AppliedResource:
    return AppliedResource(key=desired.key, app=app, spec=desired.document, spec_hash=desired.spec_hash,
                           **changes)


MODEL = res("Model", "fast", {"model": "openai/gpt-4o-mini", "params": {"temperature": 0.2}})
AGENT = res("Agent", "lead", {"model": "fast", "instructions": "Lead."})


def test_field_diff_reports_only_changed_leaves():
    old = {"spec": {"a": 1, "b": {"c": [1, 2, 3], "d": "x"}}}
    new = {"spec": {"a": 1, "b": {"c": [1, 9, 3], "d": "x"}, "e": True}}
    diff = field_diff(old, new)
    assert [(d.path, d.old, d.new) for d in diff] == [("spec.b.c[1]", 2, 9), ("spec.e", None, True)]


def test_list_insert_shows_only_the_new_item():
    diff = field_diff({"x": ["a", "b", "c"]}, {"x": ["a", "new", "b", "c"]})
    assert [(d.path, d.old, d.new) for d in diff] == [("x[1]", None, "new")]


def test_create_update_unchanged():
    model, agent = make_desired(MODEL), make_desired(AGENT)
    changed = make_desired(res("Model", "fast", {"model": "openai/gpt-4o-mini", "params": {"temperature": 0.5}}))
    plan = diff_state([changed, agent], {model.key: applied(model)}, app="demo")
    assert [(c.action, c.key.name) for c in plan.changes] == [("update", "fast"), ("create", "lead")]
    (update,) = plan.of("update")
    assert [(d.path, d.old, d.new) for d in update.diff] == [("spec.params.temperature", 0.2, 0.5)]
    assert plan.has_changes


def test_orphan_is_no_change_and_prune_deletes():
    model, agent = make_desired(MODEL), make_desired(AGENT)
    state = {model.key: applied(model), agent.key: applied(agent)}
    plan = diff_state([model], state, app="demo")
    assert [(c.action, c.key.name) for c in plan.changes] == [("orphan", "lead")]
    assert not plan.has_changes
    pruned = diff_state([model], state, app="demo", prune=True)
    assert [(c.action, c.key.name) for c in pruned.changes] == [("delete", "lead")]
    assert pruned.has_changes


def test_other_apps_resources_are_never_pruned_and_a_claim_conflicts():
    model, agent = make_desired(MODEL), make_desired(AGENT)
    state = {model.key: applied(model), agent.key: applied(agent, app="other")}
    plan = diff_state([model], state, app="demo", prune=True)
    assert plan.changes == []
    with pytest.raises(ManifestError, match="belongs to app 'other'"):
        diff_state([model, agent], state, app="demo")


def test_drift_only_for_unchanged_resources():
    model = make_desired(MODEL)
    plan = diff_state([model], {model.key: applied(model)}, app="demo", drift={model.key: "gone"})
    assert [(c.action, c.message) for c in plan.changes] == [("drift", "gone")]


def test_secret_bearing_values_are_sensitive():
    old = make_desired(res("Secret", "gh", {"fromEnv": "OLD_TOKEN"}))
    new = make_desired(res("Secret", "gh", {"fromEnv": "NEW_TOKEN"}))
    (change,) = diff_state([new], {old.key: applied(old)}, app="demo").changes
    assert [(d.path, d.old, d.new) for d in change.diff] == [("spec.fromEnv", SENSITIVE, SENSITIVE)]
    ts_old = make_desired(res("ToolServer", "git", {"command": ["x"], "env": {"TOKEN": "plain-1"}}))
    ts_new = make_desired(res("ToolServer", "git", {"command": ["x"], "env": {"TOKEN": "plain-2"}}))
    (change,) = diff_state([ts_new], {ts_old.key: applied(ts_old)}, app="demo").changes
    assert "plain" not in repr(change.to_dict())


def test_content_hash_ignores_order_and_explicit_defaults():
    a, b = make_desired(MODEL), make_desired(AGENT)
    explicit = make_desired(res("Model", "fast", {"model": "openai/gpt-4o-mini", "retries": 2,
                                                  "params": {"temperature": 0.2}}))
    assert content_hash([a, b]) == content_hash([b, a]) == content_hash([b, explicit])
    assert explicit.spec_hash == a.spec_hash


def test_long_text_changes_render_as_a_line_diff():
    from agentform.api.cli.state_views import plan_markdown, plan_text

    text = "line one of the instructions\nline two says something\nline three ends it\n"
    old = make_desired(res("Agent", "lead", {"model": "fast", "instructions": text}))
    new = make_desired(res("Agent", "lead", {"model": "fast", "instructions": text.replace("two", "2")}))
    plan = diff_state([new], {old.key: applied(old)}, app="demo", base_revision=4)
    out = plan_text(plan)
    assert "against revision 4" in out
    assert "spec.instructions:\n" in out
    assert "        -line two says something\n        +line 2 says something\n" in out
    assert "-     line two says something" in plan_markdown(plan)
