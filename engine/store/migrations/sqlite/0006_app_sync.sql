-- Where each app's manifests come from and how the last syncs of `watch` went: the commit
-- in force (the last one applied) and the last error (a commit that did not validate or
-- apply), kept apart so that a failed commit never hides what is in force.
CREATE TABLE app_sync (
    app             TEXT    PRIMARY KEY,
    source          TEXT    NOT NULL,        -- folder path or git URL (never credentials)
    ref             TEXT,                    -- git ref watched
    path            TEXT,                    -- folder inside the repository
    phase           TEXT    NOT NULL,        -- Synced | Failed: how the last attempt went
    head_commit     TEXT,                    -- the commit last attempted
    synced_commit   TEXT,
    synced_revision INTEGER,
    synced_at       REAL,
    error           TEXT,
    error_commit    TEXT,
    error_at        REAL,
    updated_at      REAL    NOT NULL
);
