"""What the SQL backends share: records <-> rows and the portable queries.

A backend supplies a transaction (``_write``), a read cursor (``_read``), JSON decoding,
the event insert and the wake-up of followers; everything else is written once here in
SQL that SQLite and PostgreSQL both understand (``?`` placeholders, translated by ``_q``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from agentform.engine.errors import NotFound, RunTakenOver, StoreError, UsageError
from agentform.specs import ResourceKey

from .base import AppliedResource, AppSyncRecord, Condition, Event, RevisionRecord, RunRecord
from .memory import MemoryQueries
from .retention import RetentionQueries

# Compact and without the cycle check: one encode per event is most of an append's cost.
# NaN/Infinity are refused on both backends (PostgreSQL's JSONB has no such values).
_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False, allow_nan=False).encode

RESOURCE_COLS = ("kind, namespace, name, app, spec, spec_hash, generation, "
                 "observed_generation, conditions, revision, source, labels")
REVISION_COLS = "number, content_hash, app, author, created_at, git_commit, git_dirty, changes, extra"
EVENT_COLS = "run_id, seq, ts, type, path, data"
RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord))
RUN_COLS = ", ".join(RUN_FIELDS)
RUN_JSON = frozenset({"input", "params", "output"})
_KEY = "kind = ? AND namespace = ? AND name = ?"
_UPSERT = (
    f"INSERT INTO resources ({RESOURCE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (kind, namespace, name) DO UPDATE SET app = excluded.app, spec = excluded.spec, "
    "spec_hash = excluded.spec_hash, generation = excluded.generation, "
    "observed_generation = excluded.observed_generation, conditions = excluded.conditions, "
    "revision = excluded.revision, source = excluded.source, labels = excluded.labels"
)


class SqlStore(MemoryQueries, RetentionQueries):
    """The Store protocol over a DB-API cursor; subclasses provide the hooks below."""

    url: str
    _skip_locked = ""         # PostgreSQL: workers skip runs another worker is claiming
    _integrity: tuple[type[BaseException], ...] = ()

    # -- hooks ---------------------------------------------------------------------------
    def _write(self) -> AbstractContextManager[Any]:
        """A cursor inside one write transaction (committed on exit, rolled back on error)."""
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _write_one(self) -> AbstractContextManager[Any]:
        """A cursor for a write that is one statement (PostgreSQL: autocommit, no BEGIN/COMMIT
        round trips, as a statement is its own transaction)."""
        return self._write()

    def _q(self, sql: str) -> str:
        return sql

    def _json(self, value: Any) -> str:
        """Python data to the JSON text a JSON column stores."""
        return _dumps(value)

    def _enc(self, value: Any) -> str | None:
        return None if value is None else self._json(value)

    def _dec(self, value: Any) -> Any:
        """A JSON column as read back, to Python data."""
        raise NotImplementedError

    def _insert_events(self, cur: Any, rows: list[tuple]) -> None:
        cur.executemany(self._q(f"INSERT INTO events ({EVENT_COLS}) VALUES (?, ?, ?, ?, ?, ?)"), rows)

    def _notify(self, cur: Any, run_ids: Iterable[str]) -> None:
        """Wake followers of these runs once the transaction commits."""

    def _lock_revisions(self, cur: Any) -> None:
        """Serialise revision numbering (SQLite's write lock already does)."""

    # -- rows ----------------------------------------------------------------------------
    def _resource(self, row: tuple) -> AppliedResource:
        return AppliedResource(
            key=ResourceKey(row[0], row[1], row[2]), app=row[3], spec=self._dec(row[4]),
            spec_hash=row[5], generation=row[6], observed_generation=row[7],
            conditions=[Condition(**c) for c in self._dec(row[8])], revision=row[9],
            source=row[10], labels=self._dec(row[11]),
        )

    def _revision(self, row: tuple) -> RevisionRecord:
        return RevisionRecord(
            number=row[0], content_hash=row[1], app=row[2], author=row[3], created_at=row[4],
            git_commit=row[5], git_dirty=bool(row[6]), changes=self._dec(row[7]),
            extra=self._dec(row[8]),
        )

    def _run(self, row: tuple) -> RunRecord:
        values = dict(zip(RUN_FIELDS, row, strict=True))
        for name in RUN_JSON:
            values[name] = self._dec(values[name])
        if values["params"] is None:
            values["params"] = {}
        return RunRecord(**values)

    def _event(self, row: tuple) -> Event:
        return Event(row[0], row[1], row[2], row[3], row[4], self._dec(row[5]))

    # -- resources and revisions ---------------------------------------------------------
    def list_resources(self, kind: str | None = None, namespace: str | None = None) -> list[AppliedResource]:
        where, args = [], []
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if namespace is not None:
            where.append("namespace = ?")
            args.append(namespace)
        sql = f"SELECT {RESOURCE_COLS} FROM resources"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._read() as cur:
            rows = cur.execute(self._q(sql + " ORDER BY kind, namespace, name"), args).fetchall()
        return [self._resource(r) for r in rows]

    def get_resource(self, key: ResourceKey) -> AppliedResource | None:
        with self._read() as cur:
            row = cur.execute(self._q(f"SELECT {RESOURCE_COLS} FROM resources WHERE {_KEY}"), tuple(key)).fetchone()
        return self._resource(row) if row else None

    def inventory(self, app: str) -> set[ResourceKey]:
        with self._read() as cur:
            rows = cur.execute(self._q("SELECT kind, namespace, name FROM resources WHERE app = ?"), (app,)).fetchall()
        return {ResourceKey(*r) for r in rows}

    def commit_revision(
        self,
        revision: RevisionRecord,
        upserts: Iterable[AppliedResource],
        deletes: Iterable[ResourceKey],
        graphs: dict[ResourceKey, dict[str, Any]],
    ) -> RevisionRecord:
        """Record a revision and its resource changes and graphs in one transaction; assigns ``number``."""
        deletes = list(deletes)
        both = set(deletes) & set(graphs)
        if both:
            raise StoreError(f"a revision cannot both delete and compile {sorted(map(str, both))[0]}")
        with self._write() as cur:
            self._lock_revisions(cur)
            number = cur.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM revisions").fetchone()[0]
            cur.execute(self._q(f"INSERT INTO revisions ({REVISION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"), (
                number, revision.content_hash, revision.app, revision.author, revision.created_at,
                revision.git_commit, revision.git_dirty, self._json(revision.changes), self._json(revision.extra),
            ))
            dump = self._json
            rows = [(*r.key, r.app, dump(r.spec), r.spec_hash, r.generation, r.observed_generation,
                     dump([dataclasses.asdict(c) for c in r.conditions]), number, r.source, dump(r.labels))
                    for r in upserts]
            if rows:
                cur.executemany(self._q(_UPSERT), rows)
            if deletes:
                cur.executemany(self._q(f"DELETE FROM resources WHERE {_KEY}"), [tuple(k) for k in deletes])
                # Tombstones, so that get_graph at this revision or later finds nothing.
                cur.executemany(self._q(
                    "INSERT INTO graphs (kind, namespace, name, revision, graph) SELECT ?, ?, ?, ?, NULL "
                    f"WHERE EXISTS (SELECT 1 FROM graphs WHERE {_KEY})"
                ), [(*k, number, *k) for k in deletes])
            if graphs:
                cur.executemany(self._q("INSERT INTO graphs (kind, namespace, name, revision, graph) VALUES (?, ?, ?, ?, ?)"),
                                [(*k, number, dump(g)) for k, g in graphs.items()])
        return dataclasses.replace(revision, number=number)

    def set_status(self, key: ResourceKey, conditions: list[Condition], observed_generation: int) -> None:
        with self._write_one() as cur:
            cur.execute(self._q(f"UPDATE resources SET conditions = ?, observed_generation = ? WHERE {_KEY}"),
                        (self._json([dataclasses.asdict(c) for c in conditions]), observed_generation, *key))
            if cur.rowcount == 0:
                raise NotFound(f"{key} is not applied")

    def latest_revision(self) -> RevisionRecord | None:
        found = self.list_revisions(limit=1)
        return found[0] if found else None

    def get_revision(self, number: int) -> RevisionRecord | None:
        with self._read() as cur:
            row = cur.execute(self._q(f"SELECT {REVISION_COLS} FROM revisions WHERE number = ?"), (number,)).fetchone()
        return self._revision(row) if row else None

    def list_revisions(self, limit: int = 50, app: str | None = None, before: int | None = None,
                       after: int | None = None) -> list[RevisionRecord]:
        where, args = [], []
        for clause, value in (("app = ?", app), ("number < ?", before), ("number > ?", after)):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = f"SELECT {REVISION_COLS} FROM revisions" + (" WHERE " + " AND ".join(where) if where else "")
        with self._read() as cur:
            rows = cur.execute(self._q(sql + " ORDER BY number DESC LIMIT ?"), (*args, limit)).fetchall()
        return [self._revision(r) for r in rows]

    def get_graph(self, key: ResourceKey, revision: int | None = None) -> dict[str, Any] | None:
        """The graph compiled for ``key`` at ``revision`` (the newest at or before it; None = latest)."""
        sql = f"SELECT graph FROM graphs WHERE {_KEY}"
        args: tuple = tuple(key)
        if revision is not None:
            sql += " AND revision <= ?"
            args += (revision,)
        with self._read() as cur:
            row = cur.execute(self._q(sql + " ORDER BY revision DESC LIMIT 1"), args).fetchone()
        return None if row is None or row[0] is None else self._dec(row[0])

    def hmac_key(self, name: str) -> bytes:
        """The store's secret key ``name``, created (32 random bytes) by whoever asks first."""
        import secrets
        import time

        with self._read() as cur:
            row = cur.execute(self._q("SELECT value FROM store_keys WHERE name = ?"), (name,)).fetchone()
        if row is not None:
            return bytes.fromhex(row[0])
        # Insert-if-absent then read: two processes asking at once both read the one winner.
        with self._write() as cur:
            cur.execute(self._q("INSERT INTO store_keys (name, value, created_at) VALUES (?, ?, ?) "
                                "ON CONFLICT (name) DO NOTHING"),
                        (name, secrets.token_hex(32), time.time()))
            row = cur.execute(self._q("SELECT value FROM store_keys WHERE name = ?"), (name,)).fetchone()
        return bytes.fromhex(row[0])

    # -- runs ----------------------------------------------------------------------------
    def create_run(self, run: RunRecord) -> None:
        with self._write_one() as cur:
            self._insert_run(cur, run)

    def _insert_run(self, cur: Any, run: RunRecord) -> None:
        values = [self._enc(getattr(run, f)) if f in RUN_JSON else getattr(run, f) for f in RUN_FIELDS]
        marks = ", ".join("?" * len(RUN_FIELDS))
        try:
            cur.execute(self._q(f"INSERT INTO runs ({RUN_COLS}) VALUES ({marks})"), values)
        except self._integrity as exc:
            raise StoreError(f"run {run.id} already exists") from exc

    def _assignments(self, fields: dict[str, Any]) -> tuple[str, list[Any]]:
        names = list(fields)
        bad = [n for n in names if n not in RUN_FIELDS or n in ("id", "owner_epoch")]
        if bad:
            raise StoreError(f"unknown run field(s): {', '.join(bad)}")
        values = [self._enc(fields[n]) if n in RUN_JSON else fields[n] for n in names]
        return ", ".join(f"{n} = ?" for n in names), values

    def _set_run(self, cur: Any, run_id: str, fields: dict[str, Any], expect_last_seq: int | None = None,
                 expect_epoch: int | None = None) -> int:
        """UPDATE one run (only while its last_seq / owner_epoch are the expected ones, when given); the row count."""
        assign, values = self._assignments(fields)
        where, args = "id = ?", [run_id]
        if expect_last_seq is not None:
            where += " AND last_seq = ?"
            args.append(expect_last_seq)
        if expect_epoch is not None:
            where += " AND owner_epoch = ?"
            args.append(expect_epoch)
        cur.execute(self._q(f"UPDATE runs SET {assign} WHERE {where}"), (*values, *args))
        return cur.rowcount

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
        """Become the run's owner in one conditional UPDATE (see the Store protocol); the new record."""
        fields = {"status": "running", **fields, "owner": owner, "heartbeat_at": now}
        fields.pop("last_seq", None)
        assign, values = self._assignments(fields)
        statuses = sorted(expect_status)
        marks = ", ".join("?" * len(statuses))
        events = list(events)
        dump = self._json
        with self._write() as cur:
            # Status, owner and epoch in ONE statement: of two racing takeovers one matches.
            row = cur.execute(self._q(
                f"UPDATE runs SET {assign}, owner_epoch = owner_epoch + 1 "
                f"WHERE id = ? AND owner_epoch = ? AND status IN ({marks}) RETURNING {RUN_COLS}"
            ), (*values, run_id, expect_epoch, *statuses)).fetchone()
            if row is None:
                raise self._taken(cur, run_id)
            record = self._run(row)
            if events:
                first = record.last_seq + 1
                rows = [(run_id, first + i, now, t, p, dump(d)) for i, (t, p, d) in enumerate(events)]
                record.last_seq = first + len(rows) - 1
                cur.execute(self._q("UPDATE runs SET last_seq = ? WHERE id = ?"), (record.last_seq, run_id))
                try:
                    self._insert_events(cur, rows)
                except self._integrity as exc:
                    raise StoreError(f"duplicate event seq for run {run_id}") from exc
                self._notify(cur, [run_id])
        return record

    def set_run_if(self, run_id: str, *, expect_status: Iterable[str], expect_epoch: int, **fields: Any) -> RunRecord:
        """Update a run only while its status and epoch are the expected ones; the new record."""
        assign, values = self._assignments(fields)
        statuses = sorted(expect_status)
        marks = ", ".join("?" * len(statuses))
        with self._write_one() as cur:   # the read after a miss only explains it
            row = cur.execute(self._q(
                f"UPDATE runs SET {assign} WHERE id = ? AND owner_epoch = ? AND status IN ({marks}) "
                f"RETURNING {RUN_COLS}"), (*values, run_id, expect_epoch, *statuses)).fetchone()
            if row is None:
                raise self._taken(cur, run_id)
        return self._run(row)

    def _taken(self, cur: Any, run_id: str) -> Exception:
        """Why a conditional update of ``run_id`` matched nothing: NotFound or RunTakenOver."""
        row = cur.execute(self._q("SELECT owner, status, owner_epoch FROM runs WHERE id = ?"), (run_id,)).fetchone()
        if row is None:
            return NotFound(f"run {run_id} not found (see `agentform runs`)")
        return RunTakenOver(run_id, row[0], row[1], row[2])

    def update_run(self, run_id: str, **fields: Any) -> None:
        if not fields:
            return
        with self._write_one() as cur:
            if self._set_run(cur, run_id, fields) == 0:
                raise NotFound(f"run {run_id} not found")

    def get_run(self, run_id_or_prefix: str) -> RunRecord:
        """The run with this id or unique prefix; NotFound / UsageError (ambiguous) otherwise."""
        prefix = run_id_or_prefix.strip()
        if not prefix:
            raise UsageError("a run id (or a unique prefix of one) is required")
        with self._read() as cur:
            row = cur.execute(self._q(f"SELECT {RUN_COLS} FROM runs WHERE id = ?"), (prefix,)).fetchone()
            if row is None:
                # Ids compare bytewise (PostgreSQL: COLLATE "C"), so this is an index range.
                rows = cur.execute(self._q(f"SELECT {RUN_COLS} FROM runs WHERE id >= ? AND id < ? "
                                           "ORDER BY id LIMIT 11"), (prefix, prefix + "\U0010ffff")).fetchall()
                if not rows:
                    raise NotFound(f"run {prefix} not found (see `agentform runs`)")
                if len(rows) > 1:
                    shown = ", ".join(r[0] for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
                    raise UsageError(f"run prefix {prefix} is ambiguous: it matches {shown}; give more characters")
                row = rows[0]
        return self._run(row)

    def list_runs(self, limit: int = 50, thread: str | None = None, status: str | None = None, *,
                  target: str | None = None, namespace: str | None = None,
                  before: tuple[float, str] | None = None) -> list[RunRecord]:
        where, args = [], []
        if thread is not None:
            where.append("thread = ?")
            args.append(thread)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if target is not None:
            where.append("target = ?")
            args.append(target)
        if namespace is not None:   # targets are kind/namespace/name; names hold no / (DNS labels)
            where.append("target LIKE ? ESCAPE '!'")
            args.append("%/" + namespace.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "/%")
        if before is not None:      # keyset pagination in the listing's order (newest first)
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            args += [before[0], before[0], before[1]]
        sql = f"SELECT {RUN_COLS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._read() as cur:
            rows = cur.execute(self._q(sql + " ORDER BY created_at DESC, id DESC LIMIT ?"), (*args, limit)).fetchall()
        return [self._run(r) for r in rows]

    def list_threads(self, limit: int = 50, namespace: str | None = None) -> list[tuple[str, int, float, float]]:
        """(thread, runs, first created_at, last created_at) of each thread, latest activity first."""
        sql, args = "SELECT thread, count(*), min(created_at), max(created_at) FROM runs WHERE thread IS NOT NULL", []
        if namespace is not None:
            sql += " AND target LIKE ? ESCAPE '!'"
            args.append("%/" + namespace.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "/%")
        sql += " GROUP BY thread ORDER BY max(created_at) DESC, thread LIMIT ?"
        with self._read() as cur:
            rows = cur.execute(self._q(sql), (*args, limit)).fetchall()
        return [(r[0], int(r[1]), float(r[2]), float(r[3])) for r in rows]

    def claim_run(self, owner: str, now: float) -> RunRecord | None:
        """Take the oldest queued run for ``owner`` (now running, with owner and heartbeat); None when none."""
        with self._write_one() as cur:
            row = cur.execute(self._q(
                "UPDATE runs SET status = 'running', owner = ?, heartbeat_at = ?, started_at = COALESCE(started_at, ?), "
                "owner_epoch = owner_epoch + 1 "
                "WHERE id = (SELECT id FROM runs WHERE status = 'queued' ORDER BY created_at, id "
                f"LIMIT 1{self._skip_locked}) RETURNING {RUN_COLS}"
            ), (owner, now, now)).fetchone()
        return self._run(row) if row else None

    def delete_runs(self, run_ids: Iterable[str]) -> int:
        """Delete these runs and their events (``gc``); returns how many runs were deleted."""
        ids = list(run_ids)
        deleted = 0
        with self._write() as cur:
            for chunk in iter_chunks(ids, 500):
                marks = ", ".join("?" * len(chunk))
                cur.execute(self._q(f"DELETE FROM events WHERE run_id IN ({marks})"), chunk)
                cur.execute(self._q(f"DELETE FROM runs WHERE id IN ({marks})"), chunk)
                deleted += cur.rowcount
        return deleted

    # -- events --------------------------------------------------------------------------
    def append_events(
        self,
        events: list[Event],
        run_updates: dict[str, dict[str, Any]] | None = None,
        new_runs: Iterable[RunRecord] = (),
        epochs: dict[str, int] | None = None,
    ) -> None:
        """Append a batch (group commit) in one transaction; seq must continue each run's stream.

        ``new_runs`` are created first, in the same transaction. Each run's ``last_seq``
        becomes its last appended seq (``last_seq`` in ``run_updates`` is ignored: the store
        keeps it), then ``run_updates`` are applied. A run in ``epochs`` is written only
        while its owner epoch is that number (RunTakenOver otherwise: its writer was fenced).
        """
        run_updates = {run_id: {k: v for k, v in fields.items() if k != "last_seq"}
                       for run_id, fields in (run_updates or {}).items()}
        new_runs = list(new_runs)
        firsts, lasts = _check_batch(events)
        if not events and not new_runs and not any(run_updates.values()):
            return
        self._append(events, run_updates, new_runs, epochs or {}, firsts, lasts)

    def _append(self, events: list[Event], run_updates: dict[str, dict[str, Any]], new_runs: list[RunRecord],
                epochs: dict[str, int], firsts: dict[str, int], lasts: dict[str, int]) -> None:
        """``append_events`` once its batch is checked: statement by statement in one transaction
        (PostgreSQL overrides it with a single statement, one round trip)."""
        dump = self._json
        rows = [(e.run_id, e.seq, e.ts, e.type, e.path, dump(e.data)) for e in events]
        with self._write() as cur:
            for run in new_runs:
                self._insert_run(cur, run)
            # The run rows first: the conditional UPDATE checks that each run's stream
            # continues (and, on PostgreSQL, row-locks the run against concurrent appends).
            for run_id in sorted(set(firsts) | {r for r, f in run_updates.items() if f}):
                fields = dict(run_updates.get(run_id, {}))
                expect = None
                if run_id in lasts:
                    fields["last_seq"] = lasts[run_id]
                    expect = firsts[run_id] - 1
                epoch = epochs.get(run_id)
                if self._set_run(cur, run_id, fields, expect, epoch) == 0:
                    self._reject(cur, run_id, firsts.get(run_id), epoch)
            if rows:
                try:
                    self._insert_events(cur, rows)
                except self._integrity as exc:   # rows beyond a stale last_seq: the key holds
                    raise StoreError(f"duplicate event seq for run(s) {', '.join(firsts)}") from exc
                self._notify(cur, lasts)

    def _reject(self, cur: Any, run_id: str, first: int | None, epoch: int | None = None) -> None:
        row = cur.execute(self._q("SELECT last_seq, owner_epoch, owner, status FROM runs WHERE id = ?"),
                          (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"cannot append to run {run_id}: no such run")
        if epoch is not None and row[1] != epoch:
            raise RunTakenOver(run_id, row[2], row[3], row[1], (
                f"run {run_id} was taken over by {row[2] or 'another process'} (owner epoch {row[1]}, "
                f"this writer's is {epoch}): its events from here on are not written"))
        raise StoreError(f"run {run_id}: event seq {first} does not continue the stream "
                         f"(last stored seq is {row[0]})")

    def read_events(self, run_id: str, after: int = 0, limit: int | None = None) -> list[Event]:
        sql = f"SELECT {EVENT_COLS} FROM events WHERE run_id = ? AND seq > ? ORDER BY seq"
        args: tuple = (run_id, after)
        if limit is not None:
            sql += " LIMIT ?"
            args += (limit,)
        with self._read() as cur:
            rows = cur.execute(self._q(sql), args).fetchall()
        return [self._event(r) for r in rows]

    # -- app sync status (`watch`) -------------------------------------------------------
    def record_app_sync(self, record: AppSyncRecord) -> None:
        # One upsert whose update half writes only the fields of this kind of outcome.
        own = _APP_SYNC_OWN["synced" if record.phase == "Synced" else "error"]
        updates = ", ".join(f"{c} = excluded.{c}" for c in ("source", "ref", "path", "phase", "updated_at", *own))
        updates += ", head_commit = COALESCE(excluded.head_commit, app_sync.head_commit)"
        values = dataclasses.astuple(record)
        with self._write_one() as cur:
            cur.execute(self._q(f"INSERT INTO app_sync ({APP_SYNC_COLS}) VALUES "
                                f"({', '.join('?' * len(values))}) ON CONFLICT (app) DO UPDATE SET {updates}"),
                        values)

    def list_app_sync(self, app: str | None = None) -> list[AppSyncRecord]:
        sql, args = f"SELECT {APP_SYNC_COLS} FROM app_sync", ()
        if app is not None:
            sql, args = sql + " WHERE app = ?", (app,)
        with self._read() as cur:
            rows = cur.execute(self._q(sql + " ORDER BY app"), args).fetchall()
        return [AppSyncRecord(*row) for row in rows]

    def latest_revisions_by_app(self) -> dict[str, RevisionRecord]:
        with self._read() as cur:
            rows = cur.execute(self._q(f"SELECT {REVISION_COLS} FROM revisions WHERE number IN "
                                       "(SELECT max(number) FROM revisions GROUP BY app)")).fetchall()
        return {r.app: r for r in map(self._revision, rows)}


APP_SYNC_COLS = ", ".join(f.name for f in dataclasses.fields(AppSyncRecord))
_APP_SYNC_OWN = {"synced": ("synced_commit", "synced_revision", "synced_at"),
                 "error": ("error", "error_commit", "error_at")}


def _check_batch(events: list[Event]) -> tuple[dict[str, int], dict[str, int]]:
    """The first and last seq of each run in a batch, which must be contiguous within it."""
    firsts: dict[str, int] = {}
    lasts: dict[str, int] = {}
    for event in events:
        previous = lasts.get(event.run_id)
        if previous is None:
            firsts[event.run_id] = event.seq
        elif event.seq != previous + 1:
            raise StoreError(f"run {event.run_id}: event seq {event.seq} does not follow {previous} in the batch")
        lasts[event.run_id] = event.seq
    return firsts, lasts


def iter_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
