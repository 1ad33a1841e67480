"""Project-wide fixtures. Keep this file small and stable: every test folder relies on it.

Fixture API
-----------
``pg_url`` (session)
    URL of a fresh PostgreSQL database ``agentform_test_<random>``, created from
    ``AGENTFORM_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``) and dropped
    at the end of the session (with ``synchronous_commit = off``: no test crashes PostgreSQL).
    PostgreSQL unreachable: the tests that use it FAIL with the reason;
    ``AGENTFORM_TEST_PG=skip`` skips them instead.
``pg_store_url`` (function)
    ``pg_url`` with a fresh schema for this test: ``...?schema=t_<random>``.
``store_url`` (function, parametrized, ids ``sqlite`` / ``postgres``)
    A URL naming a fresh, empty store for this test: ``sqlite:///<tmp_path>/state.db`` or
    ``pg_store_url``. Pass it to ``open_store(url)`` or ``agentform --store URL``; other
    processes may open it too.
``store`` (function)
    ``open_store(store_url)``, closed after the test. Any test that uses ``store`` or
    ``store_url`` runs once per backend.

Helper (a plain function of this module, used by the fixtures above):
``make_pg_url(base_url, schema=None)`` returns ``base_url`` with a ``schema`` parameter (a
random ``t_...`` name when None). A test that needs a second fresh PostgreSQL store asks
for ``pg_store_url`` (or ``pg_url`` and adds its own ``?schema=``).
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def make_pg_url(base_url: str, schema: str | None = None) -> str:
    """``base_url`` with ``?schema=NAME`` (random ``t_<hex>`` when not given)."""
    parts = urlsplit(base_url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    query.append(("schema", schema or f"t_{secrets.token_hex(6)}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def pg_url():
    """A fresh PostgreSQL database for this session (see the module docstring)."""
    base = os.environ.get("AGENTFORM_TEST_PG", DEFAULT_PG)
    if base == "skip":
        pytest.skip("AGENTFORM_TEST_PG=skip: PostgreSQL tests skipped")
    import psycopg
    from psycopg import sql

    name = f"agentform_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {base} ({exc}); start it, point AGENTFORM_TEST_PG "
            "at a server, or set AGENTFORM_TEST_PG=skip to skip these tests",
            pytrace=False,
        )
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        # Commits stay atomic, ordered and visible at once; only their survival of a crash of
        # PostgreSQL itself (never a test's subject) is given up: a commit no longer waits for
        # its WAL flush (3 ms -> 0.4 ms per event append on these disks).
        admin.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(sql.Identifier(name)))
    try:
        yield _with_database(base, name)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_store_url(pg_url):
    """A fresh schema in the session database, as a store URL."""
    return make_pg_url(pg_url)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """A URL naming a fresh store, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return make_pg_url(request.getfixturevalue("pg_url"))


@pytest.fixture(autouse=True)
def _forget_secrets():
    """Secret values register with a process-wide redactor: forget them after each test, so that
    one test's secrets do not change how the next test's stream is cut."""
    yield
    from agentform.engine.redaction import REDACTOR

    REDACTOR.clear()


@pytest.fixture
def store(store_url):
    """The store at ``store_url``, opened (migrated) and closed after the test."""
    from agentform.engine.store import open_store

    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()
