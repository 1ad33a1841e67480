-- `runs --thread` / `chat` and `worker` (queued runs) look runs up by thread and status.
CREATE INDEX runs_by_thread ON runs (thread, created_at);
CREATE INDEX runs_by_status ON runs (status, created_at);
