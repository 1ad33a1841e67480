"""A run's span tree, derived from its event stream (no OpenTelemetry import: pure bookkeeping).

``RunTracer`` reads the events one run emits, in order, and hands finished spans
(``SpanRecord``) to a sink. The tree:

    run <target>                         one per run; ended by the segment that ends the run
      segment                            one per execution (start, each resume or takeover)
        stage <name> / invoke_agent <a>  by path: a stage or an agent inside the span of the
          chat <model>                   stage, agent or ask_/transfer_to_ tool call that
          execute_tool <name>              started it (a handed-over agent: the segment)

Every id is a function of the run id and the ``seq`` of the event that opened the span (the
trace id is the run id's 128 bits), so that a later segment, in another process, rebuilds the
same tree from the stream. A span still open when its segment ends (a stage waiting for an
approval, an agent cut by a kill) ends there (``agentform.span.continued``) and goes on as a
new span in the next segment, linked to the first part (``agentform.span.continues``): each
segment's spans lie within it. A segment whose process died, and the parts it cut, are
exported by the process that resumes after it (its own process never reached its end).

A model call has no start event: it starts at the previous event at its path (the agent's
start, or the last tool result of the previous turn) and ends at ``message.completed``; the
``usage`` event that follows adds its tokens and cost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agentform.engine.graph import ask_tool, transfer_tool
from agentform.engine.redaction import REDACTOR

# One attribute holding message content is cut at this many characters (a span stays bounded).
CONTENT_LIMIT = 16_384
OWNER_DIED = "owner died"   # engine/runtime/liveness.py's reason (not imported: the runtime stays out)

_CROCKFORD = {c: i for i, c in enumerate("0123456789abcdefghjkmnpqrstvwxyz")}
# Stream events that become span events (on the innermost open span), and the fields they keep
# (names, numbers and decisions: never message text).
_SPAN_EVENTS = ("handoff", "approval.requested", "approval.resolved", "budget.exceeded",
                "toolserver.started", "toolserver.ready", "workspace.waiting", "checkpoint")
_EVENT_FIELDS = frozenset({"from", "to", "stage", "budget", "holder", "limit", "used", "server", "restart",
                           "approved", "by", "timeout", "expiresAt", "workspace", "calls"})
MAX_SPAN_EVENTS = 128


def trace_id_of(run_id: str) -> int:
    """The trace id of a run: its ULID's 128 bits (any other id: the first 16 bytes of its SHA-256)."""
    if len(run_id) == 26 and all(c in _CROCKFORD for c in run_id.lower()):
        value = 0
        for c in run_id.lower():
            value = value * 32 + _CROCKFORD[c]
        if 0 < value < 1 << 128:
            return value
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:16], "big") or 1


def span_id_of(run_id: str, opener: int | str) -> int:
    """The span id of the span opened by event ``opener`` (a seq) of the run, or ``"run"``."""
    digest = hashlib.blake2b(f"{run_id}:{opener}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") or 1


@dataclass(slots=True)
class SpanRecord:
    """One finished span: times in seconds since the epoch; ``parent_id`` None for the run span."""

    name: str
    kind: str                    # run | segment | stage | agent | model | tool
    span_id: int
    parent_id: int | None
    start: float
    end: float = 0.0
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)
    error: str | None = None
    links: list[int] = field(default_factory=list)   # span ids in this trace (a continued part)
    path: str = ""
    order: int = 0               # the seq of the event that opened it (parents open before children)
    claimed: bool = False        # a tool call whose member agent found it as its parent


Sink = Callable[[SpanRecord], None]


