"""Plan: desired against applied, as a list of changes (create / update / delete / drift).

``diff_state`` is pure: it takes the desired documents, the applied records and what the
operators observed, and returns a Plan. ``make_plan`` gathers those inputs from a
ManifestSet and a store, then calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from agentform.engine.desired import Desired, kind_order
from agentform.engine.errors import Diagnostic, ManifestError
from agentform.engine.hashing import set_hash
from agentform.specs import API_GROUP, ResourceKey

if TYPE_CHECKING:
    from agentform.engine.loader import ManifestSet
    from agentform.engine.store.base import AppliedResource, Store

Action = Literal["create", "update", "delete", "orphan", "drift"]
SENSITIVE = "(sensitive)"
CHANGING: frozenset[str] = frozenset({"create", "update", "delete", "drift"})


def display_name(key: ResourceKey) -> str:
    """kubectl style: ``agent.agentform.dev/default/researcher``."""
    return f"{key.kind.lower()}.{API_GROUP}/{key.namespace}/{key.name}"


@dataclass(frozen=True)
class FieldChange:
    """One changed leaf: its dotted path, old and new values (``(sensitive)`` when secret-bearing)."""

    path: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class Change:
    action: Action
    key: ResourceKey
    diff: tuple[FieldChange, ...] = ()
    message: str = ""
    source: str = ""

    @property
    def name(self) -> str:
        return display_name(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action, "kind": self.key.kind, "namespace": self.key.namespace,
            "name": self.key.name, "resource": self.name, "source": self.source,
            "message": self.message, "diff": [d.to_dict() for d in self.diff],
        }


@dataclass
class Plan:
    """What apply would do. ``base_revision``/``applied_hash`` pin the store state it was made against."""

    app: str
    changes: list[Change]
    desired: list[Desired]
    unchanged: list[ResourceKey] = field(default_factory=list)
    prune: bool = False
    base_revision: int | None = None
    applied_hash: str = ""
    content_hash: str = ""
    applied: dict[ResourceKey, AppliedResource] = field(default_factory=dict, repr=False)  # as read

    @property
    def has_changes(self) -> bool:
        """Orphans alone are no change."""
        return any(c.action in CHANGING for c in self.changes)

    def of(self, action: Action) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    def counts(self) -> dict[str, int]:
        return {a: len(self.of(a)) for a in ("create", "update", "delete", "drift", "orphan")}

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app, "prune": self.prune, "baseRevision": self.base_revision,
            "appliedHash": self.applied_hash, "contentHash": self.content_hash,
            "hasChanges": self.has_changes, "summary": self.counts(),
            "changes": [c.to_dict() for c in self.changes],
        }


# -- field diffs ----------------------------------------------------------------------------

_SENSITIVE_KEYS = {"apiKey", "env", "headers", "sealed", "fromEnv", "fromFile"}


def is_sensitive(kind: str, path: str) -> bool:
    """Values that are or may carry secrets: a Secret's spec, env, headers and API keys."""
    parts = path.replace("[", ".[").split(".")
    if kind == "Secret" and (parts[0] in ("spec", "resolved")):
        return True
    return any(p in _SENSITIVE_KEYS for p in parts)


def field_diff(old: Any, new: Any, kind: str = "", path: str = "") -> list[FieldChange]:
    """The changed leaves between two plain-data trees (equal subtrees are skipped)."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[FieldChange] = []
        for k in sorted(set(old) | set(new)):
            sub = f"{path}.{k}" if path else str(k)
            out += field_diff(old.get(k), new.get(k), kind, sub)
        return out
    if isinstance(old, list) and isinstance(new, list):
        return _list_diff(old, new, kind, path)
    if is_sensitive(kind, path):
        return [FieldChange(path, SENSITIVE if old is not None else None,
                            SENSITIVE if new is not None else None)]
    return [FieldChange(path, old, new)]


def _list_diff(old: list, new: list, kind: str, path: str) -> list[FieldChange]:
    # Equal heads and tails are skipped, so inserting one item does not show every later one.
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    mid_old, mid_new = old[head:len(old) - tail], new[head:len(new) - tail]
    if len(mid_old) == len(mid_new):
        out: list[FieldChange] = []
        for i, (a, b) in enumerate(zip(mid_old, mid_new, strict=True)):
            out += field_diff(a, b, kind, f"{path}[{head + i}]")
        return out
    return (
        [_leaf(kind, f"{path}[{head + i}]", v, None) for i, v in enumerate(mid_old)]
        + [_leaf(kind, f"{path}[{head + i}]", None, v) for i, v in enumerate(mid_new)]
    )


def _leaf(kind: str, path: str, old: Any, new: Any) -> FieldChange:
    if is_sensitive(kind, path):
        return FieldChange(path, SENSITIVE if old is not None else None,
                           SENSITIVE if new is not None else None)
    return FieldChange(path, old, new)


# -- the plan ---------------------------------------------------------------------------------


def applied_state_hash(applied: list[AppliedResource]) -> str:
    """A hash of everything the store has applied (any app), to detect a stale saved plan."""
    return set_hash((f"{r.app}:{r.key}", r.spec_hash) for r in applied)


def content_hash(desired: list[Desired]) -> str:
    """The revision's content hash: order-independent over every desired resource."""
    return set_hash((str(d.key), d.spec_hash) for d in desired)


