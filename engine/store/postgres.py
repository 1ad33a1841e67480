"""The scale-out store: PostgreSQL through psycopg 3 and a small connection pool.

Tables live in the schema named by the URL's ``schema`` parameter (created when missing),
so several installations (and tests) share one database. A batch of events, with its
runs' record updates, owner-epoch checks and new runs, is one statement: one round trip,
one commit (``_append``). Followers LISTEN on a channel per schema, notified by that
statement; the apply lock is a session advisory lock, so it dies with the process that held it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from agentform.engine.errors import LockHeld, RunTakenOver, StoreError

from ._sqlbase import EVENT_COLS, RUN_COLS, RUN_FIELDS, RUN_JSON, SqlStore
from .base import Event, RunRecord
from .migrate import migrate_postgres

MIGRATE_LOCK = 0x61666D31   # advisory lock namespaces ("afm1", "afl1"); the second key is the schema's
APPLY_LOCK = 0x61666C31
_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
LISTEN_SLICE_S = 0.5        # how often the listener thread checks for close()
FALLBACK_POLL_S = 1.0       # re-read even without a notification (a lost one costs this much)


def parse_pg_url(url: str) -> tuple[str, str | None]:
    """Split ``postgresql://...?schema=NAME`` into the libpq URL and the schema name."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in query if k == "schema"]
    schema = schemas[-1] if schemas else None
    if schema is not None and not _SCHEMA.match(schema):
        raise StoreError(f"store URL: schema {schema!r} must be letters, digits and _ (at most 63)")
    rest = urlencode([(k, v) for k, v in query if k != "schema"], quote_via=quote)   # libpq reads "+" as "+"
    return urlunsplit(parts._replace(query=rest)), schema


def redact(url: str) -> str:
    """The URL without its password, for messages and ``Store.url``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _options(conninfo: str, schema: str) -> str:
    """The URL's own ``options`` (say ``-csynchronous_commit=off``) plus the schema's search_path:
    a keyword argument would replace the URL's value, not add to it."""
    try:
        own = conninfo_to_dict(conninfo).get("options")
    except psycopg.Error as exc:
        raise StoreError(f"store URL: {exc}") from exc
    # A process paused inside a transaction (SIGSTOP, a long GC) would keep its row locks and
    # block every takeover of its runs: PostgreSQL ends such a session after the worker lease.
    idle = int(float(os.environ.get("AGENTFORM_WORKER_LEASE", "30")) * 1000)
    mine = f"-csearch_path={schema} -cidle_in_transaction_session_timeout={idle}"
    return f"{own} {mine}" if own else mine


def _schema_key(schema: str) -> int:
    return zlib.crc32(schema.encode()) & 0x7FFFFFFF


# A \u0000 escape (after an even run of backslashes): JSONB cannot hold NUL characters.
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


@lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


