"""Spend from the streams: the ``usage`` events, totalled by model, agent, team, pipeline or target.

Every model turn that used tokens emits ``usage`` (``agent``, ``model``, ``tokens_in``,
``tokens_out``, ``cost_usd``) on the run's stream, whichever process executed it, so totals
read here count runs of workers and CLI processes alike. ``team`` and ``pipeline`` group by
the run's target and keep only runs of that kind; ``target`` groups every run by its target.
The store keeps a partial index of usage events by time (migration 0005), so ``since`` reads
only the window asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agentform.engine.errors import UsageError

GROUPINGS = ("model", "agent", "team", "pipeline", "target")


@dataclass
class CostRow:
    key: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    turns: int = 0
    runs: set[str] = field(default_factory=set, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "tokensIn": self.tokens_in, "tokensOut": self.tokens_out,
                "costUsd": round(self.cost_usd, 10), "turns": self.turns, "runs": len(self.runs)}


@dataclass
class CostReport:
    by: str
    since: float | None                 # epoch seconds; None: all time
    rows: list[CostRow]                  # most expensive first
    total: CostRow

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "since": self.since, "rows": [r.to_dict() for r in self.rows],
                "total": self.total.to_dict()}


def since_epoch(since: float | str | None, now: float | None = None) -> float | None:
    """``since`` as epoch seconds: a number is one already; a string is a duration back from now
    (``30m``, ``24h``, ``7d``)."""
    if since is None or isinstance(since, int | float):
        return since
    from agentform.specs.common import parse_age

    try:
        seconds = parse_age(since)
    except ValueError as exc:
        raise UsageError(f"--since {since!r}: use a duration such as 30m, 24h or 7d") from exc
    return (time.time() if now is None else now) - seconds


def _kind(target: str) -> str:
    return target.split("/", 1)[0].lower()


def cost_report(store: Any, by: str = "model", since: float | str | None = None) -> CostReport:
    if by not in GROUPINGS:
        raise UsageError(f"cost by {by!r}: use one of {', '.join(GROUPINGS)}")
    start = since_epoch(since)
    sql = ("SELECT e.run_id, e.data, r.target FROM events e JOIN runs r ON r.id = e.run_id "
           "WHERE e.type = 'usage' AND e.ts >= ?")
    with store._read() as cur:
        rows = cur.execute(store._q(sql), (start if start is not None else 0.0,)).fetchall()
    groups: dict[str, CostRow] = {}
    total = CostRow("total")
    for run_id, raw, target in rows:
        data = store._dec(raw) or {}
        if by == "model":
            key = str(data.get("model") or "(unknown)")
        elif by == "agent":
            key = str(data.get("agent") or "(unknown)")
        else:
            if by in ("team", "pipeline") and _kind(target) != by:
                continue
            key = target
        for row in (groups.setdefault(key, CostRow(key)), total):
            row.tokens_in += int(data.get("tokens_in") or 0)
            row.tokens_out += int(data.get("tokens_out") or 0)
            row.cost_usd += float(data.get("cost_usd") or 0.0)
            row.turns += 1
            row.runs.add(run_id)
    ordered = sorted(groups.values(), key=lambda r: (-r.cost_usd, -(r.tokens_in + r.tokens_out), r.key))
    return CostReport(by=by, since=start, rows=ordered, total=total)
