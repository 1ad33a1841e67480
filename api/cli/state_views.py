"""How plans and applied resources read on a terminal, in a pull request and as data.

Pure formatting: every function takes records and returns text or plain data.
"""

from __future__ import annotations

import json
import time
from typing import Any

from agentform.engine.plan import SENSITIVE, Change, FieldChange, Plan, display_name, is_sensitive
from agentform.engine.store.base import AppliedResource, Condition

_SIGNS = {"create": "+", "update": "~", "drift": "~", "delete": "-", "orphan": "?"}
_WORDS = {"create": "create", "update": "update", "drift": "drifted", "delete": "delete", "orphan": "orphaned"}
_MD_SIGNS = {"create": "➕", "update": "✏️", "drift": "⚠️", "delete": "🗑️", "orphan": "❔"}


def value_text(value: Any, limit: int = 120) -> str:
    """A diff value on one line: JSON for data, truncated."""
    if value is None:
        return "(none)"
    if value == SENSITIVE:
        return SENSITIVE
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(plan: Plan) -> str:
    n = plan.counts()
    parts = [f"{n['create']} to create", f"{n['update']} to update", f"{n['delete']} to delete"]
    if n["drift"]:
        parts.append(f"{n['drift']} drifted")
    if n["orphan"]:
        parts.append(f"{n['orphan']} orphaned")
    return "Plan: " + ", ".join(parts) + "."


def _against(plan: Plan) -> str:
    return f"revision {plan.base_revision}" if plan.base_revision else "an empty store"


def _is_long_text(value: Any) -> bool:
    return isinstance(value, str) and value != SENSITIVE and ("\n" in value or len(value) > 60)


def text_diff(old: str, new: str) -> list[str]:
    """A long or multi-line string change as a line diff (``- old`` / ``+ new``, one line of context)."""
    import difflib

    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
    return [line for line in lines if not line.startswith(("---", "+++", "@@"))]


def _diff_lines(diff: tuple[FieldChange, ...]) -> list[str]:
    lines = []
    for d in diff:
        if _is_long_text(d.old) and _is_long_text(d.new):
            lines.append(f"{d.path}:")
            lines += ["  " + line for line in text_diff(d.old, d.new)]
        elif d.old is None:
            lines.append(f"{d.path}: + {value_text(d.new)}")
        elif d.new is None:
            lines.append(f"{d.path}: - {value_text(d.old)}")
        else:
            lines.append(f"{d.path}: {value_text(d.old)} → {value_text(d.new)}")
    return lines


def _change_line(c: Change) -> str:
    line = f"{_SIGNS[c.action]} {c.name} {_WORDS[c.action]}"
    if c.action == "orphan":
        line += " (not in the manifests; --prune deletes it)"
    elif c.message:
        line += f": {c.message}"
    if c.source and c.action in ("create", "update"):
        line += f"  ({c.source})"
    return line


def plan_text(plan: Plan) -> str:
    """The plan as terraform shows it: one line per change, field diffs under updates."""
    if not plan.changes:
        return f'No changes: app "{plan.app}" matches {_against(plan)} ({len(plan.desired)} resources).\n'
    out = [f'Plan for app "{plan.app}" against {_against(plan)}:', ""]
    for c in plan.changes:
        out.append("  " + _change_line(c))
        out += ["      " + line for line in _diff_lines(c.diff)]
    out += ["", summary(plan) if plan.has_changes else "No changes (orphans only). " + summary(plan)]
    return "\n".join(out) + "\n"


