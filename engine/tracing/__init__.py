"""OpenTelemetry traces of runs, derived from their event streams (CONTRACT §8 "Observability").

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
is set, unless ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. Then the runner
opens each run's stream with ``observe(...)``: one observer per execution segment turns the
events into spans (spans.py) and exports them (otlp.py). Off, ``observe`` returns the
caller's callback unchanged and nothing of OpenTelemetry is imported: this module is
stdlib only.

Message content (inputs, outputs, tool arguments and results) is exported only with
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``; every string passes the
redactor either way. A tracing failure never reaches the run: the observer logs it once
and stops tracing that run.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

_log = logging.getLogger("agentform.tracing")
CAPTURE_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_warned_missing = False


def enabled(environ: Any = os.environ) -> bool:
    """Whether runs export traces (the standard OpenTelemetry variables decide)."""
    if not (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() != "none"


def capture_content(environ: Any = os.environ) -> bool:
    return environ.get(CAPTURE_VARIABLE, "").strip().lower() == "true"


def observe(run_id: str, on_event: Callable[[Any], None] | None, *,
            history: Iterable[Any] | Callable[[], Iterable[Any]] = (),
            past_seq: int | None = None) -> Callable[[Any], None] | None:
    """``on_event`` with this run's tracer in front of it (tracing on), else ``on_event`` itself.

    ``history``: the stream (or a function reading it, called only when tracing is on) when
    this process continues the run (a resume, a worker takeover, an approve); its events up
    to ``past_seq`` are the past, whose open spans stay open and keep their ids (the later
    ones reach ``on_event`` as live events)."""
    if not enabled():
        return on_event
    if callable(history):
        history = history()
    past = [e for e in history if past_seq is None or e.seq <= past_seq]
    tracer = _tracer(run_id, past)
    if tracer is None:
        return on_event
    if on_event is None:
        return tracer

    def both(event: Any) -> None:
        tracer(event)
        on_event(event)

    return both


def flush(timeout_s: float = 10.0) -> bool:
    """Send every finished span now (a long-lived process, a test); True when all were sent."""
    if not enabled():
        return True
    from . import otlp

    pipeline = otlp.current()
    return True if pipeline is None else pipeline.flush(timeout_s)


def _tracer(run_id: str, history: Iterable[Any]) -> Callable[[Any], None] | None:
    global _warned_missing
    try:
        from . import otlp
    except ImportError as exc:
        if not _warned_missing:
            _warned_missing = True
            _log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed (%s): runs "
                         "export no traces; install agentform[otel]", exc)
        return None
    from .spans import RunTracer, trace_id_of

    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("OTEL_")))
    pipeline = otlp.pipeline(key)
    trace_id = trace_id_of(run_id)
    if not pipeline.sampled(trace_id):
        return None
    trace = RunTracer(run_id, lambda record: pipeline.export(trace_id, record), capture=capture_content())
    state = {"failed": False}
    lock = threading.Lock()   # emit may run in more than one thread (tools run in executors)

    def traced(event: Any) -> None:
        if state["failed"]:
            return
        try:
            with lock:
                trace.observe(event)
        except Exception:  # noqa: BLE001 - observability must never stop a run
            state["failed"] = True
            _log.warning("tracing of run %s stopped: a span could not be made", run_id, exc_info=True)

    try:
        trace.seed(history)
    except Exception:  # noqa: BLE001
        _log.warning("tracing of run %s is off: its past could not be read into spans", run_id, exc_info=True)
        return None
    return traced
