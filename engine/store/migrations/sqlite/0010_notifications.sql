-- Webhook deliveries (engine/notify.py): one row per (event, endpoint), written before the
-- first attempt and updated after each, so that a delivery a process could not finish is
-- retried by the next process that dispatches (serve, a worker, a later run). endpoint: the
-- URL and where its signing key comes from (never the key itself); body: the exact bytes sent.
CREATE TABLE notifications (
    id           TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    event        TEXT NOT NULL,
    url          TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    next_at      REAL,
    last_code    INTEGER,
    last_error   TEXT,
    created_at   REAL NOT NULL,
    finished_at  REAL,
    UNIQUE (run_id, seq, url)
);
CREATE INDEX notifications_due ON notifications (next_at) WHERE status = 'pending';
CREATE INDEX notifications_by_run ON notifications (run_id, seq);
