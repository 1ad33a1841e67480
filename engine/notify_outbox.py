"""The webhook outbox: table ``notifications`` (migration 0010), portable SQL over the store's hooks.

A delivery row is written before its first attempt. An attempt is claimed with one
conditional update (``attempts`` as read, bumped, and ``next_at`` moved past the attempt's
lease), so two processes that dispatch over one PostgreSQL never send the same attempt
twice, and an attempt whose process died is taken up again once its lease has passed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

_COLS = ("id, run_id, seq, event, url, status, attempts, max_attempts, next_at, last_code, last_error, "
         "created_at, finished_at")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook delivery as recorded: ``status`` pending, delivered or failed."""

    id: str
    run_id: str
    seq: int
    event: str
    url: str
    status: str
    attempts: int
    max_attempts: int
    next_at: float | None
    last_code: int | None
    last_error: str | None
    created_at: float
    finished_at: float | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {"id": data["id"], "run": data["run_id"], "seq": data["seq"], "event": data["event"],
                "url": data["url"], "status": data["status"], "attempts": data["attempts"],
                "maxAttempts": data["max_attempts"], "nextAt": data["next_at"], "lastCode": data["last_code"],
                "lastError": data["last_error"], "createdAt": data["created_at"],
                "finishedAt": data["finished_at"]}


def insert(store: Any, rows: list[tuple[str, str, int, str, str, str, str, int, float]]) -> int:
    """New pending deliveries (id, run, seq, event, url, endpoint JSON, body, max attempts, now);
    one already recorded for that event and URL is left alone. How many were new."""
    added = 0
    with store._write() as cur:
        for row in rows:
            cur.execute(store._q(
                "INSERT INTO notifications (id, run_id, seq, event, url, endpoint, body, status, max_attempts, "
                "next_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) "
                "ON CONFLICT DO NOTHING"), (*row, row[-1]))
            added += max(cur.rowcount, 0)
    return added


def due(store: Any, now: float, limit: int = 50) -> list[tuple[Delivery, str, str]]:
    """Pending deliveries whose next attempt is due: (delivery, endpoint JSON, body)."""
    with store._read() as cur:
        rows = cur.execute(store._q(
            f"SELECT {_COLS}, endpoint, body FROM notifications WHERE status = 'pending' AND next_at <= ? "
            "ORDER BY next_at LIMIT ?"), (now, limit)).fetchall()
    return [(Delivery(*row[:13]), row[13], row[14]) for row in rows]


def next_due(store: Any) -> float | None:
    with store._read() as cur:
        row = cur.execute("SELECT min(next_at) FROM notifications WHERE status = 'pending'").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def claim(store: Any, delivery: Delivery, lease_until: float) -> bool:
    """Take the next attempt of ``delivery`` as read; False when another process took it first."""
    with store._write() as cur:
        cur.execute(store._q(
            "UPDATE notifications SET attempts = attempts + 1, next_at = ? "
            "WHERE id = ? AND attempts = ? AND status = 'pending'"), (lease_until, delivery.id, delivery.attempts))
        return cur.rowcount == 1


def finish_attempt(store: Any, delivery_id: str, *, status: str, code: int | None, error: str | None,
                   next_at: float | None, now: float) -> None:
    finished = None if status == "pending" else now
    with store._write() as cur:
        cur.execute(store._q(
            "UPDATE notifications SET status = ?, last_code = ?, last_error = ?, next_at = ?, finished_at = ? "
            "WHERE id = ?"), (status, code, error, next_at, finished, delivery_id))


def deliveries(store: Any, run_id: str | None = None, limit: int = 100) -> list[Delivery]:
    """Recorded deliveries, newest first (those of ``run_id`` only, in stream order, when given)."""
    with store._read() as cur:
        if run_id is None:
            rows = cur.execute(store._q(f"SELECT {_COLS} FROM notifications ORDER BY created_at DESC LIMIT ?"),
                               (limit,)).fetchall()
        else:
            rows = cur.execute(store._q(f"SELECT {_COLS} FROM notifications WHERE run_id = ? "
                                        "ORDER BY seq, url LIMIT ?"), (run_id, limit)).fetchall()
    return [Delivery(*row) for row in rows]


def prune(store: Any, before: float) -> int:
    """Delete finished deliveries older than ``before`` (the table stays bounded)."""
    with store._write() as cur:
        cur.execute(store._q("DELETE FROM notifications WHERE status <> 'pending' AND created_at < ?"), (before,))
        return max(cur.rowcount, 0)
