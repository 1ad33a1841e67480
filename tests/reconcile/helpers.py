"""Manifest folders and a real `agentform` subprocess for the reconcile tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

HEADER = "apiVersion: agentform.dev/v1alpha1\n"

MODELS = """\
apiVersion: agentform.dev/v1alpha1
kind: Model
metadata: {name: fast}
spec:
  model: scripted
  script: scripts/demo.yaml
  pricing: {inputPerMTok: 0.15, outputPerMTok: 0.60}
"""

SCRIPT = """\
agents:
  lead:
    - content: "Final answer"
"""

AGENTS = """\
apiVersion: agentform.dev/v1alpha1
kind: Agent
metadata: {name: lead, labels: {tier: top}}
spec:
  model: fast
  description: Leads
  instructions: You lead.
---
apiVersion: agentform.dev/v1alpha1
kind: Agent
metadata: {name: researcher, labels: {tier: cheap}}
spec:
  model: fast
  description: Finds facts
  instructions: You find facts.
---
apiVersion: agentform.dev/v1alpha1
kind: Agent
metadata: {name: writer, labels: {tier: cheap}}
spec:
  model: fast
  description: Writes
  instructions: You write.
"""

TEAM = """\
apiVersion: agentform.dev/v1alpha1
kind: Team
metadata: {name: research}
spec:
  manager: lead
  members:
    - agent: researcher
    - agent: writer
      mode: delegate
"""

PIPELINE = """\
apiVersion: agentform.dev/v1alpha1
kind: Pipeline
metadata: {name: newsroom}
spec:
  params:
    topic: {type: string}
  stages:
    - name: research
      team: research
      input: "Research {{ params.topic }}"
    - name: draft
      agent: writer
      needs: [research]
      input: "{{ stages.research.output }}"
    - name: review
      agent: lead
      needs: [draft]
      input: "{{ stages.draft.output }}"
      routes:
        - when: "'REVISE' in output"
          goto: draft
      maxVisits: 3
    - name: ship
      approval: {message: "Publish?"}
      needs: [review]
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text) under ``folder``; returns ``folder``."""
    for rel, text in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def demo_files() -> dict[str, str]:
    return {"models.yaml": MODELS, "scripts/demo.yaml": SCRIPT, "agents.yaml": AGENTS,
            "team.yaml": TEAM, "pipeline.yaml": PIPELINE}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@dataclass
class Cli:
    """``agentform --home HOME --store URL ...`` as a real process."""

    home: Path
    store_url: str
    cwd: Path

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFORM_")}
        env.update(extra or {})
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-c", "from agentform.api.cli import main; main()", "--home", str(self.home),
                "--store", self.store_url, *args]

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
        proc = subprocess.run(self.argv(*args), cwd=self.cwd, env=self.env(env), capture_output=True,
                              text=True, timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), cwd=self.cwd, env=self.env(env), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
