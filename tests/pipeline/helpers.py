"""Helpers for pipeline tests: write a manifest folder, apply it, run it, read its stream.

Every test writes its own small project into tmp_path: one scripted Model (the script is
given as data), agents (optionally with an output schema), and the pipelines under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from agentform.api.cli import main; main(sys.argv[1:])"]

HEADER = "apiVersion: agentform.dev/v1alpha1\n"


def model_doc(script: str = "scripts/script.yaml", pricing: dict | None = None) -> str:
    spec: dict[str, Any] = {"model": "scripted", "script": script}
    if pricing:
        spec["pricing"] = pricing
    return HEADER + f"kind: Model\nmetadata: {{name: m}}\nspec: {json.dumps(spec)}\n"


def agent_doc(name: str, schema: dict | None = None) -> str:
    spec: dict[str, Any] = {"model": "m", "instructions": f"You are {name}."}
    if schema is not None:
        spec["output"] = {"schema": schema}
    return HEADER + f"kind: Agent\nmetadata: {{name: {name}}}\nspec: {json.dumps(spec)}\n"


def pipeline_doc(name: str, spec: dict) -> str:
    return HEADER + f"kind: Pipeline\nmetadata: {{name: {name}}}\nspec: {json.dumps(spec)}\n"


def write_project(folder: Path, *, script: dict, agents: list[str] | dict[str, dict | None],
                  pipelines: dict[str, dict], extra: list[str] = (), pricing: dict | None = None) -> Path:
    """A manifest folder: the scripted model, the agents, the pipelines (specs as data)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scripts").mkdir(exist_ok=True)
    (folder / "scripts" / "script.yaml").write_text(json.dumps({"agents": script}))
    schemas = agents if isinstance(agents, dict) else {name: None for name in agents}
    docs = [model_doc(pricing=pricing)] + [agent_doc(n, s) for n, s in schemas.items()]
    docs += [pipeline_doc(n, spec) for n, spec in pipelines.items()] + list(extra)
    (folder / "manifests.yaml").write_text("---\n".join(docs))
    return folder


def apply(store: Any, folder: Path, home: Path) -> None:
    from agentform.engine.reconcile import apply_path

    result = apply_path(store, folder, home=home)
    assert result.exit_code == 0, [str(f) for f in result.failed]


def run(store: Any, target: str, home: Path, **kwargs: Any):
    from agentform.engine.runtime import runner

    return runner.start_run(store, target, home=home, **kwargs)


def stream(store: Any, run_id: str) -> list[Any]:
    events = store.read_events(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    return events


def index_of(events: list[Any], type_: str, path: str) -> int:
    """Position of the first event of this type and path (fails the test when absent)."""
    for i, event in enumerate(events):
        if event.type == type_ and event.path == path:
            return i
    raise AssertionError(f"no {type_} at {path} in {[(e.type, e.path) for e in events]}")


def max_in_flight(events: list[Any], prefix: str) -> int:
    """The most stage runs under ``prefix`` started and not yet ended at any point of the stream."""
    live, peak = 0, 0
    for event in events:
        if not event.path.startswith(prefix) or "/" in event.path[len(prefix):]:
            continue
        if event.type == "stage.started":
            live += 1
            peak = max(peak, live)
        elif event.type in ("stage.completed", "stage.failed"):
            live -= 1
    return peak


def cli_env(home: Path, store_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFORM_")}
    env["CI"] = "true"
    env["AGENTFORM_HOME"] = str(home)
    if store_url:
        env["AGENTFORM_STORE"] = store_url
    return env


def agentform(*args: str, home: Path, store_url: str | None = None, cwd: Path | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``agentform ARGS`` as a separate process."""
    return subprocess.run([*CLI, *args], cwd=cwd or ROOT, env=cli_env(home, store_url),
                          capture_output=True, text=True, timeout=timeout)
