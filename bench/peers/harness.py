"""The measuring half of a peer workload: the same clock, counts and child processes for every peer.

Standard library only: it runs inside each peer's own virtual environment, next to
`langgraph_workload.py` or `openai_agents_workload.py`, which supply `build(latency)`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

# The hierarchy every peer builds: a manager over two leads over four specialists each.
LEADS: dict[str, list[str]] = {
    "lead_a": ["spec_a1", "spec_a2", "spec_a3", "spec_a4"],
    "lead_b": ["spec_b1", "spec_b2", "spec_b3", "spec_b4"],
}
MANAGER = "manager"
SPECIALISTS = [s for specs in LEADS.values() for s in specs]
INVOCATIONS_PER_RUN = 1 + len(LEADS) + len(SPECIALISTS)  # 11
MODEL_CALLS_PER_RUN = 2 + 2 * len(LEADS) + len(SPECIALISTS)  # 14
IDEAL_CRITICAL_PATH = 5  # manager, lead, specialist, lead, manager
TASK = "Size the market for solar-powered kettles"

OVERHEAD_WARMUP = 5
OVERHEAD_REPS = 31
LATENCY_REPS = 5
CONCURRENT_RUNS = 200


@dataclass
class Counts:
    """What the fake model and the agents saw; asserted after every measured run."""

    model_calls: int = 0
    invocations: int = 0
    by_agent: dict[str, int] = field(default_factory=dict)

    def model_call(self, agent: str) -> None:
        self.model_calls += 1
        self.by_agent[agent] = self.by_agent.get(agent, 0) + 1

    def invocation(self) -> None:
        self.invocations += 1

    def reset(self) -> None:
        self.model_calls = 0
        self.invocations = 0
        self.by_agent.clear()


COUNTS = Counts()

# build(latency_s) -> run(task) -> the manager's final answer
Builder = Callable[[float], Callable[[str], Awaitable[str]]]


def final_answer(agent: str, tool_outputs: list[str]) -> str:
    """The scripted final answer: a specialist's own line, or the lines its callees returned."""
    if not tool_outputs:
        return f"{agent}: done"
    return "\n".join(tool_outputs)


def check_run(output: str, runs: int = 1) -> None:
    """Fail loudly unless the workload did exactly 14 model calls and 11 invocations per run."""
    want_calls, want_inv = MODEL_CALLS_PER_RUN * runs, INVOCATIONS_PER_RUN * runs
    if COUNTS.model_calls != want_calls or COUNTS.invocations != want_inv:
        raise AssertionError(
            f"expected {want_calls} model calls and {want_inv} invocations, got "
            f"{COUNTS.model_calls} and {COUNTS.invocations} ({COUNTS.by_agent})"
        )
    missing = [s for s in SPECIALISTS if f"{s}: done" not in output]
    if missing:
        raise AssertionError(f"final answer lacks {missing}: {output!r}")


async def _timed_run(run: Callable[[str], Awaitable[str]]) -> tuple[float, float]:
    """One run: (wall seconds, CPU seconds of this process); CPU time resists a busy machine."""
    COUNTS.reset()
    t0, c0 = time.perf_counter(), time.process_time()
    output = await run(TASK)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    check_run(output)
    return elapsed, cpu


async def _single(build: Builder) -> dict:
    fast = build(0.0)
    for _ in range(OVERHEAD_WARMUP):
        await _timed_run(fast)
    per_run = [await _timed_run(fast) for _ in range(OVERHEAD_REPS)]
    slow = build(0.1)
    await _timed_run(slow)
    latency = [(await _timed_run(slow))[0] for _ in range(LATENCY_REPS)]
    run_ms = statistics.median(wall for wall, _ in per_run) * 1000
    cpu_ms = statistics.median(cpu for _, cpu in per_run) * 1000
    return {
        "overhead_ms_per_invocation": round(run_ms / INVOCATIONS_PER_RUN, 3),
        "overhead_ms_per_run": round(run_ms, 2),
        "overhead_cpu_ms_per_invocation": round(cpu_ms / INVOCATIONS_PER_RUN, 3),
        "latency100_ms": round(statistics.median(latency) * 1000, 1),
        "latency100_ideal_ms": IDEAL_CRITICAL_PATH * 100,
    }


async def _concurrent(build: Builder) -> dict:
    run = build(0.0)
    await _timed_run(run)
    COUNTS.reset()
    t0, c0 = time.perf_counter(), time.process_time()
    outputs = await asyncio.gather(*(run(TASK) for _ in range(CONCURRENT_RUNS)))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    check_run(outputs[0], runs=CONCURRENT_RUNS)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "runs_per_s": CONCURRENT_RUNS / elapsed,
        "runs_per_cpu_s": CONCURRENT_RUNS / cpu,
        "peak_rss_mb": peak_kb / 1024,
    }


def _fresh_children(script: str, mode: str, reps: int) -> list[dict]:
    """Run `script mode` in `reps` fresh interpreters (the same venv) and parse their JSON."""
    results = []
    for _ in range(reps):
        out = subprocess.run([sys.executable, script, mode], capture_output=True, text=True)
        if out.returncode != 0:
            sys.stderr.write(out.stderr)  # the child's traceback, for run_peers' error
            raise SystemExit(f"{Path(script).name} {mode} exited {out.returncode}")
        results.append(json.loads(out.stdout))
    return results


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _import_s(import_stmt: str, reps: int = 5) -> tuple[float, float]:
    """Median (wall, CPU) seconds of `python -c <import>` in a fresh process, start included."""
    walls, cpus = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), _cpu_of_children()
        subprocess.run([sys.executable, "-c", import_stmt], check=True)
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu_of_children() - c0)
    return statistics.median(walls), statistics.median(cpus)


def main(build: Builder, version: str, import_stmt: str, script: str) -> None:
    """Entry point of a workload script: `all` prints the peer's figures as one JSON object."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["all", "single", "concurrent"], nargs="?", default="all")
    parser.add_argument("--concurrent-reps", type=int, default=5)
    args = parser.parse_args()
    if args.mode == "single":
        result = asyncio.run(_single(build))
    elif args.mode == "concurrent":
        result = asyncio.run(_concurrent(build))
    else:
        # Each figure in its own fresh process so that one measurement cannot warm the next.
        result = {"version": version, "loadavg_1m_at_start": round(os.getloadavg()[0], 2)}
        result.update(_fresh_children(script, "single", 1)[0])
        conc = _fresh_children(script, "concurrent", args.concurrent_reps)
        result["concurrent_runs"] = CONCURRENT_RUNS
        result["concurrent_runs_per_s"] = round(statistics.median(c["runs_per_s"] for c in conc), 1)
        result["concurrent_runs_per_cpu_s"] = round(
            statistics.median(c["runs_per_cpu_s"] for c in conc), 1
        )
        result["concurrent_peak_rss_mb"] = round(
            statistics.median(c["peak_rss_mb"] for c in conc), 1
        )
        import_wall, import_cpu = _import_s(import_stmt)
        result["import_s"] = round(import_wall, 3)
        result["import_cpu_s"] = round(import_cpu, 3)
        result["model_calls_per_run"] = MODEL_CALLS_PER_RUN
        result["invocations_per_run"] = INVOCATIONS_PER_RUN
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
