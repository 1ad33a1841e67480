"""The journal of a workspace's mutating calls, by idempotency key: a re-executed call is a no-op.

A run killed after ``write_file`` or ``run_command`` acted but before its ``tool.result`` was
durable calls it again on resume with the same key (``<run>:<path>:<call id>``). The journal,
``<home>/workspaces/.meta/<namespace>--<name>.journal.jsonl``, holds each finished call's result
(or error) and the ``workspace.changed`` data it emitted; the repeat returns that instead of
acting again. Appended one line per call (a line is written whole or, cut by a kill, ignored);
trimmed to the newest ``KEEP`` entries when it grows past ``MAX_BYTES``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

MAX_BYTES = 8 * 1024 * 1024
KEEP = 200
_lock = threading.Lock()


def journal_path(ws: Any) -> Path:
    """Where the journal of workspace ``ws`` (a WorkspaceConfig) lives, whatever its backend:
    machine-local, next to the engine's other notes about its workspaces."""
    return Path(os.path.abspath(ws.home)) / "workspaces" / ".meta" / f"{ws.slug}.journal.jsonl"


class Journal:
    """One workspace's journal as one run sees it: read once (a repeat only ever concerns calls
    made before this run's process started it), then kept in step with what it records."""

    def __init__(self, path: Path):
        self.path = path
        self._index: dict[str, dict[str, Any]] | None = None

    def find(self, key: str) -> dict[str, Any] | None:
        """The entry recorded under ``key`` (the newest), or None."""
        if not key:
            return None
        if self._index is None:
            self._index = {str(e.get("key")): e for e in self._entries()}
        return self._index.get(key)

    def record(self, key: str, *, result: Any = None, error: str | None = None,
               changed: dict[str, Any] | None = None) -> None:
        if not key:
            return
        entry: dict[str, Any] = {"key": key}
        if error is not None:
            entry["error"] = error
        else:
            entry["result"] = result
        if changed is not None:
            entry["changed"] = changed
        if self._index is not None:
            self._index[key] = entry
        line = json.dumps(entry, ensure_ascii=False, default=str) + "\n"
        with _lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
            self._trim()

    def _entries(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:     # a line cut by a kill
                continue
        return out

    def _trim(self) -> None:
        if self.path.stat().st_size <= MAX_BYTES:
            return
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(lines[-KEEP:]), encoding="utf-8")
        os.replace(tmp, self.path)
