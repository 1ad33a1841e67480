"""What ``gc`` asks of the state store: which runs expired, who still needs them, and
deletion in bounded steps (engine/retention.py decides; this module only queries).

``RetentionQueries`` is mixed into both SQL backends (portable SQL, plus one JSON path
expression each backend names in ``_fork_origin_sql``). Every delete is its own short
transaction over at most a batch of events, addressed by the primary key (run, seq range),
and re-checks that the run is still finished, so appends to other runs wait at most one
batch on SQLite's single writer and never on PostgreSQL (row locks of deleted rows only).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

FINISHED = ("succeeded", "failed", "cancelled")
_FINISHED_SQL = "status IN ('succeeded', 'failed', 'cancelled')"
# A run ends after it is created: the created_at bound lets the (status, created_at) index
# narrow the scan before the end time is checked.
_ENDED_BEFORE = f"{_FINISHED_SQL} AND created_at < ? AND COALESCE(finished_at, created_at) < ?"


@dataclass(frozen=True, slots=True)
class ExpiredRun:
    """A finished run that ended before the cutoff: what gc needs to know of it."""

    id: str
    target: str
    status: str
    thread: str | None
    created_at: float
    ended_at: float
    events: int      # last_seq: a stream's seqs are 1..last_seq


class RetentionQueries:
    """gc's reads and deletes over the backend hooks of SqlStore (``_write``, ``_read``, ``_q``)."""

    _fork_origin_sql = "json_extract(e.data, '$.forkedFrom.run')"   # SQLite; PostgreSQL overrides

    def expired_runs(self, cutoff: float, limit: int | None = None) -> list[ExpiredRun]:
        """Finished runs that ended before ``cutoff`` (epoch seconds), oldest first."""
        sql = (f"SELECT id, target, status, thread, created_at, COALESCE(finished_at, created_at), last_seq "
               f"FROM runs WHERE {_ENDED_BEFORE} ORDER BY created_at, id")
        args: tuple = (cutoff, cutoff)
        if limit is not None:
            sql += " LIMIT ?"
            args += (limit,)
        with self._read() as cur:  # type: ignore[attr-defined]
            rows = cur.execute(self._q(sql), args).fetchall()  # type: ignore[attr-defined]
        return [ExpiredRun(r[0], r[1], r[2], r[3], float(r[4]), float(r[5]), int(r[6])) for r in rows]

    def threads_still_alive(self, threads: Iterable[str], cutoff: float) -> set[str]:
        """Of ``threads``, those holding a run that is not finished, or ended at or after ``cutoff``."""
        found: set[str] = set()
        names = sorted(set(threads))
        with self._read() as cur:  # type: ignore[attr-defined]
            for start in range(0, len(names), 500):
                chunk = names[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                rows = cur.execute(self._q(  # type: ignore[attr-defined]
                    f"SELECT DISTINCT thread FROM runs WHERE thread IN ({marks}) AND NOT ({_ENDED_BEFORE})"),
                    (*chunk, cutoff, cutoff)).fetchall()
                found.update(r[0] for r in rows)
        return found

    def fork_origins(self, created_since: float) -> list[tuple[str, str]]:
        """(fork, origin) of every run created at or after ``created_since`` that is a fork: its
        ``run.started`` (seq 1, or 2 after ``run.queued``) names ``forkedFrom``. The events are
        reached through the primary key of each run, never by scanning the events table."""
        # A subquery per run (not a join, which PostgreSQL plans as a scan of all events).
        sql = (f"SELECT id, origin FROM (SELECT r.id AS id, (SELECT {self._fork_origin_sql} FROM events e "
               "WHERE e.run_id = r.id AND e.seq <= 2 AND e.type = 'run.started' LIMIT 1) AS origin "
               "FROM runs r WHERE r.created_at >= ?) AS x WHERE origin IS NOT NULL")
        with self._read() as cur:  # type: ignore[attr-defined]
            rows = cur.execute(self._q(sql), (created_since,)).fetchall()  # type: ignore[attr-defined]
        return [(r[0], str(r[1])) for r in rows]

    def delete_finished_events(self, run_ids: list[str], after_seq: int = 0, upto_seq: int | None = None,
                               *, delete_runs: bool = False) -> tuple[int, int]:
        """One short transaction: delete the events ``after_seq < seq <= upto_seq`` (all when
        None) of those of ``run_ids`` that are still finished, then, with ``delete_runs``, those
        runs themselves and their webhook deliveries. (events deleted, runs deleted)."""
        if not run_ids:
            return 0, 0
        marks = ", ".join("?" * len(run_ids))
        finished = f"SELECT id FROM runs WHERE id IN ({marks}) AND {_FINISHED_SQL}"
        sql, args = f"DELETE FROM events WHERE run_id IN ({finished}) AND seq > ?", [*run_ids, after_seq]
        if upto_seq is not None:
            sql += " AND seq <= ?"
            args.append(upto_seq)
        runs = 0
        with self._write() as cur:  # type: ignore[attr-defined]
            cur.execute(self._q(sql), args)  # type: ignore[attr-defined]
            events = max(cur.rowcount, 0)
            if delete_runs:
                cur.execute(self._q(f"DELETE FROM runs WHERE id IN ({marks}) AND {_FINISHED_SQL}"),  # type: ignore[attr-defined]
                            run_ids)
                runs = max(cur.rowcount, 0)
                # The webhook outbox of the runs now gone (migration 0010): a delivery that did
                # not go through within the retention period never will.
                cur.execute(self._q(f"DELETE FROM notifications WHERE run_id IN ({marks}) "  # type: ignore[attr-defined]
                                    "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = notifications.run_id)"), run_ids)
        return events, runs