def diff_state(
    desired: list[Desired],
    applied: dict[ResourceKey, AppliedResource],
    *,
    app: str,
    prune: bool = False,
    drift: dict[ResourceKey, str] | None = None,
    base_revision: int | None = None,
    applied_hash: str = "",
) -> Plan:
    """Compare desired to applied. Raises ManifestError when a resource belongs to another app."""
    drift = drift or {}
    conflicts = [
        Diagnostic(d.file or "<manifests>", d.line, d.col,
                   f"{display_name(d.key)} belongs to app '{applied[d.key].app}', not '{app}'; "
                   "remove it from one of them (or apply with --app "
                   f"{applied[d.key].app})", code="app-conflict")
        for d in desired if d.key in applied and applied[d.key].app != app
    ]
    if conflicts:
        raise ManifestError(sorted(conflicts))
    changes: list[Change] = []
    unchanged: list[ResourceKey] = []
    for d in desired:
        current = applied.get(d.key)
        if current is None:
            changes.append(Change("create", d.key, source=d.source))
        elif current.spec_hash != d.spec_hash:
            diff = field_diff(current.spec, d.document, d.key.kind)
            changes.append(Change("update", d.key, tuple(diff), source=d.source))
        elif d.key in drift:
            changes.append(Change("drift", d.key, message=drift[d.key], source=d.source))
        else:
            unchanged.append(d.key)
    wanted = {d.key for d in desired}
    gone = sorted((k for k, r in applied.items() if r.app == app and k not in wanted), key=kind_order)
    for key in reversed(gone):  # dependents first when deleting
        changes.append(Change("delete" if prune else "orphan", key, source=applied[key].source))
    return Plan(app=app, changes=changes, desired=desired, unchanged=unchanged, prune=prune,
                base_revision=base_revision, applied_hash=applied_hash,
                content_hash=content_hash(desired), applied=applied)


# Reasons a run records in a resource's status when what it met differs from what apply pinned
# (a ToolServer's changed tool definition), and reasons of an apply that did not get the
# resource Ready (a compile that failed on what another app had not applied yet, an index or
# a workspace whose provisioning failed): `plan` shows them as drift and `apply` tries again,
# as Terraform re-creates a tainted resource, rather than saying "no changes" over a failure.
OBSERVED_DRIFT: frozenset[str] = frozenset({"ToolDefinitionChanged", "CompileFailed", "IndexFailed",
                                            "ProvisionFailed"})


def recorded_drift(desired: list[Desired], applied: dict[ResourceKey, AppliedResource]) -> dict[ResourceKey, str]:
    """Drift a run observed and recorded in the status of a resource whose spec is unchanged."""
    out: dict[ResourceKey, str] = {}
    for d in desired:
        record = applied.get(d.key)
        if record is None or record.spec_hash != d.spec_hash:
            continue
        ready = next((c for c in record.conditions if c.type == "Ready"), None)
        if ready is not None and ready.reason in OBSERVED_DRIFT:
            out[d.key] = f"{ready.reason}: {ready.message}"
    return out


def make_plan(desired: ManifestSet | list[Desired], store: Store, app: str, *, prune: bool = False,
              home=None, resolve_secrets: bool = True) -> Plan:
    """Plan ``desired`` (a validated ManifestSet or Desired list) against ``store`` for ``app``.

    ``resolve_secrets=False`` (the ``plan`` command) observes secrets without reading their values."""
    from agentform.engine import desired as desired_mod
    from agentform.operators.base import observe_all

    items = desired if isinstance(desired, list) else desired_mod.from_manifest_set(desired)
    records = store.list_resources()
    applied = {r.key: r for r in records}
    latest = store.latest_revision()
    drift = observe_all(items, applied, home=home, resolve_secrets=resolve_secrets)
    drift.update(recorded_drift(items, applied))
    return diff_state(items, applied, app=app, prune=prune, drift=drift,
                      base_revision=latest.number if latest else None,
                      applied_hash=applied_state_hash(records))
