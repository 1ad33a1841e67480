-- The initial schema: applied resources, revisions, compiled graphs, the apply lock,
-- runs and their event streams. JSON columns hold json.dumps text.

CREATE TABLE resources (
    kind                TEXT    NOT NULL,
    namespace           TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    app                 TEXT    NOT NULL,
    spec                TEXT    NOT NULL,
    spec_hash           TEXT    NOT NULL,
    generation          INTEGER NOT NULL DEFAULT 1,
    observed_generation INTEGER NOT NULL DEFAULT 0,
    conditions          TEXT    NOT NULL DEFAULT '[]',
    revision            INTEGER NOT NULL DEFAULT 0,
    source              TEXT    NOT NULL DEFAULT '',
    labels              TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (kind, namespace, name)
);
CREATE INDEX resources_by_app ON resources (app);

CREATE TABLE revisions (
    number       INTEGER PRIMARY KEY,
    content_hash TEXT    NOT NULL,
    app          TEXT    NOT NULL,
    author       TEXT    NOT NULL,
    created_at   REAL    NOT NULL,
    git_commit   TEXT,
    git_dirty    INTEGER NOT NULL DEFAULT 0,
    changes      TEXT    NOT NULL DEFAULT '[]',
    extra        TEXT    NOT NULL DEFAULT '{}'
);

-- One row per (resource, revision that compiled it); graph NULL marks a deletion.
CREATE TABLE graphs (
    kind      TEXT    NOT NULL,
    namespace TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    revision  INTEGER NOT NULL,
    graph     TEXT,
    PRIMARY KEY (kind, namespace, name, revision)
);

-- At most one row: who holds the apply lock (host and pid let a dead holder be taken over).
CREATE TABLE apply_lock (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT    NOT NULL,
    host        TEXT    NOT NULL,
    pid         INTEGER NOT NULL,
    pid_start   TEXT    NOT NULL DEFAULT '',
    token       TEXT    NOT NULL,
    acquired_at REAL    NOT NULL
);

CREATE TABLE runs (
    id           TEXT    PRIMARY KEY,
    target       TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    revision     INTEGER NOT NULL,
    created_at   REAL    NOT NULL,
    thread       TEXT,
    input        TEXT,
    params       TEXT,
    output       TEXT,
    error        TEXT,
    owner        TEXT,
    heartbeat_at REAL,
    started_at   REAL,
    finished_at  REAL,
    tokens_in    INTEGER NOT NULL DEFAULT 0,
    tokens_out   INTEGER NOT NULL DEFAULT 0,
    cost_usd     REAL    NOT NULL DEFAULT 0,
    last_seq     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_created ON runs (created_at);

-- The primary key (run_id, seq) is also the index that reads a run's events after a seq.
CREATE TABLE events (
    run_id TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    ts     REAL    NOT NULL,
    type   TEXT    NOT NULL,
    path   TEXT    NOT NULL,
    data   TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
);
