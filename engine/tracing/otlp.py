"""Span records out over OTLP/HTTP through the OpenTelemetry SDK (imported only here, only when tracing is on).

One ``TracerProvider`` per process and per OpenTelemetry configuration (the ``OTEL_*``
variables: endpoint, headers, service name, batch settings, sampler), with a
``BatchSpanProcessor`` over the OTLP/HTTP protobuf exporter; the SDK reads the standard
variables itself. Spans are made after the fact from ``SpanRecord``s with their recorded
start and end times; their ids are the records' (``_Ids`` hands the SDK the id it is about
to use), so that the same run keeps one trace across processes. The provider is shut down
at exit (the SDK's atexit hook): a short CLI run's spans are sent before the process ends.
"""

from __future__ import annotations

import os
import random
import threading
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from .spans import SpanRecord

_KINDS = {"model": SpanKind.CLIENT}


class _Ids(IdGenerator):
    """The next span's ids as the caller set them (under ``Pipeline._lock``); random otherwise."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_span_id(self) -> int:
        value, self.span_id = self.span_id, 0
        return value or random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        value, self.trace_id = self.trace_id, 0
        return value or random.getrandbits(128) or 1


class Pipeline:
    """A provider, its batch processor and OTLP/HTTP exporter, configured from the environment."""

    def __init__(self, key: tuple) -> None:
        from agentform import __version__

        self.key = key
        self._ids = _Ids()
        self._lock = threading.Lock()
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "agentform",
                                    "service.version": __version__})
        self.provider = TracerProvider(resource=resource, id_generator=self._ids)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("agentform", __version__)

    def sampled(self, trace_id: int) -> bool:
        """The sampler's decision for a run's trace (``OTEL_TRACES_SAMPLER``; default: every run)."""
        result = self.provider.sampler.should_sample(Context(), trace_id, "run")
        return result.decision.is_sampled()

    def export(self, trace_id: int, record: SpanRecord) -> None:
        flags = TraceFlags(TraceFlags.SAMPLED)
        if record.parent_id is None:
            context = Context()   # the run span is the root, whatever span the caller has open
        else:
            parent = SpanContext(trace_id, record.parent_id, is_remote=True, trace_flags=flags)
            context = trace.set_span_in_context(NonRecordingSpan(parent))
        links = [Link(SpanContext(trace_id, earlier, is_remote=True, trace_flags=flags)) for earlier in record.links]
        with self._lock:
            self._ids.trace_id, self._ids.span_id = trace_id, record.span_id
            span = self.tracer.start_span(record.name, context=context, kind=_KINDS.get(record.kind, SpanKind.INTERNAL),
                                          attributes=record.attributes, links=links, start_time=_ns(record.start))
        for name, ts, attributes in record.events:
            span.add_event(name, attributes, timestamp=_ns(ts))
        if record.error is not None:
            span.set_status(Status(StatusCode.ERROR, record.error))
        span.end(end_time=_ns(max(record.end, record.start)))

    def flush(self, timeout_s: float) -> bool:
        return self.provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        self.provider.shutdown()


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


_current: Pipeline | None = None
_guard = threading.Lock()


def pipeline(key: tuple) -> Pipeline:
    """The process's pipeline for configuration ``key`` (a changed configuration: a new one,
    the old one flushed and shut down)."""
    global _current
    with _guard:
        if _current is None or _current.key != key:
            old, _current = _current, Pipeline(key)
            if old is not None:
                old.shutdown()
        return _current


def current() -> Any:
    return _current
