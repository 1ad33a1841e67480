"""The scale-out store: PostgreSQL through psycopg 3 and a small connection pool.

Tables live in the schema named by the URL's ``schema`` parameter (created when missing),
so several installations (and tests) share one database. Events are written with COPY;
followers LISTEN on a channel per schema, notified in the append transaction; the apply
lock is a session advisory lock, so it dies with the process that held it.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from agentform.engine.errors import LockHeld, StoreError

from ._sqlbase import EVENT_COLS, SqlStore
from .base import Event
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
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def redact(url: str) -> str:
    """The URL without its password, for messages and ``Store.url``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _schema_key(schema: str) -> int:
    return zlib.crc32(schema.encode()) & 0x7FFFFFFF


# A \u0000 escape (after an even run of backslashes): JSONB cannot hold NUL characters.
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


@lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class PostgresStore(SqlStore):
    """The Store protocol on PostgreSQL; thread-safe, and many processes may share it."""

    _integrity = (psycopg.errors.IntegrityError,)
    _skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, *, pool_size: int = 8):
        conninfo, schema = parse_pg_url(url)
        self.url = redact(url)
        self._conninfo = conninfo
        self._kwargs: dict[str, Any] = {"options": f"-csearch_path={schema}"} if schema else {}
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

    def _q(self, sql: str) -> str:
        return _pg(sql)

    def _dec(self, value: Any) -> Any:
        return value   # psycopg loads JSONB itself

    def _json(self, value: Any) -> str:
        """JSON text for JSONB: NUL characters (say, a binary file a tool read) become U+FFFD."""
        text = super()._json(value)
        return _NUL_ESCAPE.sub(r"\1\\ufffd", text) if "\\u0000" in text else text

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
