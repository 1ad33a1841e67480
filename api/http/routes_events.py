"""A run's events: JSON pages by seq, or Server-Sent Events with ``Accept: text/event-stream``.

SSE: each event is ``id: <seq>`` and ``data: <the event as JSON>`` (no ``event:`` name, so
``EventSource.onmessage`` gets them all). ``Last-Event-ID: N`` (a reconnecting EventSource
sends it) or ``?after=N`` starts at N+1; the stream then follows the run live, wherever it
executes (the engine's followers: one store reader per run in this process), stays open
through ``run.waiting``, sends a ``: ping`` comment when idle, and after the run's final
event sends ``event: end`` and closes. A reconnect to a stream that has ended answers 204,
which tells an EventSource to stop reconnecting.

Every event is encoded once per process (``Encoded``), not once per subscriber, and the
events that arrive together go to a client in one write.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response
from sse_starlette.sse import EventSourceResponse

from . import models
from .auth import Principal, reader
from .problems import Problem, responses
from .routes_read import engine_of, visible_run

router = APIRouter(prefix="/api/v1", tags=["events"], responses=responses(401, 403, 404, 422))
PAGE_MAX = 1000
FINISHED_STATUSES = ("succeeded", "failed", "cancelled")
TERMINAL = ("run.completed", "run.failed", "run.cancelled")


class Encoded:
    """SSE bytes of events by (run, seq), shared by every subscriber; bounded, oldest out first."""

    def __init__(self, engine: Any, size: int = 20_000):
        self._engine = engine
        self._size = size
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._last_key: tuple[str, int, int] | None = None
        self._last_chunk = b""

    def clear(self) -> None:
        self._cache.clear()
        self._last_key, self._last_chunk = None, b""

    def chunk(self, batch: list[Any]) -> bytes:
        """The SSE bytes of a batch: followers in step with the feed wake with the same slice,
        so the last joined chunk is kept and reused."""
        key = (batch[0].run_id, batch[0].seq, batch[-1].seq)
        if self._last_key == key:
            return self._last_chunk
        chunk = b"".join([self.of(e) for e in batch])
        self._last_key, self._last_chunk = key, chunk
        return chunk

    def of(self, event: Any) -> bytes:
        key = (event.run_id, event.seq)
        found = self._cache.get(key)
        if found is None:
            data = json.dumps(self._engine.redact(event.to_dict()), separators=(",", ":"), ensure_ascii=False)
            # JSON text holds no raw newline, so one data: line carries the whole event.
            found = f"id: {event.seq}\ndata: {data}\n\n".encode()
            self._cache[key] = found
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return found


def _cursor(after: int | None, last_event_id: str | None) -> int:
    if last_event_id is not None and last_event_id.strip():
        try:
            value = int(last_event_id.strip())
        except ValueError as exc:
            raise Problem(422, f"Last-Event-ID {last_event_id[:40]!r} is not a seq (an integer)",
                          slug="invalid-request") from exc
        if value < 0:
            raise Problem(422, "Last-Event-ID must be 0 or more", slug="invalid-request")
        return value
    return after or 0


@router.get(
    "/runs/{run_id}/events", response_model=models.EventPage, summary="A run's events (JSON pages, or SSE)",
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                     "description": "JSON page, or an SSE stream with Accept: text/event-stream"},
               204: {"description": "SSE: the stream already ended after Last-Event-ID"}},
)
async def run_events(request: Request, who: Annotated[Principal | None, Depends(reader)],
                     run_id: Annotated[str, Path(max_length=100)],
                     after: Annotated[int | None, Query(ge=0, le=2**62, description="events after this seq")] = None,
                     limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 500,
                     last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
                     accept: Annotated[str | None, Header(max_length=1000)] = None) -> Any:
    record = await visible_run(request, who, run_id)
    start = _cursor(after, last_event_id)
    engine = engine_of(request)
    if "text/event-stream" not in (accept or ""):
        events = await asyncio.to_thread(engine.event_page, record.id, start, limit)
        items = [models.Event(**engine.redact(e.to_dict())) for e in events]
        next_after = items[-1].seq if items else start
        return models.EventPage(items=items, nextAfter=next_after, more=next_after < record.last_seq)
    if record.status in FINISHED_STATUSES and record.finished_at is not None and start >= record.last_seq:
        return Response(status_code=204)
    encoded: Encoded = request.app.state.encoded
    ending = b"event: end\ndata: {}\n\n"

    async def stream() -> Any:
        async for batch in engine.event_batches(record.id, start):
            yield encoded.chunk(batch)
        yield ending

    return EventSourceResponse(stream(), ping=request.app.state.settings.ping_s,
                               headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
