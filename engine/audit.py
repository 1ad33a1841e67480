"""The audit log of writes through ``serve``: who (token id), what (action, target), when,
from where (source address) and how it ended (the HTTP status). Append-only; read newest first.

Fields that come from a request (target, detail) are cut to a bound and pass the redactor,
like every other byte the engine writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from agentform.engine.redaction import REDACTOR

MAX_FIELD = 500
MAX_LIMIT = 1000
_COLS = "id, at, token_id, action, target, source, status, detail"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    token_id: str | None
    action: str           # run.start | run.cancel | run.approve | ...
    target: str           # the run id or target the write named
    source: str           # the client's address
    status: int           # the HTTP status of the answer
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "tokenId": self.token_id, "action": self.action,
                "target": self.target, "source": self.source, "status": self.status, "detail": self.detail}


def _bounded(text: str) -> str:
    return REDACTOR.text(text[:MAX_FIELD]) if REDACTOR.pattern is not None else text[:MAX_FIELD]


def record(store: Any, *, token_id: str | None, action: str, target: str, source: str, status: int,
           detail: str = "", now: float | None = None) -> None:
    with store._write() as cur:
        cur.execute(store._q("INSERT INTO audit_log (at, token_id, action, target, source, status, detail) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)"),
                    (time.time() if now is None else now, token_id, action[:100], _bounded(target),
                     source[:100], status, _bounded(detail)))


def read(store: Any, *, token_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """Newest first; ``token_id`` keeps one token's entries."""
    limit = max(1, min(limit, MAX_LIMIT))
    sql = f"SELECT {_COLS} FROM audit_log"
    args: tuple = ()
    if token_id is not None:
        sql += " WHERE token_id = ?"
        args = (token_id,)
    sql += " ORDER BY id DESC LIMIT ?"
    with store._read() as cur:
        rows = cur.execute(store._q(sql), (*args, limit)).fetchall()
    return [AuditEntry(*r) for r in rows]
