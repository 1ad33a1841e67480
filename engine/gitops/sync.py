"""One sync of an app: apply a folder of manifests and record how it went (table app_sync).

apply validates before it changes anything, so a commit that does not validate is not
applied: the app's last good revision stays in force, and the error is recorded with its
commit and time. What a sync can end as (``SyncResult.outcome``):

    applied     a new revision was recorded (resources that are not Ready are listed in ``error``)
    unchanged   the manifests match what is applied; nothing was written but the status
    invalid     the manifests do not validate, or prune was refused: nothing applied; the
                same commit gives the same answer, so a watcher does not try it again
    failed      something outside the manifests (the store, the apply lock, git): nothing
                applied; a watcher tries again at its next tick
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentform.engine.errors import AgentformError, Diagnostic, ManifestError, printable
from agentform.engine.redaction import redact_text
from agentform.engine.store.base import AppSyncRecord, Store

LOCK_WAIT = 30.0           # seconds a sync waits for another apply to finish
_ERROR_MAX = 8000          # characters of an error kept in the store


@dataclass
class SyncResult:
    """What one sync did; ``to_dict`` is what ``watch -o json`` prints, one line per sync."""

    app: str
    source: str
    outcome: str                               # applied | unchanged | invalid | failed
    at: float
    commit: str | None = None
    revision: int | None = None                # recorded by this sync
    in_force: int | None = None                # the app's revision in force after it
    error: str | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)   # "agent/x created" per change

    @property
    def ok(self) -> bool:
        return self.outcome in ("applied", "unchanged") and self.error is None

    @property
    def settled(self) -> bool:
        """The same input would give the same outcome: no need to sync it again."""
        return self.outcome != "failed"

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "source": self.source, "outcome": self.outcome, "at": self.at,
                "commit": self.commit, "revision": self.revision, "inForce": self.in_force,
                "error": self.error, "diagnostics": [d.to_dict() for d in self.diagnostics],
                "changes": self.lines}


def sync_folder(store: Store, folder: Path, *, home: Path, app: str, source: str, prune: bool = False,
                commit: str | None = None, ref: str | None = None, subpath: str | None = None,
                relative_to: Path | None = None, clock: Callable[[], float] = time.time) -> SyncResult:
    """Apply ``folder`` as ``app`` and record the outcome. ``commit``: the git commit it holds
    (default: what the revision records); ``relative_to``: diagnostics' files are shown
    relative to it (a clone's root, rather than a path under the engine's home)."""
    from agentform.engine.reconcile import PruneRefused, apply_path

    result = SyncResult(app=app, source=source, outcome="failed", at=clock(), commit=commit)
    try:
        applied = apply_path(store, folder, home=home, app=app, prune=prune, lock_timeout=LOCK_WAIT)
    except ManifestError as exc:
        result.outcome = "invalid"
        result.diagnostics = [_relative(d, relative_to) for d in exc.diagnostics]
        result.error = "\n".join(str(d) for d in result.diagnostics)
    except PruneRefused as exc:
        result.outcome, result.error = "invalid", str(exc)
    except AgentformError as exc:      # the apply lock, the store, an operator's setup
        result.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - a watcher outlives one bad sync; the error is recorded
        result.error = f"unexpected {type(exc).__name__}: {exc}"
    else:
        if applied.revision is not None:
            result.outcome, result.revision = "applied", applied.revision.number
            result.commit = commit or applied.revision.git_commit
        else:
            result.outcome = "unchanged"
        result.lines = [o.line for o in applied.outcomes if o.verb != "unchanged"]
        if applied.failed:
            result.error = "\n".join(applied.error_lines())
    if result.error is not None:
        result.error = redact_text(printable(result.error))[:_ERROR_MAX]
    latest = store.latest_revisions_by_app().get(app)
    result.in_force = latest.number if latest is not None else None
    if result.commit is None and result.outcome == "unchanged" and latest is not None:
        result.commit = latest.git_commit
    record(store, result, ref=ref, path=subpath)
    return result


def record(store: Store, result: SyncResult, *, ref: str | None = None, path: str | None = None) -> None:
    """Write ``result`` to the app's sync status: what is in force, or the error."""
    synced = result.outcome in ("applied", "unchanged")
    store.record_app_sync(AppSyncRecord(
        app=result.app, source=result.source, phase="Synced" if synced else "Failed", updated_at=result.at,
        ref=ref, path=path, head_commit=result.commit,
        synced_commit=result.commit if synced else None,
        synced_revision=result.in_force if synced else None,
        synced_at=result.at if synced else None,
        error=None if synced else result.error,
        error_commit=None if synced else result.commit,
        error_at=None if synced else result.at,
    ))


def _relative(diagnostic: Diagnostic, root: Path | None) -> Diagnostic:
    if root is None or not diagnostic.file:
        return diagnostic
    try:
        file = Path(diagnostic.file).resolve().relative_to(root.resolve())
    except ValueError:
        return diagnostic
    return dataclasses.replace(diagnostic, file=str(file))
