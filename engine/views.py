"""What the read side of ``Engine`` returns: typed views of resources, revisions, runs and threads.

Every view is a dataclass with ``to_dict()``: what ``-o json`` prints, the HTTP API returns
and the MCP face hands out, so the three faces show one shape. The functions here derive
views from store records (pure: no store access; engine/queries.py reads the store).
Resource dicts keep ``get -o json``'s camelCase keys; run dicts keep ``runs -o json``'s
snake_case ones (both are pinned by scripts already).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentform.engine.store.base import AppliedResource, Condition, RevisionRecord, RunRecord

# -- resources ----------------------------------------------------------------------------------------


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


def masked_spec(record: AppliedResource) -> dict[str, Any]:
    """The applied document for display: sensitive leaves masked, a pinned script summarised."""
    from agentform.engine.plan import SENSITIVE, is_sensitive

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


@dataclass
class ResourceStatus:
    """One applied resource with its two axes (``get``): sync and health, and its conditions."""

    kind: str
    namespace: str
    name: str
    app: str
    sync: str                        # Synced | OutOfSync
    health: str                      # Healthy | Degraded | Progressing | Unknown
    generation: int
    observed_generation: int
    revision: int                    # the revision that last changed it
    source: str
    labels: dict[str, str]
    conditions: list[Condition]
    spec: dict[str, Any]             # sensitive leaves masked
    revision_at: float | None = None  # when that revision was recorded (AGE)

    @property
    def resource(self) -> str:
        return display_name(self.kind, self.namespace, self.name)

    @property
    def reason(self) -> str:
        """The Ready condition's reason ('' when there is none)."""
        ready = next((c for c in self.conditions if c.type == "Ready"), None)
        return ready.reason if ready else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "namespace": self.namespace, "name": self.name, "resource": self.resource,
            "app": self.app, "sync": self.sync, "health": self.health, "generation": self.generation,
            "observedGeneration": self.observed_generation, "revision": self.revision, "source": self.source,
            "labels": self.labels,
            "conditions": [{"type": c.type, "status": c.status, "reason": c.reason, "message": c.message}
                           for c in self.conditions],
            "spec": self.spec,
        }


def resource_status(record: AppliedResource, sync_state: str | None = None,
                    revision_at: float | None = None) -> ResourceStatus:
    return ResourceStatus(
        kind=record.key.kind, namespace=record.key.namespace, name=record.key.name, app=record.app,
        sync=sync_state or sync(record), health=health(record), generation=record.generation,
        observed_generation=record.observed_generation, revision=record.revision, source=record.source,
        labels=dict(record.labels), conditions=list(record.conditions), spec=masked_spec(record),
        revision_at=revision_at)


def display_name(kind: str, namespace: str, name: str) -> str:
    """kubectl style: ``agent.agentform.dev/default/researcher`` (as plans print it)."""
    from agentform.engine.plan import display_name as name_of
    from agentform.specs import ResourceKey

    return name_of(ResourceKey(kind, namespace, name))


# -- revisions ----------------------------------------------------------------------------------------


@dataclass
class RevisionInfo:
    """One recorded apply: who, when, from which commit, and the plan's changes (values masked)."""

    number: int
    app: str
    author: str
    created_at: float
    content_hash: str
    git_commit: str | None
    git_dirty: bool
    changes: list[dict[str, Any]]    # Change.to_dict() entries: action, kind, namespace, name, diff

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(("create", "update", "delete", "drift", "orphan"), 0)
        for change in self.changes:
            counts[change.get("action", "")] = counts.get(change.get("action", ""), 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "app": self.app, "author": self.author, "createdAt": self.created_at,
                "contentHash": self.content_hash, "gitCommit": self.git_commit, "gitDirty": self.git_dirty,
                "summary": self.summary(), "changes": self.changes}


def revision_info(record: RevisionRecord) -> RevisionInfo:
    return RevisionInfo(number=record.number, app=record.app, author=record.author,
                        created_at=record.created_at, content_hash=record.content_hash,
                        git_commit=record.git_commit, git_dirty=record.git_dirty, changes=list(record.changes))


@dataclass
class ResourceChange:
    """The net change of one resource across several revisions."""

    action: str                      # create | update | delete
    kind: str
    namespace: str
    name: str
    diff: list[dict[str, Any]]       # {path, old, new}: first old, last new (sensitive masked)
    revisions: list[int]             # the revisions that touched it
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "kind": self.kind, "namespace": self.namespace, "name": self.name,
                "resource": display_name(self.kind, self.namespace, self.name), "source": self.source,
                "revisions": self.revisions, "diff": self.diff}


@dataclass
class RevisionDiff:
    """What changed from revision ``from_revision`` (exclusive) to ``to_revision`` (inclusive)."""

    app: str | None
    from_revision: int
    to_revision: int
    revisions: list[int]             # the revisions folded, oldest first
    changes: list[ResourceChange]

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "from": self.from_revision, "to": self.to_revision, "revisions": self.revisions,
                "changes": [c.to_dict() for c in self.changes]}


