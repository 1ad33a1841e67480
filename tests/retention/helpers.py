"""Manifests and run records for the gc tests: scripted models, a stderr-writing tool server."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEAD = "apiVersion: agentform.dev/v1alpha1\n"
DAY = 86400.0
CLI = [sys.executable, "-c", "import sys; from agentform.api.cli import main; main(sys.argv[1:])"]


def doc(kind: str, name: str, spec: dict) -> str:
    return f"{HEAD}kind: {kind}\nmetadata: {json.dumps({'name': name})}\nspec: {json.dumps(spec)}\n"


def project(root: Path) -> Path:
    """Agents ``ok`` (answers, any number of times), ``boom`` (a provider error: the run fails),
    ``talker`` (calls the stdio tool server ``talker`` once) and pipeline ``gate`` (an approval)."""
    script = {"agents": {
        "ok": [{"content": "fine", "usage": {"input": 3, "output": 2}}] * 50,
        "boom": [{"error": "the provider is down"}] * 10,
        "talker": [{"toolCalls": [{"name": "say", "arguments": {"text": "hello"}}]}, {"content": "said"}] * 10,
    }}
    root.mkdir(parents=True, exist_ok=True)
    (root / "script.yaml").write_text(json.dumps(script))
    docs = [
        doc("Model", "m", {"model": "scripted", "script": "script.yaml"}),
        doc("Agent", "ok", {"model": "m"}),
        doc("Agent", "boom", {"model": "m"}),
        doc("ToolServer", "talker", {"transport": "stdio", "command": [sys.executable, str(HERE / "mcp_talker.py")]}),
        doc("Agent", "talker", {"model": "m", "tools": [{"toolServer": "talker"}]}),
        doc("Pipeline", "gate", {"stages": [{"name": "ask", "approval": {"message": "Go?", "timeout": "1h"}}]}),
    ]
    (root / "all.yaml").write_text("---\n".join(docs))
    return root


def age(store, run_id: str, days: float) -> None:
    """Make run ``run_id`` look created (and, when finished, ended) ``days`` ago."""
    run = store.get_run(run_id)
    when = time.time() - days * DAY
    store.update_run(run_id, created_at=when, finished_at=when if run.finished_at is not None else None)


def record(store, run_id: str, status: str, days: float, events: int = 3) -> None:
    """A run in ``status`` (queued or running: what another process is doing) created ``days``
    ago, with ``events`` events in its stream."""
    from agentform.engine.store.base import Event, RunRecord

    when = time.time() - days * DAY
    run = RunRecord(id=run_id, target="agent/default/ok", status=status, revision=1, created_at=when,
                    owner="elsewhere:1" if status == "running" else None, heartbeat_at=when)
    store.append_events([Event(run_id, i, when, "run.queued" if i == 1 else "message.delta", "", {"n": i})
                         for i in range(1, events + 1)], new_runs=[run])


def present(store, run_ids) -> dict[str, int]:
    """Of ``run_ids``, those in the store, with how many events each still has."""
    from agentform.engine.errors import NotFound

    found = {}
    for run_id in run_ids:
        try:
            store.get_run(run_id)
        except NotFound:
            assert store.read_events(run_id) == [], f"events of deleted run {run_id} remain"
            continue
        found[run_id] = len(store.read_events(run_id))
    return found
