"""Queue a run: record it (``queued``, ``run.queued``, its revision pinned now) and hand it on.

On PostgreSQL the run becomes a procrastinate job (task ``agentform.run``) in the store's own
schema, with the run id as its queueing lock, so a run never has two waiting jobs. The
procrastinate tables are created in that schema on first use, under the engine's migration
lock. On SQLite the caller starts a background process instead (``detached.py``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from agentform.engine.errors import StoreError, UsageError
from agentform.engine.store.base import Event, RunRecord

RUN_TASK = "agentform.run"
DEFAULT_QUEUE = "agentform"
MAINTENANCE_PRIORITY = 10   # sweeps are fetched before runs when a worker's slot frees


def lease_s() -> float:
    """How long a worker (or a run's owner) may go without a heartbeat before its jobs and runs
    are taken over (``AGENTFORM_WORKER_LEASE``, seconds; default 30)."""
    return float(os.environ.get("AGENTFORM_WORKER_LEASE", "30"))


def is_postgres(store: Any) -> bool:
    return type(store).__name__ == "PostgresStore"


def create_queued_run(store: Any, target: str, *, input: Any = None, params: dict | None = None,
                      thread: str | None = None, queue: str = DEFAULT_QUEUE, app: Any = None) -> RunRecord:
    """Record a queued run of ``target`` at the latest revision (refusing up front what cannot
    run, as ``run`` does). The run, its ``run.queued`` event and, with ``app`` (PostgreSQL),
    its procrastinate job commit in ONE transaction: a run is never queued without its job."""
    from agentform.engine.ids import new_run_id
    from agentform.engine.redaction import REDACTOR
    from agentform.engine.runtime.runner import (
        _input_text,
        load_graph,
        parse_target,
        preflight,
        target_text,
    )

    key = parse_target(target)
    graph, revision = load_graph(store, key)
    params = dict(params or {})
    if key.kind == "Pipeline":
        from agentform.engine.runtime.params import coerce_params

        params = coerce_params(graph.pipelines[graph.root], params, _input_text(input))
    elif params:
        raise UsageError(f"-p/params apply to pipelines; {key.kind.lower()}/{key.name} takes -i/input")
    preflight(graph)
    now = time.time()
    run = RunRecord(id=new_run_id(now), target=target_text(key), status="queued", revision=revision,
                    created_at=now, thread=thread, input=REDACTOR.data(input), params=REDACTOR.data(params),
                    heartbeat_at=now, last_seq=1)
    data = REDACTOR.data({"target": run.target, "revision": revision, "input": input, "params": params,
                          "thread": thread, "queue": queue})
    event = Event(run.id, 1, now, "run.queued", "", data)
    if app is None:
        store.append_events([event], new_runs=[dataclasses.replace(run, last_seq=0)])
        return run
    with store._write() as cur:
        store._insert_run(cur, run)
        store._insert_events(cur, [(run.id, 1, now, event.type, "", store._json(data))])
        store._notify(cur, [run.id])
        # procrastinate's documented atomic deferral: the job INSERT on our transaction's connection.
        app.configure_task(RUN_TASK, queue=queue, queueing_lock=run.id,
                           connection=cur.connection).defer(run_id=run.id)
    return run


def connector_for(store: Any, *, max_size: int = 4) -> Any:
    """A procrastinate connector whose connections use the store's schema."""
    import procrastinate

    options = f"-c search_path={store.schema}"
    return procrastinate.PsycopgConnector(conninfo=store._conninfo, kwargs={"options": options},
                                          min_size=1, max_size=max_size)


_ready: set[tuple[str, str]] = set()


def ensure_schema(store: Any) -> None:
    """Create procrastinate's tables in the store's schema once (its schema script is not
    idempotent: it runs only where ``procrastinate_jobs`` is missing, under the migration lock)."""
    import psycopg

    from agentform.engine.store.postgres import MIGRATE_LOCK, _schema_key

    key = (store._conninfo, store.schema)
    if key in _ready:
        return
    from procrastinate.schema import SchemaManager

    try:
        with psycopg.connect(store._conninfo, connect_timeout=10, options=f"-c search_path={store.schema}") as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (MIGRATE_LOCK, _schema_key(store.schema)))
                found = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0]
                if found is None:
                    conn.execute(SchemaManager.get_schema())
    except psycopg.Error as exc:
        raise StoreError(f"cannot create the job queue in {store.url}: {exc}") from exc
    _ready.add(key)


async def defer_run(app: Any, run: RunRecord, queue: str = DEFAULT_QUEUE) -> int:
    """Defer the job that executes ``run`` (its id as the queueing lock: one waiting job per run)."""
    from procrastinate import exceptions

    try:
        return await app.configure_task(RUN_TASK, queue=queue, queueing_lock=run.id).defer_async(run_id=run.id)
    except exceptions.AlreadyEnqueued:
        return 0   # a job for this run waits already: it will execute the run as it is now


def live_workers(store: Any) -> int:
    """How many workers sent a heartbeat within the lease (0 when no worker ever ran here)."""
    import psycopg

    try:
        with psycopg.connect(store._conninfo, connect_timeout=10, autocommit=True,
                             options=f"-c search_path={store.schema}") as conn:
            if conn.execute("SELECT to_regclass('procrastinate_workers')").fetchone()[0] is None:
                return 0
            return conn.execute("SELECT count(*) FROM procrastinate_workers "
                                "WHERE last_heartbeat > now() - make_interval(secs => %s)",
                                (lease_s(),)).fetchone()[0]
    except psycopg.Error as exc:
        raise StoreError(f"cannot read the workers of {store.url}: {exc}") from exc


class RunQueue:
    """Defers run jobs for one store: a procrastinate App that never opens a pool of its own
    (each job is inserted on the connection of the transaction that records its run)."""

    def __init__(self, store: Any):
        if not is_postgres(store):
            raise UsageError("the job queue needs PostgreSQL (--store postgresql://...)")
        self.store = store
        self.app: Any = None

    def _app(self) -> Any:
        if self.app is None:
            import procrastinate

            ensure_schema(self.store)
            self.app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=self.store._conninfo))
        return self.app

    def enqueue(self, target: str, *, input: Any = None, params: dict | None = None,
                thread: str | None = None, queue: str = DEFAULT_QUEUE) -> RunRecord:
        return create_queued_run(self.store, target, input=input, params=params, thread=thread, queue=queue,
                                 app=self._app())


def left_to_workers(store: Any, run: RunRecord) -> bool:
    """Whether workers look after ``run`` (queued for them on PostgreSQL): a dead owner's run is
    then resumed by another worker, not ended as failed by whoever notices."""
    if not is_postgres(store):
        return False   # SQLite's detached runs have no worker to continue them
    first = store.read_events(run.id, after=0, limit=1)
    return bool(first) and first[0].type == "run.queued"
