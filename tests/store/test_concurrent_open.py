"""Many real processes open one PostgreSQL store schema at the same instant.

Each child imports agentform once, prints "ready" and blocks on stdin; the parent then
writes the same URL to every child, so the opens race for real (round after round).
"""

from __future__ import annotations

import secrets
import time

import psycopg
import pytest

from agentform.engine.errors import StoreError
from agentform.engine.store import open_store
from agentform.engine.store.migrate import load_migrations, migrate_postgres
from agentform.engine.store.postgres import MIGRATE_LOCK, _schema_key, parse_pg_url

from .store_procs import Child

PROCESSES = 12
ROUNDS = 6


@pytest.fixture
def children():
    started = [Child("open-lines") for _ in range(PROCESSES)]
    try:
        for child in started:
            child.expect("ready")
        yield started
    finally:
        for child in started:
            child.kill()


def _fresh_url(pg_url: str) -> str:
    return f"{pg_url}{'&' if '?' in pg_url else '?'}schema=race_{secrets.token_hex(5)}"


def _race(children: list[Child], url: str) -> list[str]:
    for child in children:             # every child is blocked on stdin: this is the start gun
        child.proc.stdin.write(url + "\n")
        child.proc.stdin.flush()
    return [child.line() for child in children]


def _recorded(url: str) -> list[int]:
    conninfo, schema = parse_pg_url(url)
    with psycopg.connect(conninfo) as conn:
        return [row[0] for row in conn.execute(f'SELECT version FROM "{schema}".schema_migrations ORDER BY version')]


def test_fresh_schema_opened_by_many_processes_at_once(children, pg_url):
    expected = [m.version for m in load_migrations("postgres")]
    for _ in range(ROUNDS):
        url = _fresh_url(pg_url)
        assert _race(children, url) == ["opened"] * PROCESSES
        assert _recorded(url) == expected          # each migration applied (and recorded) once


def test_migrated_schema_opened_by_many_processes_at_once(children, pg_store_url):
    url = pg_store_url
    open_store(url).close()
    for _ in range(ROUNDS):
        assert _race(children, url) == ["opened"] * PROCESSES
    assert _recorded(url) == [m.version for m in load_migrations("postgres")]


def test_up_to_date_store_opens_while_the_migration_lock_is_held(pg_store_url):
    url = pg_store_url
    open_store(url).close()
    conninfo, schema = parse_pg_url(url)
    with psycopg.connect(conninfo, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (MIGRATE_LOCK, _schema_key(schema)))
        child = Child("open", url)     # would block on the lock if opening took it
        try:
            child.expect("opened")
            assert child.finish() == 0
        finally:
            child.kill()


def test_failing_migration_names_its_statement_not_the_aborted_transaction(pg_store_url, monkeypatch):
    from agentform.engine.store import migrate

    broken = migrate.Migration(1, "broken", "CREATE TABLE ok_first (x INT);\nSELECT no_such_column FROM ok_first;")
    monkeypatch.setattr(migrate, "load_migrations", lambda dialect: (broken,))
    conninfo, schema = parse_pg_url(pg_store_url)
    with psycopg.connect(conninfo, options=f"-csearch_path={schema}") as conn:
        with pytest.raises(StoreError) as caught:
            migrate_postgres(conn, schema, (MIGRATE_LOCK, _schema_key(schema)))
        message = str(caught.value)
        assert "migration 0001_broken failed" in message and "no_such_column" in message
        assert "aborted" not in message
        assert conn.execute("SELECT to_regclass(%s)", (f"{schema}.ok_first",)).fetchone() == (None,)   # rolled back


def _backend_waiting_on(conn: psycopg.Connection, query_prefix: str) -> bool:
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query LIKE %s", (query_prefix + "%",)).fetchone()[0] > 0


def test_schema_created_at_the_same_moment_outside_agentform(pg_store_url):
    """Concurrent CREATE SCHEMA IF NOT EXISTS fails on pg_namespace's unique index; the open must not."""
    conninfo, schema = parse_pg_url(pg_store_url)
    with psycopg.connect(conninfo) as outsider, psycopg.connect(conninfo, autocommit=True) as monitor:
        outsider.execute(f'CREATE SCHEMA "{schema}"')           # not committed yet
        child = Child("open", pg_store_url)
        try:
            while not _backend_waiting_on(monitor, "CREATE SCHEMA IF NOT EXISTS"):
                assert child.proc.poll() is None, child.proc.stderr.read()
                time.sleep(0.01)                                  # polling observable state
            outsider.commit()
            child.expect("opened")
            assert child.finish() == 0
        finally:
            child.kill()
    assert _recorded(pg_store_url) == [m.version for m in load_migrations("postgres")]
