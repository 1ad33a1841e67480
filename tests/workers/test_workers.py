"""Queued runs: `run --detach` on both stores, the worker's refusals, lease expiry and takeover,
and the SIGTERM drain (real processes, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .crew import ANSWER, TARGET, crew
from .helpers import (
    EXAMPLES,
    LEASE,
    check_stream,
    owner_pid,
    start_worker,
    stop,
    wait_until,
    worker_env,
)


def cli(*args: str, home: Path, store: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    pre = ["--home", str(home)] + (["--store", store] if store else [])
    return subprocess.run([sys.executable, "-m", "agentform.api.cli", *pre, *args], capture_output=True,
                          text=True, timeout=timeout, env=worker_env())


def _open(url: str):
    from agentform.engine.store import open_store

    return open_store(url)


def test_run_detach_on_sqlite_executes_in_a_background_process(tmp_path: Path):
    home = tmp_path / "home"
    assert cli("apply", str(EXAMPLES / "hello"), home=home).returncode == 0
    done = cli("run", "--detach", "agent/greeter", "-i", "hello", home=home)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    assert len(run_id.split()) == 1 and run_id
    store = _open(f"sqlite:///{home / 'state.db'}")
    try:
        run = wait_until(lambda: (r := store.get_run(run_id)).status in ("succeeded", "failed") and r,
                         what="the detached run to finish")
        assert run.status == "succeeded", run.error
        assert "Hello! Nice to meet you" in run.output
        events = store.read_events(run_id)
        check_stream(events)
        assert (home / "detached" / f"{run_id}.log").exists()
    finally:
        store.close()


def test_worker_needs_postgresql(tmp_path: Path):
    done = cli("worker", home=tmp_path / "home")
    assert done.returncode == 1
    assert "needs PostgreSQL" in done.stderr and "Traceback" not in done.stderr


def test_detach_on_postgres_warns_without_a_worker_and_pins_the_revision(pg_store_url: str, tmp_path: Path):
    from agentform.engine.api import Engine

    home = tmp_path / "home"
    src = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", src)
    assert cli("apply", str(src), home=home, store=pg_store_url).returncode == 0
    done = cli("run", "--detach", "agent/greeter", "-i", "hello", home=home, store=pg_store_url)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    assert "no worker has a live heartbeat" in done.stderr
    # A change applied after the enqueue does not reach the queued run: its revision is pinned.
    script = next((src / "scripts").glob("*.yaml"))
    script.write_text(script.read_text().replace("Hello! Nice to meet you", "Changed greeting"))
    assert cli("apply", str(src), home=home, store=pg_store_url).returncode == 0
    with Engine(home=home, store=pg_store_url) as engine:
        queued = engine.get_run(run_id)
        assert queued.status == "queued" and queued.revision == 1
        assert [e.type for e in engine.store.read_events(run_id)] == ["run.queued"]
        asyncio.run(engine.worker(concurrency=2, wait=False))
        run = engine.get_run(run_id)
        assert run.status == "succeeded", run.error
        assert "Hello! Nice to meet you" in run.output and run.revision == 1
        check_stream(engine.store.read_events(run_id))


def _enqueue(url: str, home: Path, target: str, n: int = 1, input: str = "go") -> list[str]:
    from agentform.engine.api import Engine

    async def main():
        engine = Engine(home=home, store=url)
        try:
            return [(await engine.enqueue(target, input=input)).id for _ in range(n)]
        finally:
            await engine.aclose()

    return asyncio.run(main())


def test_lease_expiry_and_takeover_fences_the_paused_worker(pg_store_url: str, tmp_path: Path):
    """A worker SIGSTOPped past its lease loses its run to another worker (a new epoch); when
    it wakes, its appends are rejected and it abandons the run."""
    from agentform.engine.api import Engine

    home = tmp_path / "home"
    with Engine(home=home, store=pg_store_url) as engine:
        engine.apply(crew(tmp_path / "crew", latency_ms=400))
    store = _open(pg_store_url)
    first = start_worker(pg_store_url, home, log=tmp_path / "w1.log")
    second = None
    try:
        [run_id] = _enqueue(pg_store_url, home, TARGET)
        wait_until(lambda: any(e.type == "agent.started" for e in store.read_events(run_id)),
                   what="the first worker to start the run")
        run = store.get_run(run_id)
        assert owner_pid(run) == first.pid
        first.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        second = start_worker(pg_store_url, home, log=tmp_path / "w2.log")
        resumed = wait_until(lambda: next((e for e in store.read_events(run_id) if e.type == "run.resumed"), None),
                             timeout=60, what="the second worker to take the run over")
        assert time.monotonic() - stopped_at >= LEASE, "taken over before the lease expired"
        assert str(first.pid) in resumed.data["previousOwner"]
        first.send_signal(signal.SIGCONT)
        done = wait_until(lambda: (r := store.get_run(run_id)).status in ("succeeded", "failed") and r,
                          timeout=60, what="the run to finish")
        assert done.status == "succeeded", done.error
        assert done.output == ANSWER
        assert owner_pid(done) == second.pid
        check_stream(store.read_events(run_id))
        wait_until(lambda: "abandoned" in (tmp_path / "w1.log").read_text(), timeout=30,
                   what="the woken worker to abandon its run")
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.send_signal(signal.SIGCONT)
                stop(proc, signal.SIGTERM)
        store.close()


def test_sigterm_drains_at_a_checkpoint_and_another_worker_resumes(pg_store_url: str, tmp_path: Path):
    from agentform.engine.api import Engine

    home = tmp_path / "home"
    with Engine(home=home, store=pg_store_url) as engine:
        engine.apply(crew(tmp_path / "crew", latency_ms=400))
    store = _open(pg_store_url)
    first = start_worker(pg_store_url, home, "--drain-timeout", "20", log=tmp_path / "w1.log")
    second = None
    try:
        [run_id] = _enqueue(pg_store_url, home, TARGET)
        wait_until(lambda: any(e.type == "agent.completed" and e.path == "crew/a" for e in store.read_events(run_id)),
                   what="member a to finish")
        at_term = store.get_run(run_id).last_seq
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0, (tmp_path / "w1.log").read_text()
        released = store.get_run(run_id)
        assert released.status == "queued", released.status
        events = store.read_events(run_id)
        assert not [e for e in events if e.type.startswith("run.") and e.type not in ("run.queued", "run.started")]
        # it went on to its next checkpoint after the signal, then stopped there
        assert [e for e in events if e.seq > at_term and e.type in ("checkpoint", "agent.completed")]
        assert not any(e.type == "agent.completed" and e.path == "crew/c" for e in events)
        second = start_worker(pg_store_url, home, log=tmp_path / "w2.log")
        done = wait_until(lambda: (r := store.get_run(run_id)).status in ("succeeded", "failed") and r,
                          timeout=60, what="the second worker to finish the run")
        assert done.status == "succeeded", done.error
        assert done.output == ANSWER
        events = store.read_events(run_id)
        check_stream(events)
        assert [e.data.get("previousOwner") for e in events if e.type == "run.resumed"] == [released.owner]
    finally:
        for proc in (first, second):
            if proc is not None:
                stop(proc, signal.SIGTERM)
        store.close()


def test_a_worker_takes_runs_from_its_queues_only(pg_store_url: str, tmp_path: Path):
    from agentform.engine.api import Engine

    home = tmp_path / "home"
    with Engine(home=home, store=pg_store_url) as engine:
        engine.apply(crew(tmp_path / "crew", latency_ms=0))
        done = cli("run", "--detach", "--queue", "gpu", TARGET, "-i", "go", home=home, store=pg_store_url)
        assert done.returncode == 0, done.stderr
        run = engine.get_run(done.stdout.strip())
        asyncio.run(engine.worker(concurrency=1, queues=["cpu"], wait=False))
        assert engine.get_run(run.id).status == "queued"
        asyncio.run(engine.worker(concurrency=1, queues=["gpu"], wait=False))
        done = engine.get_run(run.id)
        assert done.status == "succeeded" and done.output == ANSWER
        assert [e.data.get("queue") for e in engine.store.read_events(run.id, limit=1)] == ["gpu"]


def test_the_sweep_queues_again_a_worker_run_left_without_a_job(pg_store_url: str, tmp_path: Path):
    """A run recorded for the workers whose job is gone (its worker woke up late and finished
    the job another worker had retried, then that worker died) is found by the sweep."""
    from agentform.engine.api import Engine
    from agentform.engine.workers.queue import create_queued_run

    home = tmp_path / "home"
    with Engine(home=home, store=pg_store_url) as engine:
        engine.apply(crew(tmp_path / "crew", latency_ms=0))
        orphan = create_queued_run(engine.store, TARGET, input="go")   # recorded, no job deferred
        engine.store.update_run(orphan.id, heartbeat_at=orphan.created_at - 10 * LEASE)
    store = _open(pg_store_url)
    worker = start_worker(pg_store_url, home, log=tmp_path / "w.log")
    try:
        done = wait_until(lambda: (r := store.get_run(orphan.id)).status in ("succeeded", "failed") and r,
                          timeout=60, what="the sweep to queue the orphaned run again")
        assert done.status == "succeeded" and done.output == ANSWER
        check_stream(store.read_events(orphan.id))
    finally:
        stop(worker, signal.SIGTERM)
        store.close()


def test_an_approval_timeout_is_recorded_by_the_workers_with_nobody_acting(pg_store_url: str, tmp_path: Path):
    from agentform.engine.api import Engine

    from .crew import gated

    home = tmp_path / "home"
    with Engine(home=home, store=pg_store_url) as engine:
        engine.apply(gated(tmp_path / "gated", timeout="2s"))
    store = _open(pg_store_url)
    worker = start_worker(pg_store_url, home, log=tmp_path / "w.log")
    try:
        [run_id] = _enqueue(pg_store_url, home, "pipeline/gated", input=None)
        wait_until(lambda: store.get_run(run_id).status == "waiting", what="the run to wait for its approval")
        # nobody lists, reads or approves the run: the workers' sweep records the timeout
        done = wait_until(lambda: (r := store.get_run(run_id)).status != "waiting" and r, timeout=30,
                          what="the workers to record the approval timeout")
        assert done.status == "failed"
        events = store.read_events(run_id)
        assert [e.type for e in events][-1] == "run.failed"
        assert any(e.type == "stage.failed" and e.path == "gated/ship" for e in events)
    finally:
        stop(worker, signal.SIGTERM)
        store.close()
