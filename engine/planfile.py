"""Saved plans (``plan --out FILE``, ``apply FILE``): the plan and the exact desired documents.

A saved plan pins the store state it was made against (latest revision number and a hash
of everything applied); ``apply FILE`` refuses it (PlanStale) when the store changed since.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentform.engine.desired import Desired, from_document
from agentform.engine.errors import PlanStale, UsageError
from agentform.engine.plan import Plan

PLAN_KIND = "AgentformPlan"
PLAN_VERSION = 1


@dataclass
class SavedPlan:
    app: str
    prune: bool
    root: str
    base_revision: int | None
    applied_hash: str
    actions: list[tuple[str, str]]             # (action, resource key) of the changing entries
    desired: list[Desired]
    failed_files: list[str] = field(default_factory=list)


def save_plan(plan: Plan, path: Path, *, root: Path, failed_files: list[str]) -> None:
    """Write ``plan`` and its desired documents to ``path`` as JSON."""
    data: dict[str, Any] = {
        "kind": PLAN_KIND, "version": PLAN_VERSION, "root": str(root), "failedFiles": failed_files,
        "plan": plan.to_dict(),
        "desired": [{"source": d.source, "document": d.document} for d in plan.desired],
    }
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def is_plan_file(path: Path) -> bool:
    """Does ``path`` look like a saved plan (a JSON file whose kind is AgentformPlan)?"""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() in (".yaml", ".yml"):
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(4096).lstrip()
    except OSError:
        return False
    return head.startswith(b"{") and PLAN_KIND.encode() in head


def load_plan(path: Path) -> SavedPlan:
    """Read a saved plan; UsageError when it is not one this engine wrote."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable plan file: {exc}") from None
    if data.get("kind") != PLAN_KIND or data.get("version") != PLAN_VERSION:
        raise UsageError(f"{path}: not an agentform plan (version {PLAN_VERSION})")
    plan = data["plan"]
    return SavedPlan(
        app=plan["app"], prune=plan["prune"], root=data.get("root", ""),
        base_revision=plan["baseRevision"], applied_hash=plan["appliedHash"],
        actions=sorted((c["action"], c["resource"]) for c in plan["changes"]
                       if c["action"] in ("create", "update", "delete")),
        desired=[from_document(d["document"], d.get("source", "")) for d in data["desired"]],
        failed_files=list(data.get("failedFiles", [])),
    )


def check_fresh(saved: SavedPlan, current: Plan, path: Path) -> None:
    """PlanStale unless the store is where it was when the plan was made and the plan is the same."""
    if saved.base_revision != current.base_revision or saved.applied_hash != current.applied_hash:
        raise PlanStale(
            f"{path}: the store changed since this plan was made (planned against revision "
            f"{saved.base_revision or 'none'}, now {current.base_revision or 'none'}); run plan again"
        )
    now = sorted((c.action, c.name) for c in current.changes if c.action in ("create", "update", "delete"))
    if now != saved.actions:
        raise PlanStale(f"{path}: the plan no longer matches the store; run plan again")
