-- One owner per run: every takeover (approve, resume, cancel, a worker's claim) bumps
-- owner_epoch in one conditional UPDATE, and every event append checks it (the fencing
-- number). deadline_at: when the run waits, the earliest approval expiry, so that whoever
-- lists runs can see a passed deadline without reading the stream.
ALTER TABLE runs ADD COLUMN owner_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN deadline_at REAL;
