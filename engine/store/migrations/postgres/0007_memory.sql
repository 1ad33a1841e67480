-- The memory built-in's notes (engine/runtime/builtins/memory.py): key/value pairs kept per
-- namespace and scope ("team/NAME", or "agent/NAME" for an agent outside any team), across
-- runs. run_id: the run that wrote the value last. memory_scopes has one row per scope that
-- was ever written: writers of one scope lock it first, so the entry limit holds under
-- concurrent runs on PostgreSQL too.
CREATE TABLE memory_scopes (
    namespace  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (namespace, scope)
);

CREATE TABLE memory (
    namespace  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    run_id     TEXT,
    PRIMARY KEY (namespace, scope, key)
);
