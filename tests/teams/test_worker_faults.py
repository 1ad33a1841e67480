"""Fault injection on real worker processes and PostgreSQL, on runs that use handoff mode and
loop feedback: the worker that owns the run is SIGKILLed after a random number of its events;
another worker takes the run over and completes it with a contiguous stream, nothing completed
twice, and the output of an uninterrupted run."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.workers.helpers import (
    EXAMPLES,
    FINISHED,
    check_stream,
    owner_pid,
    start_worker,
    stop,
    wait_until,
)

pytestmark = pytest.mark.timeout(600)

CASES = {"triage-desk": ("team/triage-desk/desk", "I was charged twice for INV-1042"),
         "judge-loop": ("pipeline/judge-loop", "a solar camping lamp")}


def _slow_copy(name: str, root: Path) -> Path:
    """The example with 60 ms on every scripted turn, so that kills land mid-run."""
    target = root / name
    shutil.copytree(EXAMPLES / name, target)
    (script,) = (target / "scripts").glob("*.yaml")
    data = YAML(typ="safe").load(script.read_text())
    for turns in data["agents"].values():
        for turn in turns:
            turn["latency"] = "60ms"
    script.write_text(json.dumps(data))
    return target


@pytest.mark.parametrize("name", sorted(CASES))
def test_sigkill_of_the_owning_worker_mid_run(name: str, pg_store_url: str, tmp_path: Path):
    from agentform.engine.api import Engine
    from agentform.engine.store import open_store

    target, text = CASES[name]
    seed = int(os.environ.get("AGENTFORM_FAULT_SEED", time.time_ns() % 1_000_000))
    print(f"fault injection seed {seed}")
    rng = random.Random(seed)
    home = tmp_path / "home"
    with Engine(home=home, store=pg_store_url) as engine:
        engine.apply(_slow_copy(name, tmp_path))
        baseline = asyncio.run(engine.run(target, input=text))
        assert baseline.status == "succeeded", baseline.error
        total = engine.store.get_run(baseline.id).last_seq
    store = open_store(pg_store_url)
    workers = [start_worker(pg_store_url, home, log=tmp_path / f"w{i}.log") for i in range(2)]
    spawned = 2
    try:
        for _ in range(int(os.environ.get("AGENTFORM_FAULT_ITERATIONS", "4"))):
            async def enqueue():
                engine = Engine(home=home, store=pg_store_url)
                try:
                    return (await engine.enqueue(target, input=text)).id
                finally:
                    await engine.aclose()

            run_id = asyncio.run(enqueue())
            k = rng.randint(2, total - 2)
            run = wait_until(lambda run_id=run_id, k=k: (r := store.get_run(run_id)).last_seq >= k and r, timeout=60,
                             what=f"event {k} of run {run_id}")
            victim = next((w for w in workers if w.pid == owner_pid(run)), None) or rng.choice(workers)
            stop(victim, signal.SIGKILL)
            workers.remove(victim)
            workers.append(start_worker(pg_store_url, home, log=tmp_path / f"w{spawned}.log"))
            spawned += 1
            done = wait_until(lambda run_id=run_id: (r := store.get_run(run_id)).status in FINISHED and r, timeout=90,
                              what=f"run {run_id} to finish after the kill at event {k}")
            assert done.status == "succeeded", (k, done.error)
            assert done.output == baseline.output, k
            events = store.read_events(run_id)
            check_stream(events)
            handoffs = [(e.path, e.data.get("to")) for e in events if e.type == "handoff"]
            assert handoffs == [(e.path, e.data.get("to")) for e in store.read_events(baseline.id)
                                if e.type == "handoff"], k
            # each stage visit read the same loop feedback as in the uninterrupted run
            inputs = {(e.path, e.data.get("input")) for e in events if e.type == "stage.started"}
            assert inputs == {(e.path, e.data.get("input")) for e in store.read_events(baseline.id)
                              if e.type == "stage.started"}, k
    finally:
        for w in workers:
            stop(w, signal.SIGTERM)
        store.close()
