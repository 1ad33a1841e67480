"""The memory built-in's notes in the state store (table ``memory``, migration 0007).

Key/value pairs per namespace and scope (``team/NAME`` or ``agent/NAME``) that outlive runs.
``MemoryQueries`` is mixed into both SQL backends (portable SQL only). A write first upserts
the scope's row in ``memory_scopes``: on PostgreSQL that row lock orders concurrent writers
of one scope, so counting the entries and inserting a new one cannot overshoot the limit;
SQLite has one writer anyway.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from agentform.engine.errors import StoreError

_COLS = "key, value, updated_at, run_id"


@dataclass(frozen=True, slots=True)
class MemoryEntry:
    """One note: its key, value, when and by which run it was last written."""

    key: str
    value: str
    updated_at: float
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MemoryFull(StoreError):
    """A new key would take a scope over its entry limit."""


class MemoryQueries:
    """Memory reads and writes over the backend hooks of SqlStore (``_write``, ``_read``, ``_q``)."""

    def memory_put(self, namespace: str, scope: str, key: str, value: str, *, run_id: str | None,
                   max_entries: int, now: float | None = None) -> bool:
        """Set ``key`` (True when it is new); MemoryFull when a new key finds the scope full."""
        now = time.time() if now is None else now
        q = self._q  # type: ignore[attr-defined]
        with self._write() as cur:  # type: ignore[attr-defined]
            cur.execute(q("INSERT INTO memory_scopes (namespace, scope, updated_at) VALUES (?, ?, ?) "
                          "ON CONFLICT (namespace, scope) DO UPDATE SET updated_at = excluded.updated_at"),
                        (namespace, scope, now))
            exists = cur.execute(q("SELECT 1 FROM memory WHERE namespace = ? AND scope = ? AND key = ?"),
                                 (namespace, scope, key)).fetchone() is not None
            if not exists:
                count = cur.execute(q("SELECT count(*) FROM memory WHERE namespace = ? AND scope = ?"),
                                    (namespace, scope)).fetchone()[0]
                if count >= max_entries:
                    raise MemoryFull(f"memory of {scope} (namespace {namespace}) holds {count} entries, "
                                     f"the limit: delete one first")
            cur.execute(q(f"INSERT INTO memory (namespace, scope, {_COLS}) VALUES (?, ?, ?, ?, ?, ?) "
                          "ON CONFLICT (namespace, scope, key) DO UPDATE SET value = excluded.value, "
                          "updated_at = excluded.updated_at, run_id = excluded.run_id"),
                        (namespace, scope, key, value, now, run_id))
        return not exists

    def memory_get(self, namespace: str, scope: str, key: str) -> MemoryEntry | None:
        with self._read() as cur:  # type: ignore[attr-defined]
            row = cur.execute(self._q(f"SELECT {_COLS} FROM memory WHERE namespace = ? AND scope = ? "  # type: ignore[attr-defined]
                                      "AND key = ?"), (namespace, scope, key)).fetchone()
        return None if row is None else MemoryEntry(*row)

    def memory_list(self, namespace: str, scope: str, prefix: str = "", limit: int | None = None) -> list[MemoryEntry]:
        """A scope's entries by key (those starting with ``prefix``)."""
        sql = f"SELECT {_COLS} FROM memory WHERE namespace = ? AND scope = ?"
        args: list[Any] = [namespace, scope]
        if prefix:
            # substr, not LIKE: a key may hold % or _
            sql += " AND substr(key, 1, ?) = ?"
            args += [len(prefix), prefix]
        sql += " ORDER BY key"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._read() as cur:  # type: ignore[attr-defined]
            rows = cur.execute(self._q(sql), args).fetchall()  # type: ignore[attr-defined]
        return [MemoryEntry(*row) for row in rows]

    def memory_delete(self, namespace: str, scope: str, key: str) -> bool:
        with self._write() as cur:  # type: ignore[attr-defined]
            cur.execute(self._q("DELETE FROM memory WHERE namespace = ? AND scope = ? AND key = ?"),  # type: ignore[attr-defined]
                        (namespace, scope, key))
            return (cur.rowcount or 0) > 0

    def memory_scopes(self, namespace: str | None = None) -> list[tuple[str, str, int]]:
        """(namespace, scope, entries) of every scope that holds notes."""
        sql = "SELECT namespace, scope, count(*) FROM memory"
        args: tuple = ()
        if namespace is not None:
            sql, args = sql + " WHERE namespace = ?", (namespace,)
        with self._read() as cur:  # type: ignore[attr-defined]
            rows = cur.execute(self._q(sql + " GROUP BY namespace, scope ORDER BY namespace, scope"), args).fetchall()  # type: ignore[attr-defined]
        return [(r[0], r[1], int(r[2])) for r in rows]


@dataclass(frozen=True, slots=True)
class MemoryScope:
    """What ``agentform memory team/NAME`` lists: one scope's notes, by key."""

    namespace: str
    scope: str
    entries: list[MemoryEntry]

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "scope": self.scope, "entries": [e.to_dict() for e in self.entries]}


def memory_scope(store: Any, target: str, namespace: str = "default") -> MemoryScope:
    """The notes of ``team/NAME`` or ``agent/NAME`` (also ``team/NAMESPACE/NAME``; kinds as
    ``team``, ``teams`` or ``Team``); UsageError for another form."""
    from agentform.engine.errors import UsageError
    from agentform.specs import kind_from_word

    parts = target.split("/")
    kind = kind_from_word(parts[0]) if len(parts) in (2, 3) else None
    if kind not in ("Team", "Agent") or not all(parts[1:]):
        raise UsageError(f"'{target}' names no memory: write team/NAME (or agent/NAME for an agent that is "
                         "in no team), optionally team/NAMESPACE/NAME")
    if len(parts) == 3:
        namespace = parts[1]
    scope = f"{kind.lower()}/{parts[-1]}"
    return MemoryScope(namespace, scope, store.memory_list(namespace, scope))