class RunTracer:
    """The spans of one run, fed its events in order (``seed`` the stream's past, ``observe`` the live events)."""

    def __init__(self, run_id: str, sink: Sink, *, capture: bool = False):
        self.run_id = run_id
        self.trace_id = trace_id_of(run_id)
        self.run_span_id = span_id_of(run_id, "run")
        self.capture = capture
        self._sink = sink
        self._live = True
        self._run_start: float | None = None
        self._run_attrs: dict[str, Any] = {}
        self._segment: SpanRecord | None = None
        self._dead: list[SpanRecord] = []   # the past's last segment and the parts it cut, if its process died
        self._carried: list[SpanRecord] = []   # spans cut at the last segment's end, to go on in the next
        self._last_ts = 0.0                 # the last event of the current segment
        self._scopes: dict[str, SpanRecord] = {}              # open agents and stages, by path
        self._tools: dict[tuple[str, str], SpanRecord] = {}   # open tool calls, by (path, call id)
        self._models: dict[str, SpanRecord] = {}              # model calls ended, awaiting their usage
        self._at: dict[str, float] = {}                       # path -> time of its last event
        self._first_chunk: dict[str, float] = {}
        self._usage = [0, 0, 0.0]

    # -- feeding ------------------------------------------------------------------------------

    def seed(self, events: Iterable[Any]) -> None:
        """The stream's past (before this process took the run over): spans opened there stay
        open here; the segment before this one is exported when its process died."""
        self._live = False
        try:
            for event in events:
                self._feed(event)
        finally:
            self._live = True
        dead, self._dead = self._dead, []
        for span in dead:
            self._emit(span)

    def observe(self, event: Any) -> None:
        self._feed(event)

    def _feed(self, event: Any) -> None:
        kind, path, ts, data = event.type, event.path, event.ts, event.data or {}
        if kind == "message.delta":
            if self._live:
                self._first_chunk.setdefault(path, ts)
            return
        if kind != "usage" and path in self._models:
            self._emit(self._models.pop(path))
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event, path, ts, data)
        elif kind in _SPAN_EVENTS:
            self._note(kind, path, ts, data)
        self._at[path] = ts
        self._last_ts = ts

    # -- spans --------------------------------------------------------------------------------

    def _open(self, name: str, kind: str, seq: int, parent: int, ts: float, path: str,
              attributes: dict[str, Any]) -> SpanRecord:
        attributes["agentform.run.id"] = self.run_id
        if path:
            attributes["agentform.path"] = path
        return SpanRecord(name, kind, span_id_of(self.run_id, seq), parent, ts, attributes=attributes, path=path,
                          order=seq)

    def _emit(self, span: SpanRecord) -> None:
        if self._live:
            if REDACTOR.pattern is not None:   # event data is redacted already; names and errors too, to be sure
                span.attributes = REDACTOR.data(span.attributes)
                span.error = REDACTOR.text(span.error) if span.error else span.error
            self._sink(span)

    def _segment_id(self) -> int:
        return self._segment.span_id if self._segment is not None else self.run_span_id

    def _scope(self, path: str) -> SpanRecord | None:
        """The innermost open agent or stage at ``path`` or above it."""
        while True:
            scope = self._scopes.get(path)
            if scope is not None or not path:
                return scope
            path = _up(path)

    def _parent(self, path: str, *, own: bool = True) -> int:
        """The innermost open agent or stage at ``path`` (``own``) or above it; else the segment."""
        scope = self._scope(path if own else _up(path))
        return scope.span_id if scope is not None else self._segment_id()

    def _caller(self, path: str) -> SpanRecord | None:
        """The open ask_/transfer_to_ call at the parent path that started the member at ``path``."""
        if "/" not in path:
            return None
        above, _, member = path.rpartition("/")
        member = member.split("#", 1)[0]
        names = (ask_tool(member), transfer_tool(member))
        for (at, _), tool in self._tools.items():
            if at == above and not tool.claimed and tool.attributes.get("gen_ai.tool.name") in names:
                tool.claimed = True
                return tool
        return None

    def _note(self, kind: str, path: str, ts: float, data: dict[str, Any]) -> None:
        """A span event (a handoff, an approval...) on the innermost open span at or above ``path``."""
        target = self._scope(path) or self._segment
        if target is None or len(target.events) >= MAX_SPAN_EVENTS:
            return
        attrs = {f"agentform.{k}": _scalar(v) for k, v in data.items() if k in _EVENT_FIELDS}
        target.events.append((kind, ts, attrs))

    def _content(self, attrs: dict[str, Any], key: str, value: Any) -> None:
        if self.capture and value is not None:
            attrs[key] = _cut(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str))

    # -- the run and its segments -------------------------------------------------------------

    def _run_queued(self, event, path, ts, data) -> None:
        """``run.queued`` or ``run.started``: the run's start, target and input."""
        if self._run_start is None:
            self._run_start = ts
        self._run_attrs = {"agentform.run.target": data.get("target") or "",
                           "agentform.run.revision": data.get("revision") or 0}
        if data.get("thread"):
            self._run_attrs["gen_ai.conversation.id"] = str(data["thread"])
        if data.get("forkedFrom"):
            self._run_attrs["agentform.run.forked_from"] = str((data["forkedFrom"] or {}).get("run"))
        content = data.get("input") if data.get("input") is not None else data.get("params") or None
        self._content(self._run_attrs, "agentform.run.input", content)

    def _run_started(self, event, path, ts, data) -> None:
        self._run_queued(event, path, ts, data)
        self._begin_segment(event, ts, "start", data.get("owner"))
        if data.get("forkedFrom"):
            self._segment.attributes["agentform.segment.forked"] = True   # the fork's copied past

    def _run_resumed(self, event, path, ts, data) -> None:
        segment = self._segment
        if segment is not None and segment.attributes.get("agentform.segment.forked"):
            self._end_segment(self._last_ts, "forked")   # the origin's past, copied: its spans' parent
        elif segment is not None:   # taken over without an end of its own: its process is gone
            self._end_segment(self._last_ts, "taken over", died=True)
        self._begin_segment(event, ts, "resume", None, data.get("previousStatus"))

    def _begin_segment(self, event, ts: float, trigger: str, owner: Any, previous: Any = None) -> None:
        attrs: dict[str, Any] = {"agentform.segment.trigger": trigger, "agentform.segment.seq": event.seq}
        if owner:
            attrs["agentform.owner"] = str(owner)
        if previous:
            attrs["agentform.segment.previous_status"] = str(previous)
        self._segment = self._open("segment", "segment", event.seq, self.run_span_id, ts, "", attrs)
        self._at.clear()   # a model call of this segment starts in this segment at the earliest
        carried, self._carried = self._carried, []
        renamed: dict[int, int] = {}
        for part in carried:   # in opening order: a parent's continuation exists before its children's
            span = SpanRecord(part.name, part.kind, span_id_of(self.run_id, f"{event.seq}/{part.span_id:016x}"),
                              renamed.get(part.parent_id or 0, self._segment.span_id), ts,
                              attributes=dict(part.attributes), links=[part.span_id], path=part.path,
                              claimed=part.claimed, order=part.order)
            span.attributes.pop("agentform.span.continued", None)
            span.attributes["agentform.span.continues"] = f"{part.span_id:016x}"
            renamed[part.span_id] = span.span_id
            if part.kind == "tool":
                self._tools[(part.path, str(part.attributes.get("gen_ai.tool.call.id") or ""))] = span
            else:
                self._scopes[part.path] = span

    def _end_segment(self, ts: float, outcome: str, *, error: str | None = None, died: bool = False) -> None:
        """End the segment at ``ts``; the spans still open end there too and go on in the next."""
        segment, self._segment = self._segment, None
        if segment is None:
            return
        segment.end = max(ts, segment.start)
        segment.attributes["agentform.segment.outcome"] = outcome
        segment.error = error
        if died:
            segment.error = error or f"{OWNER_DIED}: the process executing this segment stopped"
        models = list(self._models.values())
        cut = sorted([*self._tools.values(), *self._scopes.values()], key=lambda span: span.order)
        self._models.clear()
        self._tools.clear()
        self._scopes.clear()
        for span in cut:
            span.end = max(segment.end, span.start)
            span.attributes["agentform.span.continued"] = True
        self._carried = cut
        parts = [*models, *cut]
        if died and not self._live:
            self._dead = [*parts, segment]   # exported by the process resuming after it
            return
        self._dead = []
        for span in [*parts, segment]:
            self._emit(span)

    def _run_ended(self, event, path, ts, data) -> None:
        kind = event.type
        if kind == "run.failed" and data.get("reason") == OWNER_DIED:
            # Written by whoever noticed the dead owner: that segment ended at its last sign of life.
            self._end_segment(self._last_ts, "owner died", error=str(data.get("error") or OWNER_DIED), died=True)
            return
        error = None
        if kind == "run.failed":
            error = str(data.get("error") or "failed")
        elif kind == "run.cancelled":
            error = f"cancelled: {data.get('reason') or 'cancelled'}"
        outcome = kind.split(".", 1)[1]
        if kind == "run.waiting":
            self._end_segment(ts, outcome)   # what is open goes on in the next segment
            return
        for model in self._models.values():
            self._emit(model)
        self._models.clear()
        for span in [*self._tools.values(), *self._scopes.values()]:
            span.end = ts
            span.error = span.error or f"unfinished when the run {outcome}"
            self._emit(span)
        self._tools.clear()
        self._scopes.clear()
        self._carried = []
        self._end_segment(ts, outcome, error=error)
        attrs = dict(self._run_attrs)
        attrs.update({"agentform.run.id": self.run_id, "agentform.run.status": outcome,
                      "gen_ai.usage.input_tokens": self._usage[0], "gen_ai.usage.output_tokens": self._usage[1],
                      "agentform.cost_usd": round(self._usage[2], 10)})
        self._content(attrs, "agentform.run.output", data.get("output"))
        target = attrs.get("agentform.run.target") or "run"
        start = self._run_start if self._run_start is not None else ts
        self._emit(SpanRecord(f"run {target}", "run", self.run_span_id, None, start, ts, attrs, error=error))

    # -- stages and agents --------------------------------------------------------------------

    def _stage_started(self, event, path, ts, data) -> None:
        attrs = {"agentform.stage.name": data.get("stage") or "", "agentform.stage.kind": data.get("kind") or "",
                 "agentform.stage.visit": data.get("visit") or 1}
        if "items" in data:
            attrs["agentform.stage.items"] = data["items"]
        self._content(attrs, "agentform.stage.input", data.get("input"))
        self._scopes[path] = self._open(f"stage {data.get('stage') or path}", "stage", event.seq,
                                        self._parent(path, own=False), ts, path, attrs)

    def _stage_ended(self, event, path, ts, data) -> None:
        span = self._scopes.pop(path, None)
        if span is None:   # skipped (never started), or started before a past this tracer has not seen
            span = self._open(f"stage {data.get('stage') or path}", "stage", event.seq,
                              self._parent(path, own=False), ts, path, {"agentform.stage.name": data.get("stage") or ""})
        span.end = ts
        if event.type == "stage.skipped":
            span.attributes["agentform.stage.skipped"] = str(data.get("reason") or "skipped")
        elif event.type == "stage.failed":
            span.error = str(data.get("error") or "failed")
        else:
            if data.get("goto"):
                span.attributes["agentform.stage.goto"] = str(data["goto"])
            self._content(span.attributes, "agentform.stage.output", data.get("output"))
        self._emit(span)

    def _agent_started(self, event, path, ts, data) -> None:
        name = data.get("agent") or path.rsplit("/", 1)[-1]
        caller = self._caller(path)
        parent = caller.span_id if caller is not None else self._parent(path, own=False)
        attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
        if self.capture and data.get("task") is not None:
            self._content(attrs, "gen_ai.input.messages", _messages("user", data["task"]))
        self._scopes[path] = self._open(f"invoke_agent {name}", "agent", event.seq, parent, ts, path, attrs)

    def _agent_ended(self, event, path, ts, data) -> None:
        span = self._scopes.pop(path, None)
        if span is None:
            return   # started and ended in a past this tracer has not seen
        span.end = ts
        if event.type == "agent.failed":
            span.error = str(data.get("error") or "failed")
        elif self.capture:
            self._content(span.attributes, "gen_ai.output.messages", _messages("assistant", data.get("output")))
        self._emit(span)

    # -- model and tool calls -----------------------------------------------------------------

    def _model_reply(self, event, path, ts, data) -> None:
        start = self._at.get(path)
        if start is None:
            start = self._segment.start if self._segment is not None else ts
        model = str(data.get("model") or "")
        attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                                 "gen_ai.response.model": model,
                                 "gen_ai.response.finish_reasons": ("tool_calls",) if data.get("tool_calls") else ("stop",)}
        if "/" in model:
            attrs["gen_ai.provider.name"] = model.split("/", 1)[0]
        if data.get("agent"):
            attrs["gen_ai.agent.name"] = str(data["agent"])
        first = self._first_chunk.pop(path, None)
        if first is not None and first >= start:
            attrs["gen_ai.response.time_to_first_chunk"] = round(first - start, 6)
        if self.capture:
            parts: list[dict[str, Any]] = []
            if data.get("content") is not None:
                parts.append({"type": "text", "content": data["content"]})
            for call in data.get("tool_calls") or ():
                parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"),
                              "arguments": call.get("arguments")})
            self._content(attrs, "gen_ai.output.messages", [{"role": "assistant", "parts": parts}])
        span = self._open(f"chat {model}".strip(), "model", event.seq, self._parent(path), start, path, attrs)
        span.end = ts
        self._models[path] = span

    def _usage_seen(self, event, path, ts, data) -> None:
        tokens_in, tokens_out = int(data.get("tokens_in") or 0), int(data.get("tokens_out") or 0)
        cost = float(data.get("cost_usd") or 0.0)
        self._usage[0] += tokens_in
        self._usage[1] += tokens_out
        self._usage[2] += cost
        span = self._models.pop(path, None)
        if span is not None:
            span.attributes.update({"gen_ai.usage.input_tokens": tokens_in, "gen_ai.usage.output_tokens": tokens_out,
                                    "agentform.cost_usd": cost})
            self._emit(span)

    def _tool_call(self, event, path, ts, data) -> None:
        call_id = str(data.get("id") or "")
        earlier = self._tools.pop((path, call_id), None)
        if earlier is not None:   # called again after a resume: the first call's outcome is unknown
            earlier.end = max(ts, earlier.start)
            earlier.error = "interrupted: called again after the run was resumed"
            self._emit(earlier)
        name = str(data.get("name") or "")
        attrs: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                                 "gen_ai.tool.call.id": call_id,
                                 "gen_ai.tool.type": "function" if data.get("idempotencyKey") else "extension"}
        for key, attr in (("server", "agentform.tool.server"), ("idempotencyKey", "agentform.tool.idempotency_key")):
            if data.get(key):
                attrs[attr] = str(data[key])
        if data.get("retried"):
            attrs["agentform.tool.retried"] = True
        self._content(attrs, "gen_ai.tool.call.arguments", data.get("arguments"))
        self._tools[(path, call_id)] = self._open(f"execute_tool {name}", "tool", event.seq, self._parent(path),
                                                  ts, path, attrs)

    def _tool_result(self, event, path, ts, data) -> None:
        span = self._tools.pop((path, str(data.get("id") or "")), None)
        if span is None:
            return
        span.end = ts
        if "error" in data:
            span.error = str(data["error"])
        else:
            self._content(span.attributes, "gen_ai.tool.call.result", data.get("output"))
        self._emit(span)


