"""Operators through their registry: conditions per kind, without a store."""

from __future__ import annotations

import pytest

from agentform.engine.compile import compile_graph, models_under_cost_cap
from agentform.engine.desired import make_desired
from agentform.engine.errors import UsageError
from agentform.operators.base import OperatorContext, condition, operator_for

from .test_plan import res


def ready_of(conditions):
    found = condition(conditions)
    return (found.status, found.reason)


def test_unknown_kind_lists_the_valid_ones():
    with pytest.raises(UsageError, match="valid kinds: Secret, Model, ToolServer, Workspace, KnowledgeBase, "
                                         "Agent, Team, Pipeline"):
        operator_for("Gadget")


def test_not_yet_provisioned_kinds_report_unknown(tmp_path):
    ctx = OperatorContext(home=tmp_path)
    # A lazy ToolServer that apply cannot start is not pinned yet (pinned at first use).
    missing = res("ToolServer", "git", {"command": [str(tmp_path / "no-such-server")]})
    assert ready_of(operator_for("ToolServer").provision(ctx, make_desired(missing))) == ("Unknown", "NotPinned")
    # a Workspace is provisioned at apply (tests/workspaces/test_operator.py)
    room = operator_for("Workspace").provision(ctx, make_desired(res("Workspace", "room", {})))
    assert ready_of(room) == ("True", "Provisioned") and (tmp_path / "workspaces" / "default" / "room").is_dir()
    # a KnowledgeBase is indexed at apply (tests/knowledge/); without the sources plan pins, it says so
    kb = operator_for("KnowledgeBase").provision(ctx, make_desired(res("KnowledgeBase", "docs",
                                                                       {"sources": [{"path": "*.md"}]})))
    assert ready_of(kb) == ("False", "IndexFailed") and "no pinned sources" in condition(kb).message
    assert {c.type for c in kb} == {"Ready", "Reconciling", "Stalled"}


def test_sealed_secret_without_an_engine_key(tmp_path):
    secret = make_desired(res("Secret", "gh", {"sealed": "afs1:" + "B" * 80}))
    conditions = operator_for("Secret").provision(OperatorContext(home=tmp_path), secret)
    assert ready_of(conditions) == ("False", "KeyNotFound")
    assert condition(conditions, "Stalled").status == "True"


def test_team_budget_without_a_price_marks_the_model(tmp_path):
    items = [make_desired(r) for r in (
        res("Model", "mystery", {"model": "nowhere/unknown-x"}),
        res("Model", "known", {"model": "openai/gpt-4o-mini"}),
        res("Agent", "lead", {"model": "known"}),
        res("Agent", "helper", {"model": "mystery"}),
        res("Team", "crew", {"manager": "lead", "members": [{"agent": "helper"}], "budget": {"maxCostUsd": 1}}),
    )]
    graph = compile_graph(items[-1], items)
    ctx = OperatorContext(home=tmp_path, priced_models=models_under_cost_cap(graph))
    assert ctx.priced_models == {"default/mystery", "default/known"}
    assert ready_of(operator_for("Model").provision(ctx, items[0])) == ("True", "PricingUnknown")
    assert ready_of(operator_for("Model").provision(ctx, items[1])) == ("True", "Configured")


def test_compiled_kinds_are_ready_once_compiled_and_failed_otherwise(tmp_path):
    items = [make_desired(r) for r in (res("Model", "m", {"model": "openai/gpt-4o-mini"}),
                                       res("Agent", "a", {"model": "m"}))]
    ctx = OperatorContext(home=tmp_path)
    ctx.graphs[items[1].key] = compile_graph(items[1], items)
    assert ready_of(operator_for("Agent").provision(ctx, items[1])) == ("True", "Compiled")
    ctx.compile_errors[items[1].key] = "Agent default/a refers to Model default/m, which does not exist"
    assert ready_of(operator_for("Agent").provision(ctx, items[1])) == ("False", "CompileFailed")