def _append_statement(store: PostgresStore, events: list[Event], run_updates: dict[str, dict[str, Any]],
                      new_runs: list[RunRecord], epochs: dict[str, int], firsts: dict[str, int],
                      lasts: dict[str, int]) -> tuple[str, list[Any], list[tuple[str, int | None, int | None]]]:
    """The SQL and arguments of one append, and the (run, expected last_seq, epoch) each UPDATE checks."""
    ctes: list[str] = []
    args: list[Any] = []
    created = set()
    if new_runs:
        # A new run is inserted as it ends up after this batch: sibling statements of one
        # WITH do not see each other's rows, so it cannot be inserted, then updated.
        rows = []
        for run in new_runs:
            fields = run_updates.get(run.id, {})
            store._assignments(fields)   # the same refusal of unknown fields as an update
            if run.id in firsts:
                if firsts[run.id] != run.last_seq + 1:
                    raise StoreError(f"run {run.id}: event seq {firsts[run.id]} does not continue the stream "
                                     f"(last stored seq is {run.last_seq})")
                fields = {**fields, "last_seq": lasts[run.id]}
            epoch = epochs.get(run.id)
            if epoch is not None and epoch != run.owner_epoch:
                raise RunTakenOver(run.id, run.owner, run.status, run.owner_epoch, (
                    f"run {run.id} is created with owner epoch {run.owner_epoch}, but its writer's is {epoch}: "
                    "its events are not written"))
            run = dataclasses.replace(run, **fields) if fields else run
            rows.append("(" + ", ".join(["%s"] * len(RUN_FIELDS)) + ")")
            args.extend(store._enc(getattr(run, f)) if f in RUN_JSON else getattr(run, f) for f in RUN_FIELDS)
            created.add(run.id)
        ctes.append(f"n AS (INSERT INTO runs ({RUN_COLS}) VALUES {', '.join(rows)} RETURNING 1)")
    checks = []
    for run_id in sorted((set(firsts) | {r for r, f in run_updates.items() if f}) - created):
        fields = dict(run_updates.get(run_id, {}))
        expect = None
        if run_id in lasts:
            fields["last_seq"] = lasts[run_id]
            expect = firsts[run_id] - 1
        assign, values = store._assignments(fields)
        where = "id = %s"
        args.extend(values)
        args.append(run_id)
        if expect is not None:
            where += " AND last_seq = %s"
            args.append(expect)
        epoch = epochs.get(run_id)
        if epoch is not None:
            where += " AND owner_epoch = %s"
            args.append(epoch)
        ctes.append(f"u{len(checks)} AS (UPDATE runs SET {_pg(assign)} WHERE {where} RETURNING 1)")
        checks.append((run_id, expect, epoch))
    if events:
        # The batch travels as one JSON document (one encode here, one parse there): cheaper
        # on both sides than COPY's per-row messages or six parameter arrays.
        ctes.append(f"e AS (INSERT INTO events ({EVENT_COLS}) SELECT e->>0, (e->>1)::int, (e->>2)::float8, "
                    "e->>3, e->>4, e->5 FROM jsonb_array_elements(%s::jsonb) AS e)")
        args.append(store._json([(e.run_id, e.seq, e.ts, e.type, e.path, e.data) for e in events]))
    # The SELECT runs the CTEs it reads in order (new runs, then the updates); the events'
    # INSERT, read by nothing, runs last, so a clash on a new run's id is reported as such.
    matched = " * ".join(f"(SELECT count(*) FROM u{i})" for i in range(len(checks))) or "1"
    select = ("SELECT (SELECT count(*) FROM n), " if created else "SELECT ") + f"1 / ({matched})"
    if lasts:   # VALUES, not an array parameter: psycopg's list dumper costs more than the rest
        select += f", (SELECT count(pg_notify(%s, r)) FROM (VALUES {', '.join(['(%s)'] * len(lasts))}) AS v(r))"
        args.append(store._channel)
        args.extend(lasts)
    return ("WITH " + ", ".join(ctes) + " " if ctes else "") + select, args, checks


def _duplicate(exc: psycopg.errors.UniqueViolation, new_runs: list[RunRecord], firsts: dict[str, int]) -> StoreError:
    if exc.diag.table_name == "runs":
        return StoreError(f"run {', '.join(r.id for r in new_runs)} already exists ({exc.diag.message_detail})")
    return StoreError(f"duplicate event seq for run(s) {', '.join(firsts)}")


