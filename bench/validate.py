"""Benchmark: `agentform validate` on 1,000 manifests and `agentform --help`, as whole processes.

Run as `python bench/validate.py` (by `make bench`). Prints the median wall time of several
runs next to the targets (validate of 1,000 manifests < 2 s, --help < 0.25 s).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 7
HEADER = "apiVersion: agentform.dev/v1alpha1\n"


def _agentform() -> list[str]:
    script = Path(sys.executable).with_name("agentform")
    return [str(script)] if script.exists() else [sys.executable, "-m", "agentform.api.cli"]


def manifests(n_groups: int = 50) -> dict[str, str]:
    """Files of a realistic mix: each group has 20 manifests of every kind, with references."""
    files: dict[str, str] = {"scripts/demo.yaml": "agents:\n  lead-0:\n    - content: done\n"}
    for g in range(n_groups):
        docs = [
            f"kind: Secret\nmetadata: {{name: key-{g}}}\nspec: {{fromEnv: KEY_{g}}}\n",
            f"kind: Model\nmetadata: {{name: fast-{g}}}\nspec:\n  model: openai/gpt-4o-mini\n"
            f"  apiKey: {{secretRef: key-{g}}}\n  params: {{temperature: 0.2}}\n",
            f"kind: Model\nmetadata: {{name: scripted-{g}}}\nspec: {{model: scripted, script: ../scripts/demo.yaml}}\n",
            f"kind: ToolServer\nmetadata: {{name: git-{g}}}\nspec:\n  transport: stdio\n"
            f"  command: [uvx, mcp-server-git, --repository, 'repos/{{{{ run.id }}}}']\n  env: {{TOKEN: {{secretRef: key-{g}}}}}\n",
            f"kind: Workspace\nmetadata: {{name: room-{g}}}\nspec: {{backend: local, limits: {{memory: 512Mi, timeout: 60s}}}}\n",
            f"kind: Workspace\nmetadata: {{name: desk-{g}}}\nspec: {{backend: local}}\n",
            f"kind: KnowledgeBase\nmetadata: {{name: docs-{g}}}\nspec:\n  sources: [{{path: 'docs/**/*.md'}}]\n",
        ]
        for a in range(9):
            docs.append(
                f"kind: Agent\nmetadata:\n  name: agent-{g}-{a}\n  labels: {{tier: cheap}}\nspec:\n"
                f"  model: fast-{g}\n  description: Finds and summarises sources\n  instructions: |\n"
                f"    You are {{{{ agent.name }}}}. Today is {{{{ now.date }}}}.\n    Be brief and cite sources.\n"
                f"  tools:\n    - toolServer: git-{g}\n      allow: [git_log]\n    - builtin: workspace\n"
                f"    - knowledge: docs-{g}\n  budget: {{maxTurns: 10, maxCostUsd: 0.5, timeout: 5m}}\n"
            )
        docs.append(f"kind: Agent\nmetadata: {{name: lead-{g}}}\nspec:\n  model: scripted-{g}\n  instructions: Lead.\n")
        docs.append(
            f"kind: Team\nmetadata: {{name: team-{g}}}\nspec:\n  manager: lead-{g}\n  members:\n"
            + "".join(f"    - agent: agent-{g}-{a}\n" for a in range(5))
            + f"    - {{agent: agent-{g}-5, mode: delegate}}\n  workspace: room-{g}\n  budget: {{maxCostUsd: 2}}\n"
        )
        docs.append(
            f"kind: Pipeline\nmetadata: {{name: flow-{g}}}\nspec:\n  params:\n    topic: {{type: string}}\n"
            f"  workspace: desk-{g}\n  stages:\n"
            f"    - {{name: research, team: team-{g}, input: 'Research {{{{ params.topic }}}}'}}\n"
            f"    - name: draft\n      agent: agent-{g}-6\n      needs: [research]\n"
            f"      input: '{{{{ stages.research.output }}}}'\n"
            f"    - name: review\n      agent: agent-{g}-7\n      needs: [draft]\n      maxVisits: 3\n"
            f"      routes: [{{when: \"'REVISE' in output\", goto: draft}}]\n"
            f"    - name: per-source\n      agent: agent-{g}-8\n      needs: [research]\n"
            f"      forEach: '{{{{ stages.research.output.sources }}}}'\n      input: '{{{{ item }}}}'\n"
            f"    - {{name: ship, approval: {{message: 'Publish {{{{ params.topic }}}}?'}}, needs: [review]}}\n"
            f"  output: \"{{{{ stages.review.output }}}}\"\n"
        )
        docs += [
            f"kind: Secret\nmetadata: {{name: extra-{g}-{i}}}\nspec: {{fromFile: /run/secrets/x{i}}}\n"
            for i in range(20 - len(docs))
        ]
        files[f"group-{g:03d}/app.yaml"] = "---\n".join(HEADER + d for d in docs)
    return files


def median_time(argv: list[str], cwd: Path, expect: int = 0) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of ``RUNS`` runs of a command."""
    walls, cpus = [], []
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != expect:
            sys.exit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="agentform-bench-"))
    try:
        count = 0
        for rel, text in manifests().items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            count += text.count("apiVersion:")
        cli = _agentform()
        subprocess.run(cli + ["--help"], capture_output=True)  # warm the bytecode cache
        validate, validate_cpu = median_time(cli + ["validate", "."], folder)
        helptime, help_cpu = median_time(cli + ["--help"], folder)
        print(f"agentform validate, {count} manifests: median {validate:.3f} s wall, {validate_cpu:.3f} s CPU "
              f"of {RUNS} runs  (target < 2 s)")
        print(f"agentform --help:                      median {helptime:.3f} s wall, {help_cpu:.3f} s CPU "
              f"of {RUNS} runs  (target < 0.25 s)")
        print(f"load average during the runs: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
              "(wall times grow with load; CPU times much less)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
