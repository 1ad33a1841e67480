"""Apps as ``get app`` shows them: where their manifests come from, the commit and revision in
force, and the last error of ``watch`` with its commit and time.

An app applied by hand (never watched) is listed from its newest revision: its source is the
folder applied, its commit what that revision recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentform.engine.errors import NotFound
from agentform.engine.store.base import AppSyncRecord, RevisionRecord, Store


@dataclass
class AppStatus:
    name: str
    source: str | None                 # folder or git URL
    watched: bool                      # synced by `watch` (else applied by hand)
    phase: str                         # Synced | Failed (the last attempt of `watch`)
    resources: int
    ref: str | None = None
    path: str | None = None
    synced_commit: str | None = None   # the commit in force
    synced_revision: int | None = None
    synced_at: float | None = None
    head_commit: str | None = None     # the commit last attempted
    error: str | None = None           # the last error, kept after a later good sync
    error_commit: str | None = None
    error_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "ref": self.ref, "path": self.path,
                "watched": self.watched, "phase": self.phase, "resources": self.resources,
                "syncedCommit": self.synced_commit, "syncedRevision": self.synced_revision,
                "syncedAt": self.synced_at, "headCommit": self.head_commit,
                "lastError": None if self.error is None else
                {"message": self.error, "commit": self.error_commit, "at": self.error_at}}


def apps(store: Store) -> list[AppStatus]:
    """Every app that has a revision or a sync status, by name."""
    synced = {r.app: r for r in store.list_app_sync()}
    revisions = store.latest_revisions_by_app()
    return [_status(store, name, synced.get(name), revisions.get(name))
            for name in sorted(synced.keys() | revisions.keys())]


def app_status(store: Store, name: str) -> AppStatus:
    found = store.list_app_sync(name)
    revision = store.latest_revisions_by_app().get(name)
    if not found and revision is None:
        known = sorted({r.app for r in store.list_app_sync()} | store.latest_revisions_by_app().keys())
        hint = f"; apps: {', '.join(known[:20])}" if known else "; nothing has been applied yet"
        raise NotFound(f"app '{name}' not found{hint}")
    return _status(store, name, found[0] if found else None, revision)


def _status(store: Store, name: str, sync: AppSyncRecord | None, revision: RevisionRecord | None) -> AppStatus:
    count = len(store.inventory(name))
    if sync is None:
        assert revision is not None
        return AppStatus(name=name, source=revision.extra.get("root"), watched=False, phase="Synced",
                         resources=count, synced_commit=revision.git_commit, synced_revision=revision.number,
                         synced_at=revision.created_at, head_commit=revision.git_commit)
    return AppStatus(name=name, source=sync.source, watched=True, phase=sync.phase, resources=count,
                     ref=sync.ref, path=sync.path, synced_commit=sync.synced_commit,
                     synced_revision=sync.synced_revision, synced_at=sync.synced_at,
                     head_commit=sync.head_commit, error=sync.error, error_commit=sync.error_commit,
                     error_at=sync.error_at)
