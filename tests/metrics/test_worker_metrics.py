"""`worker --metrics-port` serves the worker process's own metrics: what it executed."""

from __future__ import annotations

import asyncio
import signal
import socket
import urllib.request

from agentform import Engine
from tests.workers.helpers import start_worker, stop, wait_until

from .helpers import parse, project


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return answer.read().decode()
    except OSError:
        return None


def test_a_worker_serves_its_own_metrics(tmp_path, pg_store_url):
    engine = Engine(tmp_path / "home", store=pg_store_url)
    port = _free_port()
    worker = start_worker(pg_store_url, tmp_path / "worker-home", "--metrics-port", str(port),
                          log=tmp_path / "worker.log")
    try:
        engine.apply(project(tmp_path / "m"))
        idle = parse(wait_until(lambda: _scrape(port), what="the worker's /metrics"))
        assert idle['agentform_process_runs_finished_total{status="succeeded"}'] == 0
        assert idle["agentform_process_runs_executing"] == 0
        run = asyncio.run(engine.enqueue("team/crew", input="b"))
        done = wait_until(lambda: (r := engine.get_run(run.id)).status == "succeeded" and r, what="the run")
        assert done.output == "done"
        m = parse(_scrape(port))
        assert m['agentform_process_runs_finished_total{status="succeeded"}'] == 1
        assert m['agentform_model_call_seconds_count{model="scripted"}'] == 3   # the boss twice, the worker once
        assert m['agentform_model_call_seconds_sum{model="scripted"}'] >= 0.2   # the boss's 200 ms turn
        assert m['agentform_tool_call_seconds_count{tool="ask_worker"}'] == 1
        assert m["agentform_event_commit_latency_seconds_count"] >= 1
        # The store-derived figures are serve's, not the worker's (N workers would each query them).
        assert not any(name.startswith("agentform_runs_by_target") for name in m)
        assert stop(worker, signal.SIGTERM) == 0
        assert _scrape(port) is None   # the port closes with the worker
    finally:
        stop(worker)
        engine.close()
