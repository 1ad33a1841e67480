"""Helpers for the project-level tests: the repo root and the CLI as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())

# The console script's entry point, run with this interpreter (python -m would load the
# CLI module twice and lose the registered commands).
CLI = [sys.executable, "-c", "import sys; from agentform.api.cli import main; main(sys.argv[1:])"]


def cli_env(home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFORM_")}
    env["CI"] = "true"
    if home is not None:
        env["AGENTFORM_HOME"] = str(home)
    return env


def agentform(*args: str, home: Path | None = None, cwd: Path | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``agentform ARGS`` as a separate process; returns the finished process."""
    return subprocess.run(
        [*CLI, *args], cwd=cwd or ROOT, env=cli_env(home), capture_output=True, text=True,
        timeout=timeout,
    )
