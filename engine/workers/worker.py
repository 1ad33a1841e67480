"""``agentform worker``: a procrastinate worker whose task executes queued runs.

procrastinate does the queueing (``SELECT ... FOR UPDATE SKIP LOCKED``), the worker
heartbeats, retries and periodic tasks; this module adds what is agentform's:

- the task ``agentform.run`` executes a run through the owner compare-and-set
  (``execute.py``); a run taken over by another process while this one was paused is
  abandoned (its appends were rejected: the epoch fences them);
- the periodic task ``agentform.sweep`` (every ``lease / 6`` s, at most one per tick for the
  whole installation) retries the jobs of workers whose heartbeat is older than the lease,
  prunes those workers, queues again a worker-run whose job is gone (a crash between record
  and defer, a job finished by a worker that woke up late), and records passed approval
  deadlines;
- SIGTERM (or SIGINT) drains: no new job is fetched; each running run goes on to its next
  checkpoint (``checkpoint``, ``agent.completed`` or ``stage.completed``; at most
  ``drain_timeout`` s), is released to ``queued`` at a new epoch and its job retried, so
  another worker resumes it from its stream; then the worker exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from agentform.engine.errors import RunTakenOver, StoreError, UsageError
from agentform.engine.store.base import Event

from .queue import (
    DEFAULT_QUEUE,
    MAINTENANCE_PRIORITY,
    RUN_TASK,
    connector_for,
    ensure_schema,
    is_postgres,
    lease_s,
)

SWEEP_TASK = "agentform.sweep"
MAINTENANCE_QUEUE = "agentform-maintenance"
CHECKPOINTS = frozenset({"checkpoint", "agent.completed", "stage.completed"})
log = logging.getLogger("agentform.worker")


class RunReleased(Exception):
    """The run went back to the queue (a draining worker): its job is retried at once."""


class _Running:
    __slots__ = ("run_id", "task", "released", "checkpoint_seq")

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.task: asyncio.Future | None = None
        self.released = False
        self.checkpoint_seq: int | None = None


class WorkerRuntime:
    """What the tasks of one worker process share: the store, the home, the drain state."""

    def __init__(self, store: Any, home: Path, *, lease: float | None = None, drain_timeout: float = 30.0):
        self.store, self.home = store, Path(home)
        self.lease = lease_s() if lease is None else lease
        self.drain_timeout = drain_timeout
        self.draining = asyncio.Event()
        self.running: dict[str, _Running] = {}
        self.abandoned: list[str] = []

    # -- the run task --------------------------------------------------------------------
    async def run_job(self, run_id: str) -> str:
        from .execute import execute_queued

        if self.draining.is_set():
            raise RunReleased(run_id)   # fetched just as the drain began: back to the queue
        entry = _Running(run_id)
        self.running[run_id] = entry
        entry.task = asyncio.ensure_future(execute_queued(self.store, run_id, home=self.home,
                                                          on_event=self._watch(entry), lease=self.lease))
        try:
            result = await asyncio.shield(entry.task)
        except asyncio.CancelledError:
            if entry.released and not asyncio.current_task().cancelling():
                raise RunReleased(run_id) from None   # our own cancel of a run we only waited for
            # procrastinate aborts jobs still running after the drain timeout: release first,
            # so that cancelling the run records nothing terminal.
            await self._release(entry)
            raise
        except (RunTakenOver, StoreError) as exc:
            if entry.released:
                raise RunReleased(run_id) from None
            if isinstance(exc, RunTakenOver) or _fenced(exc):
                self.abandoned.append(run_id)
                print(f"agentform worker: run {run_id} abandoned: {exc}", file=sys.stderr, flush=True)
                return "abandoned"
            raise
        finally:
            self.running.pop(run_id, None)
        if entry.released:
            raise RunReleased(run_id)
        status = "nothing to do" if result is None else result.status
        print(f"agentform worker: run {run_id} {status}", file=sys.stderr, flush=True)
        return status

    def _watch(self, entry: _Running):
        loop = asyncio.get_running_loop()

        def on_event(event: Event) -> None:   # on every event of every run: the cheap test first
            if self.draining.is_set() and event.type in CHECKPOINTS and entry.checkpoint_seq is None:
                entry.checkpoint_seq = event.seq
                # thread-safe: an event may be emitted outside the loop's thread
                loop.call_soon_threadsafe(lambda: loop.create_task(self._release(entry, event.seq)))
        return on_event

    def drain(self) -> None:
        """Stop taking runs; release each running run at its next checkpoint (or the timeout)."""
        if self.draining.is_set():
            return
        self.draining.set()
        loop = asyncio.get_running_loop()
        for entry in list(self.running.values()):
            loop.call_later(self.drain_timeout, lambda e=entry: loop.create_task(self._release(e)))

    async def _release(self, entry: _Running, upto: int | None = None) -> None:
        """Give the run back to the queue once the events up to ``upto`` are committed."""
        from .execute import release

        if entry.released or entry.task is None or entry.task.done():
            return
        store = self.store
        for _ in range(400):   # the writer commits within milliseconds; bounded all the same
            run = await asyncio.to_thread(store.get_run, entry.run_id)
            if upto is None or run.last_seq >= upto or run.status != "running":
                break
            await asyncio.sleep(0.005)
        if entry.released or entry.task.done() or run.status != "running":
            return
        if run.owner != _owner():
            # Not executing it: waiting for another live owner's lease. Hand the job back as it is.
            entry.released = True
            entry.task.cancel()
            return
        try:
            await asyncio.to_thread(release, store, run, time.time())
        except RunTakenOver:
            return   # someone else took it: the run's own heartbeat stops it
        entry.released = True
        entry.task.cancel()   # its next write is fenced: nothing terminal is recorded

    # -- the sweep -----------------------------------------------------------------------
    async def sweep(self, app: Any) -> dict[str, int]:
        """Retry stalled jobs, prune dead workers, queue orphaned runs, record approval timeouts."""
        from procrastinate import exceptions

        from agentform.engine.runtime.liveness import observe_deadlines

        from .queue import defer_run

        jm = app.job_manager
        retried = 0
        for job in await jm.get_stalled_jobs(seconds_since_heartbeat=self.lease, task_name=RUN_TASK):
            try:
                await jm.retry_job(job)
                retried += 1
            except Exception:  # noqa: BLE001 - another sweep retried it first
                continue
        # Pruned after the sweep: a pruned worker's jobs keep worker_id NULL and stay findable.
        await jm.prune_stalled_workers(self.lease)
        orphans = await asyncio.to_thread(_orphaned_runs, self.store, time.time() - self.lease)
        for run in orphans:
            try:
                await defer_run(app, run, DEFAULT_QUEUE)
            except exceptions.ProcrastinateException:
                continue
        expired = await asyncio.to_thread(observe_deadlines, self.store)
        return {"retried": retried, "orphans": len(orphans), "expired": len(expired)}


def _fenced(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, RunTakenOver):
            return True
        cause = cause.__cause__
    return False


def _orphaned_runs(store: Any, cutoff: float) -> list[Any]:
    """Worker-runs (their stream begins with ``run.queued``) that are queued or running with a
    stale heartbeat and have no waiting or running job."""
    sql = (
        "SELECT r.id FROM runs r WHERE r.status IN ('queued', 'running') "
        "AND COALESCE(r.heartbeat_at, r.created_at) < %s "
        "AND EXISTS (SELECT 1 FROM events e WHERE e.run_id = r.id AND e.seq = 1 AND e.type = 'run.queued') "
        "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.task_name = %s "
        "AND j.args->>'run_id' = r.id AND j.status IN ('todo', 'doing')) LIMIT 500"
    )
    with store._read() as cur:
        ids = [row[0] for row in cur.execute(sql, (cutoff, RUN_TASK)).fetchall()]
    return [store.get_run(i) for i in ids]


def build_app(store: Any, runtime: WorkerRuntime, *, concurrency: int) -> Any:
    """The procrastinate App of a worker: the run task and the periodic sweep."""
    import procrastinate

    app = procrastinate.App(connector=connector_for(store, max_size=concurrency + 6))

    @app.task(name=RUN_TASK, queue=DEFAULT_QUEUE,
              retry=procrastinate.RetryStrategy(max_attempts=1_000_000, retry_exceptions={RunReleased}))
    async def run(run_id: str) -> str:
        return await runtime.run_job(run_id)

    every = max(1, int(runtime.lease / 6))

    @app.periodic(cron=f"* * * * * */{every}", periodic_id="sweep", priority=MAINTENANCE_PRIORITY)
    @app.task(name=SWEEP_TASK, queue=MAINTENANCE_QUEUE, queueing_lock=SWEEP_TASK)
    async def sweep(timestamp: int) -> dict[str, int]:
        return await runtime.sweep(app)

    return app


async def run_worker(store: Any, home: Path, *, concurrency: int = 4, queues: list[str] | None = None,
                     wait: bool = True, drain_timeout: float = 30.0, lease: float | None = None) -> WorkerRuntime:
    """Run a worker until SIGTERM/SIGINT (or, with ``wait=False``, until the queue is empty)."""
    if not is_postgres(store):
        raise UsageError("`agentform worker` needs PostgreSQL: start it with --store postgresql://... "
                         "(on SQLite, `run --detach` executes the run in a background process instead)")
    if concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1 (got {concurrency})")
    import procrastinate

    await asyncio.to_thread(ensure_schema, store)
    runtime = WorkerRuntime(store, home, lease=lease, drain_timeout=drain_timeout)
    app = build_app(store, runtime, concurrency=concurrency)
    listen = None if not queues else [*queues, MAINTENANCE_QUEUE]
    loop = asyncio.get_running_loop()

    def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        # procrastinate reports the end of a job it no longer holds (a worker that woke up past
        # its lease: another worker retried and finished it) as a task error: one line is enough.
        exc, future = context.get("exception"), context.get("future")
        if isinstance(exc, procrastinate.exceptions.ConnectorException) and "not found" in str(exc.__cause__):
            name = future.get_name() if isinstance(future, asyncio.Task) else "a job"
            print(f"agentform worker: {name} was finished by another worker (this one was paused past its "
                  "lease)", file=sys.stderr, flush=True)
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(on_loop_error)
    async with app.open_async():
        task = asyncio.ensure_future(app.run_worker_async(
            queues=listen, concurrency=concurrency, wait=wait, install_signal_handlers=False,
            delete_jobs="successful", update_heartbeat_interval=max(0.1, runtime.lease / 4),
            stalled_worker_timeout=runtime.lease, fetch_job_polling_interval=max(0.5, runtime.lease / 6),
            abort_job_polling_interval=max(0.5, runtime.lease / 6),
            shutdown_graceful_timeout=drain_timeout + 5, name=f"agentform-{_owner()}"))

        def on_stop() -> None:
            runtime.drain()
            task.cancel()   # procrastinate's graceful stop: no new job, running ones awaited

        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, on_stop)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):   # not the main thread
                pass
        try:
            await task
        except asyncio.CancelledError:
            if not runtime.draining.is_set():
                raise
        except procrastinate.exceptions.ConnectorException as exc:
            raise _queue_error(exc, runtime) from exc
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
    return runtime


def _queue_error(exc: BaseException, runtime: WorkerRuntime) -> StoreError:
    import psycopg

    cause = exc.__cause__
    if isinstance(cause, psycopg.errors.ForeignKeyViolation) or runtime.abandoned:
        return StoreError(
            "this worker was paused past its lease (SIGSTOP, a stall): the other workers took its runs "
            f"over and removed its registration ({len(runtime.abandoned)} run(s) abandoned here); it stops, "
            "start it again (a supervisor restarts it)")
    return StoreError(f"the job queue failed: {cause or exc}")


def _owner() -> str:
    from agentform.engine.runtime.runner import owner_id

    return owner_id()
