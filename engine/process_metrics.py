"""This process's own metrics: what it executes, seen in the events it commits.

``install(store)`` (the Engine calls it when it opens a store) adds a listener to
``engine.events.COMMITTED``; for the events this process commits to that store it keeps:

- ``agentform_model_call_seconds{model}``: from the previous event at the agent's path (its
  start, or the last tool result) to ``message.completed``, as the trace's model-call span;
- ``agentform_tool_call_seconds{tool}``: from ``tool.call`` to its ``tool.result`` (ask_* and
  transfer_* included: a member's whole answer);
- ``agentform_event_commit_latency_seconds``: per committed batch, from its first event's emit
  to the commit (how long an event waits to become durable);
- runs this process finished by status, runs it executes now, events it committed; and the
  standard process start time and resident memory.

Label values are bounded (``MAX_SERIES`` per histogram; more share the label ``other``), and
so is the bookkeeping of open calls (``MAX_RUNS`` runs at a time). ``serve`` appends these to
its store-derived ``/metrics``; ``worker --metrics-port`` serves them alone (``serve_http``).
"""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TOOL_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MAX_SERIES = 200
MAX_RUNS = 10_000
ENDS = {"run.completed": "succeeded", "run.failed": "failed", "run.cancelled": "cancelled",
        "run.waiting": "waiting"}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Histograms:
    """A histogram family with one label; thread-safe; at most ``MAX_SERIES`` label values."""

    def __init__(self, name: str, label: str, buckets: tuple[float, ...], help: str):
        self.name, self.label, self.buckets, self.help = name, label, buckets, help
        self.series: dict[str, Any] = {}   # label value -> engine.metrics.Histogram
        self._lock = threading.Lock()

    def observe(self, value: str, seconds: float) -> None:
        series = self.series.get(value)
        if series is None:
            from agentform.engine.metrics import Histogram

            with self._lock:
                if value not in self.series and len(self.series) >= MAX_SERIES:
                    value = "other"
                series = self.series.setdefault(value, Histogram(self.buckets))
        series.observe(seconds)

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            series = sorted(self.series.items())
        for value, histogram in series:
            out += histogram.lines(self.name, f'{self.label}="{_label(value)}"')
        return out


class ProcessMetrics:
    """The figures of this process (one per process: ``PROCESS``)."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.model = Histograms("agentform_model_call_seconds", "model", MODEL_BUCKETS,
                                "Model calls executed by this process, by model.")
        self.tool = Histograms("agentform_tool_call_seconds", "tool", TOOL_BUCKETS,
                               "Tool calls executed by this process, by tool.")
        from agentform.engine.metrics import Histogram

        self.commit = Histogram(COMMIT_BUCKETS)
        self.finished = dict.fromkeys(ENDS.values(), 0)
        self.events = 0
        self.stores: set[int] = set()
        self._executing: dict[str, dict[str, float]] = {}   # run -> path -> ts of its last event
        self._calls: dict[tuple[str, str], tuple[float, str]] = {}   # (run, call id) -> (ts, tool)

    def observe(self, store: Any, events: list[Any]) -> None:
        """The COMMITTED listener: a few dict operations per event, on the writer's thread."""
        if id(store) not in self.stores or not events:
            return
        now = time.time()
        self.commit.observe(now - events[0].ts)
        self.events += len(events)
        executing, calls = self._executing, self._calls
        for event in events:
            kind = event.type
            if kind == "message.delta" or kind == "usage":
                continue
            run = event.run_id
            paths = executing.get(run)
            if paths is None:
                if len(executing) >= MAX_RUNS:
                    executing.clear()
                    calls.clear()
                paths = executing[run] = {}
            if kind == "message.completed":
                start = paths.get(event.path)
                if start is not None:
                    self.model.observe(str(event.data.get("model") or "(unknown)"), event.ts - start)
            elif kind == "tool.call":
                calls[(run, str(event.data.get("id")))] = (event.ts, str(event.data.get("name")))
            elif kind == "tool.result":
                call = calls.pop((run, str(event.data.get("id"))), None)
                if call is not None:
                    self.tool.observe(call[1], event.ts - call[0])
            elif kind in ENDS:
                self.finished[ENDS[kind]] += 1
                executing.pop(run, None)
                for key in [k for k in calls if k[0] == run]:
                    del calls[key]
                continue
            paths[event.path] = event.ts

    def lines(self) -> list[str]:
        out = ["# HELP agentform_process_runs_finished_total Run segments this process ended, by how.",
               "# TYPE agentform_process_runs_finished_total counter"]
        out += [f'agentform_process_runs_finished_total{{status="{s}"}} {n}' for s, n in sorted(self.finished.items())]
        out += ["# HELP agentform_process_runs_executing Runs this process executes now.",
                "# TYPE agentform_process_runs_executing gauge",
                f"agentform_process_runs_executing {len(self._executing)}",
                "# HELP agentform_process_events_total Events this process committed.",
                "# TYPE agentform_process_events_total counter",
                f"agentform_process_events_total {self.events}"]
        out += self.model.lines() + self.tool.lines()
        out += ["# HELP agentform_event_commit_latency_seconds Per committed batch of events: its first "
                "event's emit to the commit, in this process.",
                "# TYPE agentform_event_commit_latency_seconds histogram",
                *self.commit.lines("agentform_event_commit_latency_seconds")]
        out += ["# HELP process_start_time_seconds Start time of the process since the epoch.",
                "# TYPE process_start_time_seconds gauge",
                f"process_start_time_seconds {self.started_at:.3f}"]
        rss = _resident_bytes()
        if rss is not None:
            out += ["# HELP process_resident_memory_bytes Resident memory size in bytes.",
                    "# TYPE process_resident_memory_bytes gauge", f"process_resident_memory_bytes {rss}"]
        return out

    def text(self) -> str:
        return "\n".join(self.lines()) + "\n"


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


PROCESS = ProcessMetrics()
_install_lock = threading.Lock()


def install(store: Any) -> None:
    """Count what this process commits to ``store`` (once per store)."""
    from agentform.engine.events import COMMITTED

    with _install_lock:
        PROCESS.stores.add(id(store))
        if PROCESS.observe not in COMMITTED:
            COMMITTED.append(PROCESS.observe)


def serve_http(host: str, port: int, render: Any = None) -> ThreadingHTTPServer:
    """``GET /metrics`` with ``render()`` (default: this process's figures) on a daemon thread;
    the server (``.server_address``; ``.shutdown()`` stops it). OSError when the port is taken."""
    from agentform.engine.redaction import REDACTOR

    produce = render or PROCESS.text

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics here")
                return
            body = REDACTOR.text(produce()).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="agentform-metrics", daemon=True).start()
    return server
