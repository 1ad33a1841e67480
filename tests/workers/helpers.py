"""Shared helpers of the worker tests: worker processes, waiting on the store, stream checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
COMPANY = "team/company/company"
LEASE = 1.5            # seconds: a worker (or run owner) this long without a heartbeat is taken over
FINISHED = ("succeeded", "failed", "cancelled")


def worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"AGENTFORM_WORKER_LEASE": str(LEASE), "AGENTFORM_HEARTBEAT": "0.25",
                "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def start_worker(store_url: str, home: Path, *args: str, log: Path | None = None, **env: str) -> subprocess.Popen:
    """``agentform worker`` in a real process of its own (stderr to ``log``)."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "agentform.api.cli", "--home", str(home), "--store", store_url, "worker", *args],
            stdout=out, stderr=out, env=worker_env(**env), start_new_session=True,
        )
    finally:
        if log is not None:
            out.close()


def stop(proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout: float = 30) -> int:
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
    return proc.wait(timeout=timeout)


def wait_until(predicate, timeout: float = 30.0, what: str = "the condition"):
    """Poll observable state (the store, a process) until ``predicate()`` is truthy."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)   # a poll interval, not a synchronisation: the state decides
        delay = min(delay * 1.5, 0.1)


def owner_pid(run) -> int | None:
    if not run.owner:
        return None
    pid = run.owner.rpartition(":")[2]
    return int(pid) if pid.isdigit() else None


def check_stream(events, *, expect_status: str = "succeeded") -> None:
    """Invariants of a run's stream after any number of takeovers (CONTRACT 3 and 8)."""
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(events) + 1)), f"seq not contiguous: {seqs}"
    assert events[0].type == "run.queued", events[0].type
    # One terminal event per execution segment (CONTRACT 8), and the last event ends the run.
    segment_ends: list[str] = []
    for e in events:
        if e.type in ("run.started", "run.resumed"):
            segment_ends.append("")
        elif e.type in ("run.completed", "run.failed", "run.cancelled"):
            assert segment_ends and not segment_ends[-1], f"two terminal events in one segment at seq {e.seq}"
            segment_ends[-1] = e.type
    terminal = [e for e in events if e.type in ("run.completed", "run.failed", "run.cancelled")]
    assert terminal and events[-1] is terminal[-1], f"the run did not end: {[e.type for e in events[-3:]]}"
    done = Counter((e.type, e.path) for e in events if e.type in ("agent.completed", "stage.completed"))
    twice = [k for k, n in done.items() if n > 1]
    assert not twice, f"completed twice for the same path and visit: {twice}"
    started = [e for e in events if e.type == "run.started"]
    assert len(started) <= 1, "run.started twice"
    status = {"run.completed": "succeeded", "run.failed": "failed", "run.cancelled": "cancelled"}[terminal[-1].type]
    assert status == expect_status, (status, terminal[-1].data)
