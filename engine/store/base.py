"""The Store interface and its records. Two implementations: sqlite (default), postgres.

Every implementation passes the same tests (tests/store/). SQL that only one backend
understands stays in that backend's module. Records are plain dataclasses; specs and
graphs travel as JSON-ready dicts so the store never imports the runtime.

URLs (``open_store``): ``sqlite:///relative/state.db``, ``sqlite:////abs/state.db``, None
for ``<home>/state.db``; ``postgresql://user@host:5432/db?schema=NAME`` keeps the tables in
schema NAME (created if missing; letters, digits and ``_``), otherwise in the connection's
default schema (``public``). Both stores migrate themselves when opened (engine/store/migrate.py).

Semantics every backend keeps (tests/store/ checks them on both):
- ``commit_revision`` numbers revisions 1, 2, 3... and sets ``revision`` of each upsert to
  that number; a deleted key gets a graph tombstone, so ``get_graph`` at or after that
  revision returns None.
- ``append_events`` sets each run's ``last_seq`` itself (a ``last_seq`` in ``run_updates``
  is ignored) and raises StoreError when a run's seq does not continue its stream, or the
  run does not exist; ``new_runs`` (added) creates runs in the same transaction, so a
  group-commit writer needs no separate commit per new run.
- ``delete_runs(ids)`` (added for ``gc``) deletes runs and their events; ``claim_run``
  (added for ``worker``) hands each queued run to exactly one worker.
- ``update_run`` raises NotFound for an unknown run, StoreError for an unknown field.
- One owner per run: ``take_over_run`` is one conditional UPDATE (expected status and
  ``owner_epoch``; sets status, owner, heartbeat and ``owner_epoch + 1``), optionally with
  events appended in the same transaction; the loser gets RunTakenOver naming the owner.
  ``append_events(..., epochs={run: n})`` appends only while the run's epoch is n (else
  RunTakenOver for the batch: the writer retries run by run, so only that run fails).
- JSON values: NaN/Infinity raise ValueError (before anything is written); PostgreSQL's
  JSONB cannot hold NUL characters, so a NUL in a string reads back as U+FFFD there.
- ``wait_for_events`` sees appends from any process: SQLite polls every 25 ms (at once for
  an append through the same store object), PostgreSQL is woken by NOTIFY.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentform.specs import ResourceKey


@dataclass(frozen=True)
class Condition:
    """A status condition, as in Kubernetes: type Ready|Reconciling|Stalled, status True|False|Unknown."""

    type: str
    status: str
    reason: str
    message: str = ""


@dataclass
class AppliedResource:
    key: ResourceKey
    app: str
    spec: dict[str, Any]             # the manifest as applied (by alias), secrets never inlined
    spec_hash: str
    generation: int = 1
    observed_generation: int = 0
    conditions: list[Condition] = field(default_factory=list)
    revision: int = 0                # the revision that last changed it
    source: str = ""                 # file:line of the manifest it came from
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class RevisionRecord:
    number: int                      # 1, 2, 3... assigned by the store
    content_hash: str
    app: str
    author: str
    created_at: float
    git_commit: str | None = None
    git_dirty: bool = False
    changes: list[dict[str, Any]] = field(default_factory=list)   # the applied plan's entries
    extra: dict[str, Any] = field(default_factory=dict)           # e.g. model prices


@dataclass
class AppSyncRecord:
    """How `watch` last synced an app (table app_sync): the commit in force and the last error.

    ``record_app_sync`` with phase ``Synced`` writes the synced_* fields and keeps the error
    ones; with ``Failed`` it writes the error_* fields and keeps what is in force."""

    app: str
    source: str                      # folder path or git URL (credentials never)
    phase: str                       # Synced | Failed: how the last attempt went
    updated_at: float
    ref: str | None = None
    path: str | None = None
    head_commit: str | None = None   # the commit last attempted
    synced_commit: str | None = None
    synced_revision: int | None = None
    synced_at: float | None = None
    error: str | None = None
    error_commit: str | None = None
    error_at: float | None = None


@dataclass
class RunRecord:
    id: str
    target: str                      # "team/default/research" style: kind/namespace/name
    status: str                      # queued|running|waiting|succeeded|failed|cancelled
    revision: int
    created_at: float
    thread: str | None = None
    input: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    output: Any = None
    error: str | None = None
    owner: str | None = None         # host:pid of the process executing it
    heartbeat_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    last_seq: int = 0
    owner_epoch: int = 0             # bumped by every takeover; appends check it (fencing)
    deadline_at: float | None = None  # a waiting run: its earliest approval expiry


@dataclass(frozen=True)
class Event:
    """One entry of a run's append-only stream; ``seq`` is contiguous from 1 per run."""

    run_id: str
    seq: int
    ts: float
    type: str
    path: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run_id, "seq": self.seq, "ts": self.ts, "type": self.type,
                "path": self.path, "data": self.data}