def fold_changes(revisions: list[RevisionRecord]) -> list[ResourceChange]:
    """The net change per resource over ``revisions`` (oldest first): a create then updates is a
    create, a create then a delete is nothing, a delete then a create an update; each field
    keeps its first old and last new value, and a field back where it started drops out."""
    net: dict[tuple[str, str, str], dict[str, Any]] = {}
    for revision in revisions:
        for change in revision.changes:
            drift = change.get("action") == "drift"   # re-applied as written: no field diff
            action = "update" if drift else change.get("action")
            if action not in ("create", "update", "delete"):
                continue   # orphans are listed by a plan, not changed by it
            key = (change["kind"], change["namespace"], change["name"])
            entry = net.setdefault(key, {"action": None, "fields": {}, "revisions": [], "source": "",
                                         "drift": False})
            entry["drift"] = entry["drift"] or drift
            entry["revisions"].append(revision.number)
            entry["source"] = change.get("source") or entry["source"]
            entry["action"] = _fold(entry["action"], action)
            for d in change.get("diff", []):
                old_new = entry["fields"].setdefault(d["path"], [d.get("old"), d.get("new")])
                old_new[1] = d.get("new")
    out = []
    for (kind, namespace, name), entry in net.items():
        if entry["action"] is None:
            continue
        diff = [] if entry["action"] in ("create", "delete") else [
            {"path": path, "old": old, "new": new} for path, (old, new) in entry["fields"].items() if old != new]
        if entry["action"] == "update" and not diff and not entry["drift"]:
            continue   # changed and changed back
        out.append(ResourceChange(entry["action"], kind, namespace, name, diff, entry["revisions"], entry["source"]))
    return sorted(out, key=lambda c: (c.kind, c.namespace, c.name))


def _fold(before: str | None, action: str) -> str | None:
    if before is None:
        return action
    if action == "delete":
        return None if before == "create" else "delete"
    if action == "create":
        return "update" if before == "delete" else "create"
    return "create" if before == "create" else "update"


# -- runs and threads -------------------------------------------------------------------------------------


@dataclass
class RunInfo:
    """A run in a listing (``runs``, ``get runs``): its status as shown, totals and times."""

    id: str
    target: str                      # kind/namespace/name
    status: str                      # as shown: also "failed (owner died)", "failed (timed out)"
    revision: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    duration_s: float
    thread: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    owner: str | None
    error: str | None = None

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    @property
    def namespace(self) -> str:
        parts = self.target.split("/")
        return parts[1] if len(parts) == 3 else "default"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "target": self.target, "status": self.status, "revision": self.revision,
                "tokens": self.tokens, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "cost_usd": self.cost_usd, "duration_s": self.duration_s, "thread": self.thread,
                "created_at": self.created_at, "owner": self.owner, "started_at": self.started_at,
                "finished_at": self.finished_at, "error": self.error}


def duration(run: RunRecord, now: float) -> float:
    start = run.started_at or run.created_at
    end = run.finished_at or (now if run.status == "running" else run.heartbeat_at or start)
    return max(0.0, end - start)


def run_info(run: RunRecord, now: float) -> RunInfo:
    from agentform.engine.runtime.liveness import display_status

    return RunInfo(id=run.id, target=run.target, status=display_status(run, now), revision=run.revision,
                   tokens_in=run.tokens_in, tokens_out=run.tokens_out, cost_usd=run.cost_usd,
                   duration_s=duration(run, now), thread=run.thread, created_at=run.created_at,
                   started_at=run.started_at, finished_at=run.finished_at, owner=run.owner, error=run.error)


@dataclass
class RunPage:
    """One page of runs, newest first; ``next_cursor`` asks for the next (None: the last page)."""

    items: list[RunInfo]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [r.to_dict() for r in self.items], "nextCursor": self.next_cursor}


@dataclass
class ThreadInfo:
    """A conversation thread: its runs, when it began and was last active, its latest run."""

    thread: str
    runs: int
    first_at: float
    last_at: float
    last_run: RunInfo | None

    def to_dict(self) -> dict[str, Any]:
        return {"thread": self.thread, "runs": self.runs, "firstAt": self.first_at, "lastAt": self.last_at,
                "lastRun": self.last_run.to_dict() if self.last_run else None}


@dataclass
class ResourceDetail:
    """One resource in full (``describe``): its status and the revision that last changed it."""

    status: ResourceStatus
    revision: RevisionInfo | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.status.to_dict(),
                "lastRevision": None if self.revision is None else {
                    k: v for k, v in self.revision.to_dict().items() if k != "changes"}}


@dataclass
class RunDetail:
    """One run in full (``describe run/ID``): as listed, plus its input, params, output and
    its latest events."""

    run: RunInfo
    input: Any
    params: dict[str, Any]
    output: Any
    last_seq: int
    events: list[Any]                # the last few Events, oldest first

    def to_dict(self) -> dict[str, Any]:
        return {**self.run.to_dict(), "input": self.input, "params": self.params, "output": self.output,
                "last_seq": self.last_seq, "events": [e.to_dict() for e in self.events]}
