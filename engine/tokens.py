"""API tokens for ``serve``: scopes, an optional namespace, and only a hash kept in the store.

A token reads ``aft_<id>_<secret>``: ``id`` (12 hex) names its row, ``secret`` carries 256 bits
from ``secrets``. The store keeps the SHA-256 of the whole token, never the token: a
high-entropy secret needs no slow KDF, and a copy of the database grants nothing. The token
is printed once, by ``create``. ``verify`` is constant-time on the hash and refuses revoked
tokens; ``last_used_at`` is written at most once a minute per token so that reads do not
turn into writes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from agentform.engine.errors import NotFound, UsageError

SCOPES = ("read", "run", "approve")
PREFIX = "aft_"
MAX_NAME = 100
TOUCH_EVERY_S = 60.0
_TOKEN = re.compile(r"^aft_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_COLS = "id, name, scopes, namespace, created_at, last_used_at, revoked_at"


@dataclass(frozen=True)
class TokenInfo:
    """A token as ``token list`` shows it (never the token itself)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    namespace: str | None        # None: every namespace
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def sees(self, namespace: str | None) -> bool:
        """Whether this token may see an object of ``namespace``."""
        return self.namespace is None or self.namespace == namespace

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes), "namespace": self.namespace,
                "createdAt": self.created_at, "lastUsedAt": self.last_used_at, "revokedAt": self.revoked_at,
                "revoked": self.revoked}


@dataclass(frozen=True)
class CreatedToken:
    """What ``create`` returns: the token (shown once) and its record."""

    token: str
    info: TokenInfo

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, **self.info.to_dict()}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row(row: tuple) -> TokenInfo:
    return TokenInfo(id=row[0], name=row[1], scopes=tuple(s for s in row[2].split(",") if s),
                     namespace=row[3], created_at=row[4], last_used_at=row[5], revoked_at=row[6])


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if not scopes:
        raise UsageError(f"a token needs at least one --scope: {', '.join(SCOPES)}")
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise UsageError(f"unknown scope {bad[0]!r}: use {', '.join(SCOPES)} (repeat --scope for several)")
    return tuple(s for s in SCOPES if s in scopes)   # canonical order, no repeats


def create(store: Any, scopes: list[str] | tuple[str, ...], *, namespace: str | None = None,
           name: str = "", now: float | None = None) -> CreatedToken:
    """A new token with ``scopes`` (read, run, approve), limited to ``namespace`` when given."""
    wanted = check_scopes(scopes)
    if namespace is not None and not _NAMESPACE.match(namespace):
        raise UsageError(f"--namespace {namespace!r}: a namespace is lowercase letters, digits and '-' "
                         "(at most 63, starting and ending with a letter or digit)")
    if len(name) > MAX_NAME or any(not c.isprintable() for c in name):
        raise UsageError(f"--name: at most {MAX_NAME} printable characters")
    token_id = secrets.token_hex(6)
    token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    info = TokenInfo(id=token_id, name=name, scopes=wanted, namespace=namespace,
                     created_at=time.time() if now is None else now)
    with store._write() as cur:
        cur.execute(store._q("INSERT INTO api_tokens (id, name, token_hash, scopes, namespace, created_at) "
                             "VALUES (?, ?, ?, ?, ?, ?)"),
                    (info.id, info.name, _hash(token), ",".join(wanted), namespace, info.created_at))
    return CreatedToken(token, info)


def list_tokens(store: Any) -> list[TokenInfo]:
    with store._read() as cur:
        rows = cur.execute(f"SELECT {_COLS} FROM api_tokens ORDER BY created_at, id").fetchall()
    return [_row(r) for r in rows]


def get(store: Any, token_id: str) -> TokenInfo:
    with store._read() as cur:
        row = cur.execute(store._q(f"SELECT {_COLS} FROM api_tokens WHERE id = ?"), (token_id,)).fetchone()
    if row is None:
        raise NotFound(f"token {token_id!r} does not exist (see `agentform token list`)")
    return _row(row)


def revoke(store: Any, token_id: str, now: float | None = None) -> TokenInfo:
    """Revoke a token at once (idempotent: a revoked token keeps its first revocation time)."""
    get(store, token_id)
    with store._write() as cur:
        cur.execute(store._q("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
                    (time.time() if now is None else now, token_id))
    return get(store, token_id)


class Verifier:
    """Checks presented tokens against the store; remembers when it last wrote ``last_used_at``."""

    def __init__(self, store: Any):
        self._store = store
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> TokenInfo | None:
        """The token's record when it is well-formed, known, matches its hash and is not revoked."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        store = self._store
        with store._read() as cur:
            row = cur.execute(store._q(f"SELECT {_COLS}, token_hash FROM api_tokens WHERE id = ?"),
                              (match[1],)).fetchone()
        if row is None or not hmac.compare_digest(row[7], _hash(token)):
            return None
        info = _row(row[:7])
        if info.revoked:
            return None
        self._touch(info.id)
        return info

    def _touch(self, token_id: str) -> None:
        now = time.time()
        with self._lock:
            if now - self._touched.get(token_id, 0.0) < TOUCH_EVERY_S:
                return
            self._touched[token_id] = now
        store = self._store
        with store._write() as cur:
            cur.execute(store._q("UPDATE api_tokens SET last_used_at = ? WHERE id = ?"), (now, token_id))
