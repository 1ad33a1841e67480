"""Schema migrations on both backends: empty database, upgrade in place, re-open, racing starts."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from agentform.engine.errors import StoreError
from agentform.engine.store import open_store
from agentform.engine.store.migrate import load_migrations, migrate_postgres, migrate_sqlite
from agentform.engine.store.postgres import parse_pg_url
from agentform.engine.store.sqlite import SqliteStore

from .store_procs import Child


def _dialect(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


def _applied(url: str) -> list[tuple[int, str]]:
    if _dialect(url) == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    conninfo, schema = parse_pg_url(url)
    with psycopg.connect(conninfo) as conn:
        return conn.execute(f'SELECT version, name FROM "{schema}".schema_migrations ORDER BY version').fetchall()


def _apply_first_only(url: str) -> None:
    """An 'older agentform': only migration 1, applied by hand."""
    if _dialect(url) == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        migrate_sqlite(conn, upto=1)
        conn.execute("INSERT INTO runs (id, target, status, revision, created_at) VALUES ('old', 't', 'succeeded', 1, 1.0)")
        conn.close()
        return
    conninfo, schema = parse_pg_url(url)
    with psycopg.connect(conninfo, options=f"-csearch_path={schema}") as conn:
        migrate_postgres(conn, schema, (1, 1), upto=1)
        conn.execute("INSERT INTO runs (id, target, status, revision, created_at) VALUES ('old', 't', 'succeeded', 1, 1.0)")


def test_empty_database_gets_every_migration(store_url):
    store = open_store(store_url)
    store.close()
    expected = [(m.version, m.name) for m in load_migrations(_dialect(store_url))]
    assert len(expected) >= 2
    assert _applied(store_url) == expected


def test_older_database_is_upgraded_in_place(store_url):
    _apply_first_only(store_url)
    assert [v for v, _ in _applied(store_url)] == [1]
    store = open_store(store_url)
    try:
        assert store.get_run("old").status == "succeeded"          # data kept
        assert store.get_run("old").owner_epoch == 0                # 0003: runs from before epochs
        assert [r.id for r in store.list_runs(thread=None, status="succeeded")] == ["old"]
    finally:
        store.close()
    assert [v for v, _ in _applied(store_url)] == [m.version for m in load_migrations(_dialect(store_url))]


def test_reopen_is_idempotent(store_url):
    for _ in range(3):
        open_store(store_url).close()
    versions = [v for v, _ in _applied(store_url)]
    assert versions == sorted(set(versions))


def test_concurrent_starts_apply_each_migration_once(store_url):
    children = [Child("open", store_url) for _ in range(4)]
    for child in children:
        child.expect("opened")
        assert child.finish() == 0
    assert [v for v, _ in _applied(store_url)] == [m.version for m in load_migrations(_dialect(store_url))]


def test_database_from_a_newer_agentform_is_refused(tmp_path):
    path = tmp_path / "state.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (9999, 'future', 0)")
    with pytest.raises(StoreError, match="newer than this agentform"):
        SqliteStore(path)


def test_sqlite_home_folder_is_created(tmp_path):
    store = open_store(None, home=tmp_path / "deep" / "home")
    store.close()
    assert (tmp_path / "deep" / "home" / "state.db").is_file()
    with sqlite3.connect(tmp_path / "deep" / "home" / "state.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unknown_url_scheme_is_refused():
    with pytest.raises(StoreError, match="unsupported store URL"):
        open_store("mysql://x")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    (tmp_path / "state.db").write_text("not a database, just text " * 100)
    with pytest.raises(StoreError, match="state.db"):
        open_store(f"sqlite:///{tmp_path / 'state.db'}")
