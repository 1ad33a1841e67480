"""Store URLs: schema parameter, redaction, and clear errors that never show a password."""

from __future__ import annotations

import pytest

from agentform.engine.errors import StoreError
from agentform.engine.store import open_store
from agentform.engine.store.postgres import parse_pg_url, redact


def test_schema_parameter_is_split_off():
    conninfo, schema = parse_pg_url("postgresql://u@h:5432/db?sslmode=disable&schema=team_a")
    assert (conninfo, schema) == ("postgresql://u@h:5432/db?sslmode=disable", "team_a")
    assert parse_pg_url("postgresql://u@h/db") == ("postgresql://u@h/db", None)


def test_bad_schema_name_is_refused():
    with pytest.raises(StoreError, match="schema"):
        parse_pg_url("postgresql://u@h/db?schema=a;drop")


def test_password_is_redacted():
    assert redact("postgresql://u:hunter2@h/db") == "postgresql://u:***@h/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_unreachable_server_is_a_store_error_without_the_password():
    with pytest.raises(StoreError) as failed:
        open_store("postgresql://u:hunter2@127.0.0.1:1/db?schema=x")
    assert "hunter2" not in str(failed.value)
    assert "127.0.0.1" in str(failed.value)


def test_store_url_hides_the_password(pg_url):
    from urllib.parse import urlsplit

    # the test server trusts any password: the URL must still not carry it
    parts = urlsplit(pg_url)
    with_password = parts._replace(netloc=f"{parts.username}:hunter2@{parts.hostname}:{parts.port or 5432}").geturl()
    store = open_store(f"{with_password}?schema=t_redact")
    try:
        assert "hunter2" not in store.url
    finally:
        store.close()
