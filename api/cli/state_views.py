"""How plans read on a terminal, in a pull request and as GitHub annotations; ages.

Pure formatting: every function takes the Plan ``Engine.plan`` returns and gives text.
"""

from __future__ import annotations

import json
from typing import Any

from agentform import SENSITIVE

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


def summary(plan: Any) -> str:
    n = plan.counts()
    parts = [f"{n['create']} to create", f"{n['update']} to update", f"{n['delete']} to delete"]
    if n["drift"]:
        parts.append(f"{n['drift']} drifted")
    if n["orphan"]:
        parts.append(f"{n['orphan']} orphaned")
    return "Plan: " + ", ".join(parts) + "."


def _against(plan: Any) -> str:
    return f"revision {plan.base_revision}" if plan.base_revision else "an empty store"


def _is_long_text(value: Any) -> bool:
    return isinstance(value, str) and value != SENSITIVE and ("\n" in value or len(value) > 60)


def text_diff(old: str, new: str) -> list[str]:
    """A long or multi-line string change as a line diff (``- old`` / ``+ new``, one line of context)."""
    import difflib

    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
    return [line for line in lines if not line.startswith(("---", "+++", "@@"))]


def _diff_lines(diff: tuple[Any, ...]) -> list[str]:
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


def _change_line(c: Any) -> str:
    line = f"{_SIGNS[c.action]} {c.name} {_WORDS[c.action]}"
    if c.action == "orphan":
        line += " (not in the manifests; --prune deletes it)"
    elif c.message:
        line += f": {c.message}"
    if c.source and c.action in ("create", "update"):
        line += f"  ({c.source})"
    return line


def plan_text(plan: Any) -> str:
    """The plan as terraform shows it: one line per change, field diffs under updates."""
    if not plan.changes:
        return f'No changes: app "{plan.app}" matches {_against(plan)} ({len(plan.desired)} resources).\n'
    out = [f'Plan for app "{plan.app}" against {_against(plan)}:', ""]
    for c in plan.changes:
        out.append("  " + _change_line(c))
        out += ["      " + line for line in _diff_lines(c.diff)]
    out += ["", summary(plan) if plan.has_changes else "No changes (orphans only). " + summary(plan)]
    return "\n".join(out) + "\n"


def plan_markdown(plan: Any) -> str:
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


def plan_github(plan: Any) -> str:
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


# -- ages -----------------------------------------------------------------------------------------


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
