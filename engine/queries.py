"""The read side behind ``Engine``: resources, revisions, runs, threads and event pages.

Each query reads the store and returns the typed views of engine/views.py. Listings are
bounded (``MAX_LIMIT``); runs page with an opaque keyset cursor over (created_at, id), so a
page never repeats or skips a run however many start meanwhile (new runs sort before it).
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from agentform.engine.errors import NotFound, UsageError
from agentform.engine.store.base import Event
from agentform.engine.views import (
    ResourceDetail,
    ResourceStatus,
    RevisionDiff,
    RevisionInfo,
    RunDetail,
    RunInfo,
    RunPage,
    ThreadInfo,
    fold_changes,
    resource_status,
    revision_info,
    run_info,
    sync,
)

MAX_LIMIT = 1000                     # one page of runs, revisions, threads or events at most
RUN_STATUSES = ("queued", "running", "waiting", "succeeded", "failed", "cancelled")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _limit(limit: int, what: str) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"{what} limit must be between 1 and {MAX_LIMIT} (got {limit!r})")
    return limit


# -- resources --------------------------------------------------------------------------------------------


def kind_of(word: str) -> str:
    """``agent``, ``agents`` or ``Agent`` -> ``Agent``; UsageError naming the kinds otherwise."""
    from agentform.specs import KINDS, kind_from_word

    kind = kind_from_word(word)
    if kind is None:
        raise UsageError(f"unknown kind '{word}'; valid kinds: {', '.join(KINDS)}")
    return kind


def _revision_times(store: Any, numbers: set[int]) -> dict[int, float]:
    times = {}
    for number in numbers:
        revision = store.get_revision(number) if number else None
        if revision is not None:
            times[number] = revision.created_at
    return times


def resources(store: Any, kind: str | None = None, *, namespace: str | None = "default",
              labels: dict[str, str] | None = None,
              desired: dict[Any, str] | None = None) -> list[ResourceStatus]:
    """Applied resources (of ``kind``; in ``namespace``, None for all; carrying every label);
    with ``desired`` (key -> spec hash of the manifests), sync also compares with those."""
    wanted = labels or {}
    records = store.list_resources(kind_of(kind) if kind else None, namespace)
    records = [r for r in records if all(r.labels.get(k) == v for k, v in wanted.items())]
    times = _revision_times(store, {r.revision for r in records})
    compare = desired is not None
    return [resource_status(r, sync(r, (desired or {}).get(r.key), compare=compare), times.get(r.revision))
            for r in records]


def resource(store: Any, kind: str, name: str, namespace: str = "default", *,
             desired: dict[Any, str] | None = None) -> ResourceDetail:
    from agentform.specs import ResourceKey

    kind = kind_of(kind)
    record = store.get_resource(ResourceKey(kind, namespace, name))
    if record is None:
        raise NotFound(f'{kind.lower()} "{name}" not found in namespace "{namespace}"')
    revision = store.get_revision(record.revision) if record.revision else None
    sync_state = sync(record, (desired or {}).get(record.key), compare=desired is not None)
    status = resource_status(record, sync_state, revision.created_at if revision else None)
    return ResourceDetail(status=status, revision=revision_info(revision) if revision else None)


# -- revisions --------------------------------------------------------------------------------------------


def revisions(store: Any, app: str | None = None, limit: int = 50) -> list[RevisionInfo]:
    return [revision_info(r) for r in store.list_revisions(limit=_limit(limit, "revisions"), app=app)]


def revision(store: Any, number: int) -> RevisionInfo:
    found = store.get_revision(number)
    if found is None:
        raise NotFound(f"revision {number} does not exist (`agentform revisions` lists them)")
    return revision_info(found)


# A diff folds every revision in between; past this many, ask for a narrower range.
MAX_DIFF_REVISIONS = 1000


def revision_diff(store: Any, app: str | None, from_revision: int, to_revision: int) -> RevisionDiff:
    """What changed after ``from_revision`` up to and including ``to_revision`` (of ``app``, or
    of every app); 0 as ``from_revision`` means from an empty store."""
    if from_revision < 0 or to_revision < 1 or from_revision >= to_revision:
        raise UsageError(f"a revision diff goes from an older revision to a newer one "
                         f"(got {from_revision}..{to_revision})")
    for number in (from_revision, to_revision):
        if number and store.get_revision(number) is None:
            raise NotFound(f"revision {number} does not exist")
    if to_revision - from_revision > MAX_DIFF_REVISIONS:
        raise UsageError(f"a diff spans at most {MAX_DIFF_REVISIONS} revisions "
                         f"(got {from_revision}..{to_revision})")
    folded = store.list_revisions(limit=MAX_DIFF_REVISIONS, app=app, before=to_revision + 1, after=from_revision)
    folded.reverse()   # oldest first
    return RevisionDiff(app=app, from_revision=from_revision, to_revision=to_revision,
                        revisions=[r.number for r in folded], changes=fold_changes(folded))


# -- runs -----------------------------------------------------------------------------------------------------


def _encode_cursor(run: RunInfo) -> str:
    raw = json.dumps([run.created_at, run.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, run_id = json.loads(raw)
        if isinstance(created_at, bool) or not isinstance(created_at, int | float) or not isinstance(run_id, str):
            raise ValueError
        return float(created_at), run_id
    except (ValueError, TypeError):
        raise UsageError(f"cursor {cursor[:40]!r} is not one a runs listing returned "
                         "(pass the nextCursor of the previous page)") from None


def run_target(target: str, namespace: str | None = None) -> str:
    """A run target as stored (``team/default/research``) from ``team/research`` or ``Team/ns/name``."""
    from agentform.engine.runtime.runner import parse_target, target_text

    parts = target.strip().split("/")
    if namespace and len(parts) == 2:
        target = f"{parts[0]}/{namespace}/{parts[1]}"
    return target_text(parse_target(target))


def runs(store: Any, *, status: str | None = None, target: str | None = None, thread: str | None = None,
         namespace: str | None = None, limit: int = 50, cursor: str | None = None,
         observe: bool = True) -> RunPage:
    """Runs newest first, filtered; ``cursor`` (a page's ``next_cursor``) continues a listing.
    ``observe`` first records passed approval deadlines (a run timed out shows as failed)."""
    from agentform.engine.runtime.liveness import observe_deadlines

    limit = _limit(limit, "runs")
    if status is not None and status not in RUN_STATUSES:
        raise UsageError(f"--status must be one of: {', '.join(RUN_STATUSES)} (got '{status}')")
    stored_target = run_target(target, namespace) if target else None
    if namespace is not None and not _NAMESPACE.match(namespace):
        return RunPage(items=[], next_cursor=None)   # no run can be in it (namespaces are DNS labels)
    before = _decode_cursor(cursor) if cursor else None
    if observe:
        observe_deadlines(store)
    found = store.list_runs(limit=limit + 1, thread=thread, status=status, target=stored_target,
                            namespace=namespace, before=before)
    now = time.time()
    items = [run_info(r, now) for r in found[:limit]]
    return RunPage(items=items, next_cursor=_encode_cursor(items[-1]) if len(found) > limit else None)


def run(store: Any, run_id: str) -> RunInfo:
    """One run by id or unique prefix, as listed (a passed deadline or dead owner recorded first)."""
    from agentform.engine.runtime.liveness import observe_run

    return run_info(observe_run(store, store.get_run(run_id)), time.time())


def run_detail(store: Any, run_id: str, events: int = 20) -> RunDetail:
    from agentform.engine.runtime.liveness import observe_run

    if isinstance(events, bool) or not isinstance(events, int) or not 0 <= events <= MAX_LIMIT:
        raise UsageError(f"events must be between 0 and {MAX_LIMIT} (got {events!r})")
    record = observe_run(store, store.get_run(run_id))
    tail = store.read_events(record.id, max(0, record.last_seq - events)) if events else []
    return RunDetail(run=run_info(record, time.time()), input=record.input, params=dict(record.params or {}),
                     output=record.output, last_seq=record.last_seq, events=tail[-events:] if events else [])


def threads(store: Any, *, namespace: str | None = None, limit: int = 50) -> list[ThreadInfo]:
    """Conversation threads, latest activity first, each with its latest run."""
    limit = _limit(limit, "threads")
    if namespace is not None and not _NAMESPACE.match(namespace):
        return []
    now = time.time()
    out = []
    for thread, count, first_at, last_at in store.list_threads(limit=limit, namespace=namespace):
        last = store.list_runs(limit=1, thread=thread, namespace=namespace)
        out.append(ThreadInfo(thread=thread, runs=count, first_at=first_at, last_at=last_at,
                              last_run=run_info(last[0], now) if last else None))
    return out


def event_page(store: Any, run_id: str, after: int = 0, limit: int = 500) -> list[Event]:
    """Up to ``limit`` events of a run after seq ``after`` (NotFound for an unknown run)."""
    limit = _limit(limit, "events")
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise UsageError(f"after must be a seq, 0 or more (got {after!r})")
    return store.read_events(store.get_run(run_id).id, after, limit)