class Store(Protocol):
    """State of one agentform installation. Methods are synchronous and thread-safe."""

    url: str

    def close(self) -> None: ...

    # -- resources and revisions -------------------------------------------------------
    def list_resources(self, kind: str | None = None, namespace: str | None = None) -> list[AppliedResource]: ...
    def get_resource(self, key: ResourceKey) -> AppliedResource | None: ...
    def inventory(self, app: str) -> set[ResourceKey]: ...
    def commit_revision(
        self,
        revision: RevisionRecord,
        upserts: Iterable[AppliedResource],
        deletes: Iterable[ResourceKey],
        graphs: dict[ResourceKey, dict[str, Any]],
    ) -> RevisionRecord:
        """Record a revision and its resource changes and graphs in one transaction; assigns ``number``."""
        ...
    def set_status(self, key: ResourceKey, conditions: list[Condition], observed_generation: int) -> None: ...
    def latest_revision(self) -> RevisionRecord | None: ...
    def get_revision(self, number: int) -> RevisionRecord | None: ...
    def list_revisions(self, limit: int = 50, app: str | None = None, before: int | None = None,
                       after: int | None = None) -> list[RevisionRecord]:
        """Newest first; ``app``, ``before``/``after`` (numbers, exclusive) filter (added)."""
        ...
    def get_graph(self, key: ResourceKey, revision: int | None = None) -> dict[str, Any] | None:
        """The graph compiled for ``key`` at ``revision`` (the newest at or before it; None = latest)."""
        ...
    def hmac_key(self, name: str) -> bytes:
        """The store's secret key ``name`` (created race-free on first use; e.g. ``plan``)."""
        ...
    def apply_lock(self, holder: str, timeout: float = 0.0) -> AbstractContextManager[None]:
        """Exclusive apply lock; raises LockHeld naming the holder when not had within ``timeout``."""
        ...

    # -- runs and their streams ------------------------------------------------------------
    def create_run(self, run: RunRecord) -> None: ...
    def update_run(self, run_id: str, **fields: Any) -> None: ...
    def get_run(self, run_id_or_prefix: str) -> RunRecord:
        """The run with this id or unique prefix; NotFound / UsageError (ambiguous) otherwise."""
        ...
    def list_runs(self, limit: int = 50, thread: str | None = None, status: str | None = None, *,
                  target: str | None = None, namespace: str | None = None,
                  before: tuple[float, str] | None = None) -> list[RunRecord]:
        """Newest first (created_at, id); ``target`` is ``kind/namespace/name``; ``before`` a
        (created_at, id) keyset cursor: only runs after it in this order (added)."""
        ...
    def list_threads(self, limit: int = 50, namespace: str | None = None) -> list[tuple[str, int, float, float]]:
        """(thread, runs, first created_at, last created_at), latest activity first (added)."""
        ...
    def append_events(
        self,
        events: list[Event],
        run_updates: dict[str, dict[str, Any]] | None = None,
        new_runs: Iterable[RunRecord] = (),
        epochs: dict[str, int] | None = None,
    ) -> None:
        """Append a batch (group commit) in one transaction; seq must continue each run's stream.

        ``new_runs`` (added) are created in the same transaction, before the events; a run
        in ``epochs`` is written only while its ``owner_epoch`` is that number."""
        ...
    def take_over_run(
        self,
        run_id: str,
        *,
        expect_status: Iterable[str],
        expect_epoch: int,
        owner: str,
        now: float,
        events: Iterable[tuple[str, str, dict[str, Any]]] = (),
        **fields: Any,
    ) -> RunRecord:
        """Become the run's owner: one conditional UPDATE (status in ``expect_status`` and epoch
        ``expect_epoch``) that sets ``owner``, ``heartbeat_at=now``, ``status`` (default running),
        ``fields`` and bumps the epoch; ``events`` (type, path, data) follow in the same
        transaction under the new epoch. RunTakenOver (naming the owner) when the check fails."""
        ...
    def set_run_if(self, run_id: str, *, expect_status: Iterable[str], expect_epoch: int, **fields: Any) -> RunRecord:
        """Update a run only while its status and epoch are the expected ones (a request to the
        current owner, e.g. cancel: the epoch stays); RunTakenOver otherwise."""
        ...
    def read_events(self, run_id: str, after: int = 0, limit: int | None = None) -> list[Event]: ...
    def wait_for_events(self, run_id: str, after: int, timeout: float) -> list[Event]:
        """Events after ``after``, waiting up to ``timeout`` s for some (poll on SQLite, LISTEN on PostgreSQL)."""
        ...
    def claim_run(self, owner: str, now: float) -> RunRecord | None:
        """Take the oldest ``queued`` run: it becomes ``running`` with ``owner`` and ``heartbeat_at``
        (and ``started_at`` if unset); None when none is queued. Two workers never get the same run."""
        ...
    def delete_runs(self, run_ids: Iterable[str]) -> int:
        """Delete these runs and their events; returns how many runs were deleted."""
        ...

    # -- app sync status (`watch`; added) -------------------------------------------------
    def record_app_sync(self, record: AppSyncRecord) -> None:
        """Upsert an app's sync status; a ``Failed`` record keeps the synced_* fields, a ``Synced``
        one keeps the error_* fields (see AppSyncRecord)."""
        ...
    def list_app_sync(self, app: str | None = None) -> list[AppSyncRecord]: ...
    def latest_revisions_by_app(self) -> dict[str, RevisionRecord]:
        """The newest revision of each app, by app."""
        ...
