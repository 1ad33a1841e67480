"""Change recording: what a workspace tool changed, as the data of a ``workspace.changed`` event.

``write_file`` knows the old and new content: a unified diff. ``run_command`` compares a cheap
snapshot (kind, size, mtime of every entry: one ``list_files(recursive=True)``) taken before and
after the command; files it added are diffed against nothing, files it modified are diffed
against the content this run last saw of them (what write_file wrote or read_file read, kept
in memory up to a bound), otherwise listed with their sizes. Binary files are listed, never
diffed. Every diff and the event as a whole are size-capped, with a marker.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

MAX_DIFF = 16 * 1024            # characters of one file's diff
MAX_EVENT_DIFFS = 64 * 1024     # characters of all diffs of one event
MAX_PATHS = 200                 # changes listed in one event
MAX_SNAPSHOT = 20_000           # entries compared; beyond it, the change list says it is partial
CACHE_FILE = 64 * 1024          # bytes of one file kept as "last seen" content
CACHE_TOTAL = 4 * 1024 * 1024   # bytes of all of them, per workspace and run
DIFF_MARKER = "\n[... diff truncated by agentform ...]\n"

Snapshot = dict[str, tuple[str, int, int]]   # path -> (kind, size, mtime_ns)


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    change: Literal["added", "modified", "deleted"]
    size: int | None = None                    # after (None when deleted)
    diff: str | None = None                    # unified diff of a text file

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "change": self.change}
        if self.size is not None:
            out["size"] = self.size
        if self.diff is not None:
            out["diff"] = self.diff
        return out


@dataclass
class SeenContent:
    """The content a run last saw of small files of one workspace (the base of later diffs)."""

    files: dict[str, bytes] = field(default_factory=dict)
    total: int = 0

    def keep(self, path: str, data: bytes | None) -> None:
        old = self.files.pop(path, None)
        if old is not None:
            self.total -= len(old)
        if data is not None and len(data) <= CACHE_FILE and self.total + len(data) <= CACHE_TOTAL:
            self.files[path] = data
            self.total += len(data)

    def get(self, path: str) -> bytes | None:
        return self.files.get(path)


def snapshot_of(listing: Any) -> Snapshot:
    return {e.path: (e.kind, e.size, e.mtime_ns) for e in listing.entries}


def compare(before: Snapshot, after: Snapshot) -> list[tuple[str, str]]:
    """(path, added|modified|deleted) of files (not folders) that differ, sorted by path."""
    out = []
    for path, (kind, size, mtime) in after.items():
        if kind == "dir":
            continue
        old = before.get(path)
        if old is None or old[0] == "dir":
            out.append((path, "added"))
        elif old != (kind, size, mtime):
            out.append((path, "modified"))
    out += [(path, "deleted") for path, (kind, _, _) in before.items() if kind != "dir" and path not in after]
    return sorted(out)


def text_diff(path: str, old: bytes | None, new: bytes | None) -> str | None:
    """A unified diff of two versions of a text file (None: binary, or nothing to compare)."""
    a, b = _text(old), _text(new)
    if a is None or b is None:
        return None
    lines = difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(keepends=True),
                                 fromfile=f"a/{path}" if old is not None else "/dev/null",
                                 tofile=f"b/{path}" if new is not None else "/dev/null")
    out, size = [], 0
    for line in lines:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        size += len(line)
        if size > MAX_DIFF:
            out.append(DIFF_MARKER)
            break
        out.append(line)
    return "".join(out)


def _text(data: bytes | None) -> str | None:
    if data is None:
        return ""
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def event_data(workspace: str, tool: str, call_id: str | None, changes: list[Change],
               partial: bool = False) -> dict[str, Any]:
    """The ``workspace.changed`` data: the workspace, the tool and call, the changes (capped)."""
    listed, budget = [], MAX_EVENT_DIFFS
    for change in changes[:MAX_PATHS]:
        item = change.to_dict()
        diff = item.get("diff")
        if diff is not None:
            if len(diff) > budget:
                item["diff"] = diff[:max(budget, 0)] + DIFF_MARKER if budget > 0 else None
                if item["diff"] is None:
                    del item["diff"]
                    item["diffOmitted"] = True
            budget -= len(diff)
        listed.append(item)
    data: dict[str, Any] = {"workspace": workspace, "tool": tool, "paths": [c.path for c in changes[:MAX_PATHS]],
                            "changes": listed}
    if call_id:
        data["callId"] = call_id
    if len(changes) > MAX_PATHS or partial:
        data["truncated"] = True
        data["total"] = len(changes)
    return data
