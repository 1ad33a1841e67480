-- API tokens for `serve` (only a SHA-256 of each token is kept: it is shown once, at create),
-- the audit log of HTTP writes, and an index for cost: usage events by time, and only those.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL DEFAULT '',
    token_hash   TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    namespace    TEXT,
    created_at   DOUBLE PRECISION NOT NULL,
    last_used_at DOUBLE PRECISION,
    revoked_at   DOUBLE PRECISION
);

CREATE TABLE audit_log (
    id       BIGSERIAL PRIMARY KEY,
    at       DOUBLE PRECISION NOT NULL,
    token_id TEXT,
    action   TEXT    NOT NULL,
    target   TEXT    NOT NULL DEFAULT '',
    source   TEXT    NOT NULL DEFAULT '',
    status   INTEGER NOT NULL,
    detail   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_at ON audit_log (at);
CREATE INDEX audit_by_token ON audit_log (token_id, at);

CREATE INDEX events_usage_by_ts ON events (ts) WHERE type = 'usage';
