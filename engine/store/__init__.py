"""The state store: SQLite (embedded default) or PostgreSQL, behind one interface."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Store

__all__ = ["open_store"]


def open_store(url: str | None, home: Path | str = ".agentform") -> Store:
    """Open (and migrate) the store at ``url``: ``postgresql://...``, ``sqlite:///path``, or None for ``home/state.db``."""
    from agentform.engine.errors import StoreError

    if url and url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url)
    from .sqlite import SqliteStore

    if not url:
        return SqliteStore(Path(home) / "state.db")
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url.removeprefix("sqlite:///")))
    raise StoreError(f"unsupported store URL {url.split('://')[0]}://...: use postgresql://... or sqlite:///PATH")