def plan_markdown(plan: Plan) -> str:
    """A summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""
    out = [f"### agentform plan: `{plan.app}`", ""]
    if not plan.changes:
        return "\n".join(out + [f"No changes against {_against(plan)} ({len(plan.desired)} resources)."]) + "\n"
    out += [f"**{summary(plan).removeprefix('Plan: ')}** Against {_against(plan)}.", "",
            "| | resource | action | source |", "|---|---|---|---|"]
    for c in plan.changes:
        note = f" — {c.message}" if c.message else ""
        out.append(f"| {_MD_SIGNS[c.action]} | `{c.name}` | {_WORDS[c.action]}{_md(note)} | {_md(c.source)} |")
    updates = [c for c in plan.changes if c.diff]
    if updates:
        out += ["", "<details><summary>Field changes</summary>", "", "```diff"]
        for c in updates:
            out.append(f"~ {c.name}")
            for d in c.diff:
                if _is_long_text(d.old) and _is_long_text(d.new):
                    out.append(f"    {d.path}:")
                    out += [f"{line[:1]}     {line[1:]}" for line in text_diff(d.old, d.new)]
                    continue
                if d.old is not None:
                    out.append(f"-   {d.path}: {value_text(d.old)}")
                if d.new is not None:
                    out.append(f"+   {d.path}: {value_text(d.new)}")
        out += ["```", "", "</details>"]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def plan_github(plan: Plan) -> str:
    """GitHub Actions workflow commands: a notice per change at its manifest, then the summary."""
    out = []
    for c in plan.changes:
        level = "warning" if c.action in ("drift", "delete", "orphan") else "notice"
        where = ""
        if c.source and ":" in c.source:
            file, line = c.source.rsplit(":", 1)
            where = f" file={file},line={line}"
        text = _change_line(c).split("  (")[0]
        if c.diff:
            text += "%0A" + "%0A".join(_diff_lines(c.diff))
        out.append(f"::{level}{where}::{text}")
    out.append(f"::notice::{summary(plan)}" if plan.changes else "::notice::No changes.")
    return "\n".join(out) + "\n"


# -- resources ---------------------------------------------------------------------------------


def ready_of(record: AppliedResource) -> Condition | None:
    return next((c for c in record.conditions if c.type == "Ready"), None)


def health(record: AppliedResource) -> str:
    """Argo CD's health axis, from the conditions."""
    if any(c.type == "Reconciling" and c.status == "True" for c in record.conditions):
        return "Progressing"
    ready = ready_of(record)
    if ready is None:
        return "Unknown"
    return {"True": "Healthy", "False": "Degraded"}.get(ready.status, "Unknown")


def sync(record: AppliedResource, desired_hash: str | None = None, compare: bool = False) -> str:
    """Argo CD's sync axis: Synced when the status reflects the applied spec (and matches the manifests)."""
    if record.observed_generation != record.generation:
        return "OutOfSync"
    if compare and desired_hash != record.spec_hash:
        return "OutOfSync"
    return "Synced"


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def masked_spec(record: AppliedResource) -> dict[str, Any]:
    """The applied document for display: sensitive leaves masked, a pinned script summarised."""
    def walk(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, f"{path}.{k}" if path else k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return SENSITIVE if value is not None and is_sensitive(record.key.kind, path) else value

    doc = dict(record.spec)
    resolved = dict(doc.pop("resolved", {}) or {})
    if "script" in resolved:
        agents = resolved["script"].get("agents", {})
        resolved["script"] = f"pinned: {sum(len(t) for t in agents.values())} turns for {len(agents)} agents"
    if resolved:
        doc["resolved"] = resolved
    return walk(doc, "")


def resource_data(record: AppliedResource, sync_state: str, now: float | None = None) -> dict[str, Any]:
    """What ``get -o json`` prints for one resource."""
    return {
        "kind": record.key.kind, "namespace": record.key.namespace, "name": record.key.name,
        "resource": display_name(record.key), "app": record.app, "sync": sync_state, "health": health(record),
        "generation": record.generation, "observedGeneration": record.observed_generation,
        "revision": record.revision, "source": record.source, "labels": record.labels,
        "conditions": [{"type": c.type, "status": c.status, "reason": c.reason, "message": c.message}
                       for c in record.conditions],
        "spec": masked_spec(record),
    }


def now() -> float:
    return time.time()
