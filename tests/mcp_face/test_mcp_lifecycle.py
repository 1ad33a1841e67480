"""Runs started over MCP live in the server process: cancel_run stops one; a client that
disconnects takes the server down, and the runs still going are recorded as cancelled."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from agentform.engine.store import open_store

from .test_mcp_server import _ok, _server

SLOW = """apiVersion: agentform.dev/v1alpha1
kind: Model
metadata: {name: slow-model}
spec: {model: scripted, script: script.yaml}
---
apiVersion: agentform.dev/v1alpha1
kind: Agent
metadata: {name: slow}
spec:
  model: slow-model
  instructions: Take your time.
"""
SCRIPT = """agents:
  slow:
    - content: "done at last"
      latency: 1h
"""


def _wait_for_status(store, run_id: str, wanted: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = store.get_run(run_id).status
        if status == wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.05)   # a poll of the store, which decides


async def test_cancel_run_and_disconnect_cancel_the_runs(tmp_path: Path, store_url: str):
    repo = tmp_path / "slow"
    repo.mkdir()
    (repo / "slow.yaml").write_text(SLOW)
    (repo / "script.yaml").write_text(SCRIPT)
    home = tmp_path / "home"
    done = subprocess.run([sys.executable, "-m", "agentform.api.cli", "--home", str(home), "--store", store_url,
                           "apply", str(repo)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    async with _server(home, store_url) as client:
        first = (await _ok(client, "start_run", {"target": "agent/slow", "input": "go"}))["run"]
        second = (await _ok(client, "start_run", {"target": "agent/slow", "input": "go"}))["run"]
        running = await _ok(client, "wait_run", {"run_id": first, "timeout_s": 0})
        assert running["status"] == "running"
        cancelled = await _ok(client, "cancel_run", {"run_id": first})
        assert cancelled["run"] == first
        after = await _ok(client, "wait_run", {"run_id": first, "timeout_s": 30})
        assert after["status"] == "cancelled", after
    # The client closed the server's stdin: the second run was cancelled on the way out.
    store = open_store(store_url)
    try:
        assert _wait_for_status(store, second, "cancelled") == "cancelled"
        assert store.read_events(second)[-1].type == "run.cancelled"
    finally:
        store.close()
