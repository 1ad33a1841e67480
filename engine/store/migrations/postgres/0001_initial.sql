-- The initial schema: applied resources, revisions, compiled graphs, the apply lock,
-- runs and their event streams. Unqualified names: the store sets search_path.

CREATE TABLE resources (
    kind                TEXT    NOT NULL,
    namespace           TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    app                 TEXT    NOT NULL,
    spec                JSONB   NOT NULL,
    spec_hash           TEXT    NOT NULL,
    generation          INTEGER NOT NULL DEFAULT 1,
    observed_generation INTEGER NOT NULL DEFAULT 0,
    conditions          JSONB   NOT NULL DEFAULT '[]',
    revision            INTEGER NOT NULL DEFAULT 0,
    source              TEXT    NOT NULL DEFAULT '',
    labels              JSONB   NOT NULL DEFAULT '{}',
    PRIMARY KEY (kind, namespace, name)
);
CREATE INDEX resources_by_app ON resources (app);

CREATE TABLE revisions (
    number       INTEGER PRIMARY KEY,
    content_hash TEXT    NOT NULL,
    app          TEXT    NOT NULL,
    author       TEXT    NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    git_commit   TEXT,
    git_dirty    BOOLEAN NOT NULL DEFAULT FALSE,
    changes      JSONB   NOT NULL DEFAULT '[]',
    extra        JSONB   NOT NULL DEFAULT '{}'
);

-- One row per (resource, revision that compiled it); graph NULL marks a deletion.
CREATE TABLE graphs (
    kind      TEXT    NOT NULL,
    namespace TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    revision  INTEGER NOT NULL,
    graph     JSONB,
    PRIMARY KEY (kind, namespace, name, revision)
);

-- Who holds the apply lock. The lock itself is a session advisory lock; this row only
-- names its holder (rows of sessions that died are removed by the next holder).
CREATE TABLE apply_lock (
    backend_pid INTEGER PRIMARY KEY,
    holder      TEXT    NOT NULL,
    acquired_at DOUBLE PRECISION NOT NULL
);

-- COLLATE "C": run ids compare bytewise, so a prefix is an index range scan.
CREATE TABLE runs (
    id           TEXT COLLATE "C" PRIMARY KEY,
    target       TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    revision     INTEGER NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    thread       TEXT,
    input        JSONB,
    params       JSONB,
    output       JSONB,
    error        TEXT,
    owner        TEXT,
    heartbeat_at DOUBLE PRECISION,
    started_at   DOUBLE PRECISION,
    finished_at  DOUBLE PRECISION,
    tokens_in    BIGINT  NOT NULL DEFAULT 0,
    tokens_out   BIGINT  NOT NULL DEFAULT 0,
    cost_usd     DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_seq     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_created ON runs (created_at);

-- The primary key (run_id, seq) is also the index that reads a run's events after a seq.
CREATE TABLE events (
    run_id TEXT COLLATE "C" NOT NULL,
    seq    INTEGER NOT NULL,
    ts     DOUBLE PRECISION NOT NULL,
    type   TEXT    NOT NULL,
    path   TEXT    NOT NULL,
    data   JSONB   NOT NULL,
    PRIMARY KEY (run_id, seq)
);