_HANDLERS: dict[str, Callable[..., None]] = {
    "run.queued": RunTracer._run_queued, "run.started": RunTracer._run_started, "run.resumed": RunTracer._run_resumed,
    "run.completed": RunTracer._run_ended, "run.failed": RunTracer._run_ended,
    "run.cancelled": RunTracer._run_ended, "run.waiting": RunTracer._run_ended,
    "stage.started": RunTracer._stage_started, "stage.completed": RunTracer._stage_ended,
    "stage.failed": RunTracer._stage_ended, "stage.skipped": RunTracer._stage_ended,
    "agent.started": RunTracer._agent_started, "agent.completed": RunTracer._agent_ended,
    "agent.failed": RunTracer._agent_ended, "message.completed": RunTracer._model_reply,
    "usage": RunTracer._usage_seen, "tool.call": RunTracer._tool_call, "tool.result": RunTracer._tool_result,
}


def _up(path: str) -> str:
    """The enclosing path: ``a/b[2]`` -> ``a/b`` (a forEach item is inside its stage), ``a/b`` -> ``a``."""
    if path.endswith("]") and "[" in path:
        return path[:path.rindex("[")]
    return path.rpartition("/")[0]


def _cut(text: str) -> str:
    return text if len(text) <= CONTENT_LIMIT else text[:CONTENT_LIMIT] + "…[truncated]"


def _messages(role: str, content: Any) -> list[dict[str, Any]]:
    return [{"role": role, "parts": [{"type": "text", "content": content}]}]


def _scalar(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
