"""Versioned schema migrations: ``migrations/<dialect>/NNNN_name.sql``, applied in order.

Each store calls ``migrate_*`` when it opens. Applied versions are recorded in
``schema_migrations (version, name, applied_at)``; the whole run holds a database-wide
lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL an advisory transaction lock), so processes
that start together apply each migration once. A database migrated by a newer agentform
(a version this code does not know) is refused rather than written to.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from agentform.engine.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at {real} NOT NULL
)"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def load_migrations(dialect: str) -> tuple[Migration, ...]:
    """The migrations of ``dialect`` ("sqlite" | "postgres"), ordered by version."""
    found = []
    for file in sorted((MIGRATIONS / dialect).glob("*.sql")):
        match = _FILE.match(file.name)
        if not match:
            raise StoreError(f"{file}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], file.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StoreError(f"{MIGRATIONS / dialect}: two migrations share a version")
    return tuple(found)


def _pending(dialect: str, applied: set[int], upto: int | None) -> list[Migration]:
    known = load_migrations(dialect)
    newest = max((m.version for m in known), default=0)
    unknown = sorted(v for v in applied if v > newest)
    if unknown:
        raise StoreError(
            f"the state store has schema version {unknown[-1]}, newer than this agentform "
            f"knows ({newest}); upgrade agentform"
        )
    return [m for m in known if m.version not in applied and (upto is None or m.version <= upto)]


def split_sqlite(script: str) -> list[str]:
    """Split a script into statements (``executescript`` would commit our transaction)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise StoreError(f"incomplete SQL statement in migration: {buffer.strip()[:80]}")
    return statements


def _up_to_date_sqlite(conn: sqlite3.Connection, upto: int | None) -> bool:
    """The common case, checked without taking the write lock: nothing to apply."""
    exists = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    if conn.execute(exists).fetchone() is None:
        return False
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    return not _pending("sqlite", applied, upto)


def migrate_sqlite(conn: sqlite3.Connection, upto: int | None = None) -> list[int]:
    """Apply pending migrations in one IMMEDIATE transaction; returns the versions applied."""
    if _up_to_date_sqlite(conn, upto):
        return []
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_CREATE_TABLE.format(real="REAL"))
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        done = []
        for migration in _pending("sqlite", applied, upto):
            for statement in split_sqlite(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
            done.append(migration.version)
        conn.execute("COMMIT")
        return done
    except BaseException as exc:
        # SQLite may have ended the transaction itself (a full disk): a ROLLBACK would then
        # fail with "no transaction is active" and hide the error that matters.
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error as rollback_error:
                exc.add_note(f"the rollback failed too: {rollback_error}")
        raise


def migrate_postgres(conn: Any, schema: str, lock_key: tuple[int, int], upto: int | None = None) -> list[int]:
    """Create ``schema`` if needed and apply pending migrations under an advisory lock.

    ``conn`` is a psycopg connection (not autocommit) whose search_path is ``schema``.
    A failing statement raises StoreError naming that statement (never the
    "transaction is aborted" error of a later one).
    """
    from psycopg import sql

    run = _PgSteps(conn, schema)
    with conn.transaction():
        if _up_to_date_pg(run, upto):
            return []
        run("take the migration lock", "SELECT pg_advisory_xact_lock(%s, %s)", lock_key)
        _create_schema(run, sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        run("create schema_migrations", _CREATE_TABLE.format(real="DOUBLE PRECISION"))
        applied = {row[0] for row in run("read schema_migrations", "SELECT version FROM schema_migrations")}
        done = []
        for migration in _pending("postgres", applied, upto):
            run(f"migration {migration.version:04d}_{migration.name}", migration.sql)
            run(f"record migration {migration.version:04d}",
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.name, time.time()))
            done.append(migration.version)
    return done


class _PgSteps:
    """Runs one migration statement; a psycopg error becomes a StoreError naming the step."""

    def __init__(self, conn: Any, schema: str):
        self.conn, self.schema = conn, schema

    def __call__(self, step: str, query: Any, params: Any = None) -> Any:
        import psycopg

        try:
            return self.conn.execute(query, params)
        except psycopg.Error as exc:
            detail = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
            raise StoreError(f"migrating schema {self.schema!r}: {step} failed: "
                             f"{detail} (SQLSTATE {exc.sqlstate})") from exc


def _up_to_date_pg(run: _PgSteps, upto: int | None) -> bool:
    """The common case, checked without the lock: the table exists and nothing is pending.

    A store being created by another process is invisible here until it commits, so this
    reads either nothing (and we take the lock) or a complete, committed set of migrations.
    """
    if run("look up schema_migrations", "SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
        return False
    applied = {row[0] for row in run("read schema_migrations", "SELECT version FROM schema_migrations")}
    return not _pending("postgres", applied, upto)


def _create_schema(run: _PgSteps, statement: Any) -> None:
    """CREATE SCHEMA IF NOT EXISTS, tolerating a schema created at the same moment elsewhere.

    Concurrent IF NOT EXISTS can still fail on pg_namespace's unique index when the creator
    does not hold our lock (an admin, another tool); the schema then exists, which is all
    we need, so that one error is rolled back to a savepoint and ignored.
    """
    from psycopg import errors

    try:
        with run.conn.transaction():
            run("create the schema", statement)
    except StoreError as exc:
        if not isinstance(exc.__cause__, (errors.UniqueViolation, errors.DuplicateSchema)):
            raise


def known_version(dialect: str) -> int:
    """The newest schema version this agentform knows for ``dialect``."""
    return max((m.version for m in load_migrations(dialect)), default=0)


def probe_version(url: str | None, home: Path | str = ".agentform") -> tuple[str, int | None]:
    """(dialect, the highest migration applied) of the store at ``url``, read without opening
    (so without migrating) it; None when the store does not exist yet. ``--version`` reports it."""
    if url and url.startswith(("postgresql://", "postgres://")):
        import psycopg

        from .postgres import parse_pg_url

        conninfo, schema = parse_pg_url(url)
        options = {"options": f"-c search_path={schema}"} if schema else {}
        try:
            with psycopg.connect(conninfo, connect_timeout=5, autocommit=True, **options) as conn:
                if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
                    return "postgres", None
                return "postgres", conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        except psycopg.Error as exc:
            raise StoreError(f"cannot read the store's schema version: {exc}".strip()) from exc
    path = Path(url.removeprefix("sqlite:///")) if url else Path(home) / "state.db"
    if not path.exists():
        return "sqlite", None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
        if found.fetchone() is None:
            return "sqlite", None
        return "sqlite", conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the schema version of {path}: {exc}") from exc
    finally:
        conn.close()
