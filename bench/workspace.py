"""Benchmark: what a workspace costs, from the sandbox to the engine's tool path.

    python bench/workspace.py [--commands 50] [--writes 200] [--json]

Three figures, medians and p90 (ms), on the local backend (bubblewrap, the sandbox uid, rlimits):
- ``sandboxed command``: ``LocalBackend.run_command("true")`` (bwrap + prlimit + setpriv + sh),
  against ``unsandboxed command``: the same ``sh -c true`` by subprocess alone;
- ``write_file through the engine``: one scripted agent writes a small file per model turn
  through ``Engine.run`` (the built-in MCP server, confinement, the diff, the journal,
  ``workspace.changed``), from its ``tool.call`` event to its ``tool.result`` event;
- ``run_command through the engine``: the same for ``run_command("true")`` (both snapshots
  of the workspace included).
The first calls (server start, caches) are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WARMUP = 3


def _stats(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {"median_ms": round(statistics.median(samples) * 1000, 2),
            "p90_ms": round(samples[int(len(samples) * 0.9) - 1] * 1000, 2), "n": len(samples)}


def bench_backend(home: Path, n: int) -> dict[str, dict[str, float]]:
    from agentform.engine.workspaces.backend import WorkspaceConfig
    from agentform.engine.workspaces.local import LocalBackend
    from agentform.specs.workspace import WorkspaceSpec

    backend = LocalBackend()
    ws = WorkspaceConfig.from_spec("default", "bench", WorkspaceSpec(limits={"pids": 64, "memory": "512Mi"}),
                                   home=home)
    backend.provision(ws)
    sandboxed, bare = [], []
    for i in range(n + WARMUP):
        t = time.perf_counter()
        assert backend.run_command(ws, "true").ok
        if i >= WARMUP:
            sandboxed.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", "true"], check=True)
        if i >= WARMUP:
            bare.append(time.perf_counter() - t)
    return {"sandboxed command": _stats(sandboxed), "unsandboxed command": _stats(bare)}


def bench_engine(folder: Path, writes: int, commands: int) -> dict[str, dict[str, float]]:
    from agentform.engine.api import Engine
    from tests.runtime.helpers import agent, manifest, project, team

    turns = [{"toolCalls": [{"name": "write_file", "arguments": {"path": f"notes/{i}.md", "content": f"note {i}\n"}}]}
             for i in range(writes + WARMUP)]
    turns += [{"toolCalls": [{"name": "run_command", "arguments": {"command": "true"}}]}
              for _ in range(commands + WARMUP)]
    root = project(folder / "m", {"agents": {"lead": [*turns, {"content": "done"}]}}, [
        manifest("Workspace", "room", {"limits": {"timeout": "30s"}}),
        agent("lead", tools=[{"builtin": "workspace"}], budget={"maxTurns": len(turns) + 5}), agent("helper"),
        team("crew", "lead", [{"agent": "helper"}], workspace="room")])
    with Engine(home=folder / "home", store=None) as engine:
        applied = engine.apply(root)
        assert applied.exit_code == 0, applied.error_lines()
        events: list = []
        result = asyncio.run(engine.run("team/crew", "go", on_event=events.append))
        assert result.status == "succeeded", result.error
    called: dict[str, float] = {}
    by_tool: dict[str, list[float]] = {"write_file": [], "run_command": []}
    for event in events:
        if event.type == "tool.call":
            called[event.data["id"]] = event.ts
        elif event.type == "tool.result":
            by_tool[event.data["name"]].append(event.ts - called[event.data["id"]])
    return {"write_file through the engine": _stats(by_tool["write_file"][WARMUP:]),
            "run_command through the engine": _stats(by_tool["run_command"][WARMUP:])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=50)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = {**bench_backend(Path(tmp) / "backend", args.commands),
                   **bench_engine(Path(tmp), args.writes, args.commands)}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for name, s in figures.items():
        print(f"{name:<34} median {s['median_ms']:>8.2f} ms   p90 {s['p90_ms']:>8.2f} ms   (n={s['n']})")


if __name__ == "__main__":
    main()
