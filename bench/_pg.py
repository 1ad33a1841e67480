"""A throw-away PostgreSQL schema for one benchmark (dropped afterwards, even on failure)."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def temporary_schema(base: str) -> Iterator[str]:
    """Yield ``base`` with ``schema=bench_<random>`` added; drop that schema on exit."""
    import psycopg

    schema = f"bench_{secrets.token_hex(4)}"
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}schema={schema}"
    finally:
        try:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        except psycopg.Error as exc:
            print(f"postgresql: could not drop schema {schema}: {exc}", file=sys.stderr)