class PostgresStore(SqlStore):
    """The Store protocol on PostgreSQL; thread-safe, and many processes may share it."""

    _integrity = (psycopg.errors.IntegrityError,)
    _skip_locked = " FOR UPDATE SKIP LOCKED"
    _fork_origin_sql = "e.data->'forkedFrom'->>'run'"   # gc (store/retention.py)

    def __init__(self, url: str, *, pool_size: int = 8):
        conninfo, schema = parse_pg_url(url)
        self.url = redact(url)
        self._conninfo = conninfo
        self._kwargs: dict[str, Any] = {"options": _options(conninfo, schema)} if schema else {}
        try:
            with psycopg.connect(conninfo, connect_timeout=10, **self._kwargs) as conn:
                if schema is None:
                    schema = conn.execute("SELECT current_schema()").fetchone()[0]
                    if schema is None:
                        raise StoreError("no schema to use; add ?schema=NAME to the URL")
                migrate_postgres(conn, schema, (MIGRATE_LOCK, _schema_key(schema)))
        except (psycopg.Error, StoreError) as exc:   # StoreError: migrate names the failing step
            raise StoreError(f"cannot open the state store {self.url}: {exc}") from exc
        self.schema = schema
        self._channel = f"agentform_events_{_schema_key(schema):08x}"
        self._pool = ConnectionPool(
            conninfo, kwargs={**self._kwargs, "autocommit": True}, min_size=1, max_size=pool_size, timeout=30,
            name=f"agentform-{schema}", open=True,
        )
        self._closed = False
        self._cond = threading.Condition()
        self._waiting: Counter[str] = Counter()
        self._gens: dict[str, int] = {}
        self._listener: threading.Thread | None = None

    def close(self) -> None:
        if self._closed:
            return
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._listener is not None:
            self._listener.join(timeout=LISTEN_SLICE_S * 4)
        self._pool.close()

    # -- hooks ---------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[psycopg.Cursor]:
        if self._closed:
            raise StoreError("the state store is closed")
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"state store {self.url}: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[psycopg.Cursor]:
        """A cursor in autocommit: one round trip per query, no BEGIN/COMMIT."""
        if self._closed:
            raise StoreError("the state store is closed")
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                yield cur
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"state store {self.url}: {exc}") from exc

    def _write_one(self) -> AbstractContextManager[psycopg.Cursor]:
        return self._read()   # autocommit: the statement commits itself, in one round trip

    def _q(self, sql: str) -> str:
        return _pg(sql)

    def _dec(self, value: Any) -> Any:
        return value   # psycopg loads JSONB itself

    def _json(self, value: Any) -> str:
        """JSON text for JSONB: NUL characters (say, a binary file a tool read) become U+FFFD."""
        text = super()._json(value)
        return _NUL_ESCAPE.sub(r"\1\\ufffd", text) if "\\u0000" in text else text

    # -- the append: one statement, one round trip -----------------------------------------
    def _append(self, events: list[Event], run_updates: dict[str, dict[str, Any]], new_runs: list[RunRecord],
                epochs: dict[str, int], firsts: dict[str, int], lasts: dict[str, int]) -> None:
        """The whole batch as ONE statement in autocommit: new runs, each run's conditional
        UPDATE (stream continues, owner epoch) and the events, with the NOTIFY.

        A statement is its own transaction, so this costs one round trip and one commit where
        BEGIN, UPDATE, COPY, NOTIFY and COMMIT took six. The statement's last step divides by
        the number of runs its UPDATEs matched: a fenced or stale run makes it fail (division
        by zero) and PostgreSQL undoes the whole statement; ``_refusal`` then reads why.
        """
        sql, args, checks = _append_statement(self, events, run_updates, new_runs, epochs, firsts, lasts)
        if self._closed:
            raise StoreError("the state store is closed")
        try:
            with self._pool.connection() as conn:
                try:
                    conn.execute(sql, args)
                except psycopg.errors.DivisionByZero:
                    raise self._refusal(conn, checks) from None
                except psycopg.errors.UniqueViolation as exc:
                    raise _duplicate(exc, new_runs, firsts) from exc
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"state store {self.url}: {exc}") from exc

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
        """The takeover compare-and-set and its events as one statement (one round trip): the
        events are inserted only from the row the conditional UPDATE returns, so a lost race
        writes nothing."""
        fields = {"status": "running", **fields, "owner": owner, "heartbeat_at": now}
        fields.pop("last_seq", None)
        assign, values = self._assignments(fields)
        events = list(events)
        statuses = sorted(expect_status)
        sql = (f"WITH t AS (UPDATE runs SET {_pg(assign)}, owner_epoch = owner_epoch + 1, last_seq = last_seq + %s "
               f"WHERE id = %s AND owner_epoch = %s AND status IN ({', '.join(['%s'] * len(statuses))}) "
               f"RETURNING {RUN_COLS})")
        args = [*values, len(events), run_id, expect_epoch, *statuses]
        select = f" SELECT {RUN_COLS} FROM t"
        if events:
            sql += (f", e AS (INSERT INTO events ({EVENT_COLS}) SELECT t.id, t.last_seq - %s + x.n, %s, "
                    "x.e->>0, x.e->>1, x.e->2 FROM t, jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS x(e, n))")
            args += [len(events), now, self._json(events)]
            select = f" SELECT {RUN_COLS}, pg_notify(%s, t.id) FROM t"
            args.append(self._channel)
        with self._read() as cur:   # autocommit: the one statement is the transaction
            try:
                row = cur.execute(sql + select, args).fetchone()
            except psycopg.errors.UniqueViolation as exc:   # rows beyond a lagging last_seq: the key holds
                raise StoreError(f"duplicate event seq for run {run_id}") from exc
            if row is None:
                raise self._taken(cur, run_id)
        return self._run(row[:len(RUN_FIELDS)])

    def _refusal(self, conn: psycopg.Connection, checks: list[tuple[str, int | None, int | None]]) -> StoreError:
        """Which run's conditional UPDATE matched nothing, as ``_reject`` words it."""
        with conn.cursor() as cur:
            for run_id, expect_seq, epoch in checks:
                row = cur.execute("SELECT last_seq, owner_epoch FROM runs WHERE id = %s", (run_id,)).fetchone()
                if row is None or (epoch is not None and row[1] != epoch) or (
                        expect_seq is not None and row[0] != expect_seq):
                    try:
                        self._reject(cur, run_id, None if expect_seq is None else expect_seq + 1, epoch)
                    except StoreError as exc:
                        return exc
        # Every run looks right now: a concurrent write moved one of them and back, or committed
        # between the UPDATE and this read. Nothing was written; the writer may retry.
        return StoreError(f"append to run(s) {', '.join(c[0] for c in checks)} conflicted with a concurrent "
                          "write; nothing was written")

    def _insert_events(self, cur: psycopg.Cursor, rows: list[tuple]) -> None:
        with cur.copy(f"COPY events ({EVENT_COLS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _notify(self, cur: psycopg.Cursor, run_ids: Iterable[str]) -> None:
        cur.execute("SELECT pg_notify(%s, r) FROM unnest(%s::text[]) AS r", (self._channel, list(run_ids)))

    def _lock_revisions(self, cur: psycopg.Cursor) -> None:
        cur.execute("LOCK TABLE revisions IN EXCLUSIVE MODE")

    # -- followers -----------------------------------------------------------------------
    def wait_for_events(self, run_id: str, after: int, timeout: float) -> list[Event]:
        """Events after ``after``, waiting on LISTEN/NOTIFY (re-reading every second regardless)."""
        deadline = time.monotonic() + timeout
        listening = self._ensure_listener()
        with self._cond:
            self._waiting[run_id] += 1
        try:
            while True:
                with self._cond:
                    seen = self._gens.get(run_id, 0)
                events = self.read_events(run_id, after)
                remaining = deadline - time.monotonic()
                if events or remaining <= 0 or self._closed:
                    return events
                slice_s = FALLBACK_POLL_S if listening else 0.05
                with self._cond:
                    self._cond.wait_for(lambda seen=seen: self._closed or self._gens.get(run_id, 0) != seen,
                                        timeout=min(remaining, slice_s))
        finally:
            with self._cond:
                self._waiting[run_id] -= 1
                if self._waiting[run_id] <= 0:
                    del self._waiting[run_id]
                    self._gens.pop(run_id, None)

    def _ensure_listener(self) -> bool:
        """Start the LISTEN thread once; True when it listens (else callers poll)."""
        with self._cond:
            if self._listener is not None and self._listener.is_alive():
                return True
            try:
                conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)
                conn.execute(f"LISTEN {self._channel}")
            except psycopg.Error:
                return False
            self._listener = threading.Thread(target=self._listen, args=(conn,), daemon=True,
                                              name=f"agentform-listen-{self.schema}")
            self._listener.start()
            return True

    def _listen(self, conn: psycopg.Connection) -> None:
        with conn:
            while not self._closed:
                try:
                    # A bounded notifies() call: an open generator would hold the connection.
                    for note in conn.notifies(timeout=LISTEN_SLICE_S):
                        self._wake(note.payload)
                except psycopg.Error:
                    return   # the connection is gone: waiters fall back to polling

    def _wake(self, run_id: str) -> None:
        with self._cond:
            if run_id in self._waiting:
                self._gens[run_id] = self._gens.get(run_id, 0) + 1
                self._cond.notify_all()

    # -- the apply lock ------------------------------------------------------------------
    @contextmanager
    def apply_lock(self, holder: str, timeout: float = 0.0) -> Iterator[None]:
        """Exclusive apply lock; raises LockHeld naming the holder when not had within ``timeout``."""
        key = (APPLY_LOCK, _schema_key(self.schema))
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10, **self._kwargs)
        except psycopg.Error as exc:
            raise StoreError(f"state store {self.url}: {exc}") from exc
        with conn:
            deadline = time.monotonic() + timeout
            delay = 0.02
            while not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LockHeld(self._holder(conn, key))
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, 0.5)
            with conn.transaction():
                conn.execute("DELETE FROM apply_lock")   # rows of sessions that died
                conn.execute("INSERT INTO apply_lock (backend_pid, holder, acquired_at) "
                             "VALUES (pg_backend_pid(), %s, %s)", (holder, time.time()))
            try:
                yield
            finally:
                conn.execute("DELETE FROM apply_lock WHERE backend_pid = pg_backend_pid()")
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)

    def _holder(self, conn: psycopg.Connection, key: tuple[int, int]) -> str:
        """Who holds the advisory lock, from its row (written just after the lock is taken)."""
        query = (
            "SELECT l.pid, a.holder FROM pg_locks l LEFT JOIN apply_lock a ON a.backend_pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s "
            "AND l.objid::bigint = %s AND l.objsubid = 2 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        pid = None
        for _ in range(20):
            row = conn.execute(query, key).fetchone()
            if row is None:
                return "another apply (just released)"
            pid, holder = row
            if holder:
                return holder
            time.sleep(0.05)
        return f"another apply (PostgreSQL backend pid {pid})"
