"""Benchmark: what tracing costs a run, off and on (bench/runtime.py's 11-agent workload, SQLite).

    python bench/tracing.py [--reps N] [--json]

Three ways of running the same workload, in one process (same engine, store and warm
caches), medians per agent invocation (wall and process CPU, which includes the exporter's
thread); two phases, each alternating two ways run by run:

1. ``baseline`` (the runner without the tracing hook: ``tracing.observe`` replaced by the
   identity) against ``off`` (no ``OTEL_EXPORTER_OTLP_ENDPOINT``: the hook as shipped);
2. ``off`` against ``on`` (spans exported over OTLP/HTTP to a receiver on 127.0.0.1 in a
   child process, as a collector would be; a batch every 50 ms).

Also printed: the cost of the off path's one call per run (``tracing.observe``), in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime import INVOCATIONS, WARMUP, _one, engine_for  # noqa: E402 - bench/ is not a package


class _Sink(BaseHTTPRequestHandler):
    """A collector that reads each export and answers 200 (bytes counted, nothing decoded)."""

    received = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        _Sink.received += len(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - how many bytes came in
        body = str(_Sink.received).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        return


def serve_sink() -> None:
    """The child process: serve the sink on a free loopback port, print the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def received(endpoint: str) -> int:
    from urllib.request import urlopen

    with urlopen(endpoint, timeout=5) as reply:
        return int(reply.read())


async def compare(engine, reps: int, endpoint: str) -> dict:
    from agentform.engine import tracing
    from agentform.engine.runtime import runner

    shipped = runner.tracing.observe

    def identity(run_id, on_event, **_):
        return on_event

    class _NoHook:
        observe = staticmethod(identity)

    timings: dict[str, list[tuple[float, float]]] = {"baseline": [], "off": [], "off2": [], "on": []}
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "50"
    os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    for _ in range(WARMUP):
        await _one(engine)
    try:
        for _ in range(reps):   # phase 1: the hook's cost while tracing is off
            runner.tracing = _NoHook
            timings["baseline"].append(await _one(engine))
            runner.tracing = tracing
            timings["off"].append(await _one(engine))
        for _ in range(reps):   # phase 2: what exporting costs
            os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
            timings["off2"].append(await _one(engine))
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
            timings["on"].append(await _one(engine))
        tracing.flush()
    finally:
        runner.tracing = tracing
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    assert runner.tracing.observe is shipped

    def per_invocation(mode: str, i: int) -> float:
        return round(statistics.median(t[i] for t in timings[mode]) * 1000 / INVOCATIONS, 3)

    return {mode: {"ms": per_invocation(mode, 0), "cpu_ms": per_invocation(mode, 1)} for mode in timings}


def off_call_us() -> float:
    """The off path's one call per run: ``tracing.observe`` with no OTEL variable set."""
    from agentform.engine import tracing

    os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    n = 100_000
    return round(min(timeit.repeat(lambda: tracing.observe("r", None), number=n, repeat=5)) / n * 1e6, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        serve_sink()
        return
    sink = subprocess.Popen([sys.executable, __file__, "--sink"], stdout=subprocess.PIPE, text=True)
    try:
        endpoint = f"http://127.0.0.1:{int(sink.stdout.readline())}"
        with tempfile.TemporaryDirectory() as tmp_dir:
            engine = engine_for(Path(tmp_dir), 0)
            figures = asyncio.run(compare(engine, args.reps, endpoint))
            engine.close()
        figures["off_call_us"] = off_call_us()
        figures["exported_bytes"] = received(endpoint)   # flushed: every batch is in
    finally:
        sink.terminate()
        sink.wait(10)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print("agentform tracing, 11-agent workload (14 model calls), SQLite, alternating runs, medians")
    for label, mode in (("1 baseline", "baseline"), ("1 off", "off"), ("2 off", "off2"), ("2 on", "on")):
        f = figures[mode]
        print(f"  {label:<10}: {f['ms']:.3f} ms/invocation (CPU {f['cpu_ms']:.3f})")
    print(f"  off path : {figures['off_call_us']:.3f} us per run (tracing.observe without OTEL_* set)")
    print(f"  exported : {figures['exported_bytes']:,} bytes of OTLP protobuf to 127.0.0.1")


if __name__ == "__main__":
    main()
