"""The operator interface (provision / observe / teardown) and the registry of operators by kind.

An operator turns one desired resource into what it needs outside the store and reports
status conditions; it never raises for an expected failure (a missing secret source): it
returns ``Ready=False`` with a reason instead. The reconciler calls operators in KINDS order.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from agentform.engine.errors import UsageError
from agentform.engine.store.base import AppliedResource, Condition
from agentform.specs import KINDS, ResourceKey

if TYPE_CHECKING:
    from agentform.engine.desired import Desired
    from agentform.engine.graph import Graph


@dataclass
class OperatorContext:
    """What operators may look at: the state folder, the whole desired set and compiled graphs."""

    home: Path
    desired: dict[ResourceKey, Desired] = field(default_factory=dict)
    graphs: dict[ResourceKey, Graph] = field(default_factory=dict)
    compile_errors: dict[ResourceKey, str] = field(default_factory=dict)
    priced_models: set[str] = field(default_factory=set)   # "ns/name" under a maxCostUsd budget
    # False for `plan`: observe only what can be seen without reading a secret's value.
    resolve_secrets: bool = True
    # What the ToolServer operator pinned in this apply ("ns/name" -> tool -> definition hash).
    tool_pins: dict[str, dict[str, str]] = field(default_factory=dict)
    tool_probes: dict[str, tuple[dict[str, str] | None, str]] = field(default_factory=dict)  # started at once
    next_revision: int | None = None   # the revision this apply records (knowledge index status)
    prune_data: bool = False          # apply --prune-data: a pruned Workspace's data is deleted too
    notes: list[str] = field(default_factory=list)   # what teardowns did, for apply's output


class Operator(Protocol):
    kind: str

    def provision(self, ctx: OperatorContext, desired: Desired) -> list[Condition]:
        """Make it so; return the resource's conditions."""
        ...

    def observe(self, ctx: OperatorContext, desired: Desired) -> list[Condition] | None:
        """The conditions as they are now, without changing anything; None when nothing to observe."""
        ...

    def teardown(self, ctx: OperatorContext, applied: AppliedResource) -> None:
        """Remove what provision made (on prune)."""
        ...


class BaseOperator:
    """Defaults: nothing to observe, nothing to tear down."""

    kind = ""

    def provision(self, ctx: OperatorContext, desired: Desired) -> list[Condition]:
        return ready("Reconciled", f"{self.kind} recorded")

    def observe(self, ctx: OperatorContext, desired: Desired) -> list[Condition] | None:
        return None

    def teardown(self, ctx: OperatorContext, applied: AppliedResource) -> None:
        return None


class CompiledOperator(BaseOperator):
    """Agents, Teams and Pipelines: Ready once their graph compiled (the reconciler compiles)."""

    def provision(self, ctx: OperatorContext, desired: Desired) -> list[Condition]:
        if desired.key in ctx.compile_errors:
            return failed("CompileFailed", ctx.compile_errors[desired.key])
        graph = ctx.graphs.get(desired.key)
        if graph is None:
            return failed("CompileFailed", "no graph was compiled")
        return ready("Compiled", f"compiled: {len(graph.agents)} agents, {len(graph.teams)} teams, "
                                 f"{len(graph.pipelines)} pipelines, {len(graph.models)} models")


# -- conditions ---------------------------------------------------------------------------------


def ready(reason: str, message: str) -> list[Condition]:
    return [Condition("Ready", "True", reason, message),
            Condition("Reconciling", "False", reason, ""),
            Condition("Stalled", "False", reason, "")]


def failed(reason: str, message: str) -> list[Condition]:
    """Ready=False and Stalled: it will not get better until the manifest or the machine changes."""
    return [Condition("Ready", "False", reason, message),
            Condition("Reconciling", "False", reason, ""),
            Condition("Stalled", "True", reason, message)]


def unknown(reason: str, message: str) -> list[Condition]:
    return [Condition("Ready", "Unknown", reason, message),
            Condition("Reconciling", "False", reason, ""),
            Condition("Stalled", "False", reason, "")]


def condition(conditions: list[Condition], type_: str = "Ready") -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


# -- registry -----------------------------------------------------------------------------------

_REGISTRY: dict[str, Operator] = {}
_MODULES = {"Secret": "secret", "Model": "model", "ToolServer": "toolserver", "Workspace": "workspace",
            "KnowledgeBase": "knowledgebase", "Agent": "agent", "Team": "team", "Pipeline": "pipeline"}


def register(operator: Operator) -> Operator:
    _REGISTRY[operator.kind] = operator
    return operator


def operator_for(kind: str) -> Operator:
    """The operator of ``kind``; UsageError listing the valid kinds when there is none."""
    if kind not in _REGISTRY and kind in _MODULES:
        importlib.import_module(f"agentform.operators.{_MODULES[kind]}")
    if kind not in _REGISTRY:
        raise UsageError(f"no operator for kind '{kind}'; valid kinds: {', '.join(KINDS)}")
    return _REGISTRY[kind]


def observe_all(items: list[Desired], applied: dict[ResourceKey, AppliedResource], *,
                home: Path | None = None, resolve_secrets: bool = True) -> dict[ResourceKey, str]:
    """Drift: unchanged resources whose observed Ready status differs from the recorded one."""
    ctx = OperatorContext(home=Path(home) if home else Path(".agentform"),
                          desired={d.key: d for d in items}, resolve_secrets=resolve_secrets)
    drift: dict[ResourceKey, str] = {}
    for d in items:
        record = applied.get(d.key)
        if record is None or record.spec_hash != d.spec_hash:
            continue
        observed = operator_for(d.key.kind).observe(ctx, d)
        now, then = condition(observed or []), condition(record.conditions)
        if now is not None and (then is None or now.status != then.status):
            drift[d.key] = f"Ready is now {now.status} ({now.reason}): {now.message}"
    return drift
