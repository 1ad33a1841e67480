"""Benchmark: scheduling overhead per stage of a 200-stage pipeline, on SQLite and PostgreSQL.

Run as ``python bench/pipeline.py`` (by ``make bench``). The pipeline is a DAG of width 20:
10 layers of 20 agent stages; in every other layer each stage needs the whole previous
layer, in the others a sparse subset (3 stages of it). Every stage calls an agent on the
zero-latency scripted model, so the run's wall time is the engine's own cost: scheduling,
templates, the agent invocation and every event persisted. The figure printed is the wall
time of a whole run divided by its 200 stages (nothing subtracted), median of the runs.
Target (issue 6): under 2 ms per stage on SQLite. PostgreSQL uses ``AGENTFORM_TEST_PG``
(default postgresql://postgres@127.0.0.1:5432/test) in a schema of its own, dropped
afterwards; ``AGENTFORM_TEST_PG=skip`` leaves it out.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from agentform.engine.reconcile import apply_path
from agentform.engine.runtime import runner
from agentform.engine.store import open_store

WIDTH, LAYERS = 20, 10
STAGES = WIDTH * LAYERS
RUNS = 7
TARGET_MS = 2.0


def stage_name(layer: int, index: int) -> str:
    return f"s{layer}-{index}"


def pipeline_spec() -> dict:
    """10 layers of 20: dense (all of the previous layer) and sparse (3 of it) in turn."""
    stages = []
    for layer in range(LAYERS):
        for index in range(WIDTH):
            stage: dict = {"name": stage_name(layer, index), "agent": "worker",
                           "input": f"step {layer}.{index} of {{{{ params.topic }}}}"}
            if layer > 0:
                if layer % 2:
                    picks = sorted({index, (index + 7) % WIDTH, (index * 3 + 1) % WIDTH})
                else:
                    picks = list(range(WIDTH))
                stage["needs"] = [stage_name(layer - 1, p) for p in picks]
            stages.append(stage)
    last = stage_name(LAYERS - 1, WIDTH - 1)
    return {"params": {"topic": {"type": "string", "default": "bench"}}, "maxParallel": WIDTH,
            "stages": stages, "output": f"{{{{ stages['{last}'].output }}}}"}


def write_manifests(folder: Path) -> None:
    (folder / "scripts").mkdir(parents=True)
    # One turn per stage run; RUNS + 1 runs share nothing (cursors are per run).
    (folder / "scripts" / "script.yaml").write_text(json.dumps({"agents": {"worker": [{"content": "ok"}] * STAGES}}))
    header = "apiVersion: agentform.dev/v1alpha1\n"
    docs = [
        header + "kind: Model\nmetadata: {name: instant}\nspec: {model: scripted, script: scripts/script.yaml}\n",
        header + "kind: Agent\nmetadata: {name: worker}\nspec: {model: instant, instructions: Work.}\n",
        header + f"kind: Pipeline\nmetadata: {{name: wide}}\nspec: {json.dumps(pipeline_spec())}\n",
    ]
    (folder / "bench.yaml").write_text("---\n".join(docs))


def measure(name: str, url: str, home: Path, manifests: Path) -> None:
    store = open_store(url, home=home)
    try:
        applied = apply_path(store, manifests, home=home)
        assert applied.exit_code == 0, applied.failed
        runner.start_run(store, "pipeline/wide", home=home)  # warm-up: imports, compiled templates
        per_stage = []
        for _ in range(RUNS):
            started = time.perf_counter()
            result = runner.start_run(store, "pipeline/wide", home=home)
            elapsed = time.perf_counter() - started
            assert result.status == "succeeded", result.error
            per_stage.append(elapsed / STAGES * 1000)
        events = len(store.read_events(result.id))
    finally:
        store.close()
    median = statistics.median(per_stage)
    note = ""
    if name == "sqlite":
        note = f"  target < {TARGET_MS:g} ms: {'ok' if median < TARGET_MS else 'MISSED'}"
    print(f"{name:<10} {median:6.3f} ms per stage (median of {RUNS} runs, min {min(per_stage):.3f}, "
          f"max {max(per_stage):.3f}; {median * STAGES:.0f} ms per run, {events} events){note}", flush=True)


def main() -> int:
    print(f"pipeline of {STAGES} stages (width {WIDTH}, {LAYERS} layers), zero-latency scripted model, "
          "every event persisted; wall time per stage")
    with tempfile.TemporaryDirectory() as tmp:
        manifests = Path(tmp) / "manifests"
        write_manifests(manifests)
        home = Path(tmp) / "home"
        measure("sqlite", f"sqlite:///{home / 'state.db'}", home, manifests)
        base = os.environ.get("AGENTFORM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
        if base == "skip":
            print("postgresql skipped (AGENTFORM_TEST_PG=skip)")
            return 0

        from _pg import temporary_schema

        with temporary_schema(base) as url:
            measure("postgresql", url, Path(tmp) / "pg-home", manifests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
