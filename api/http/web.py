"""The read-only web view: server-rendered pages over ``agentform.Engine`` (Jinja2, autoescaped).

Pages (CONTRACT §8 "Faces"): ``/`` resources with their Ready conditions (and apps' last sync
when the engine tracks apps), ``/runs``, ``/runs/{id}``, ``/graph/{kind}/{namespace}/{name}``,
``/revisions``, and ``GET /login`` (the form posts the token to the app's ``POST /login``, which
sets the session cookie). The run page renders the stream so far with each event's seq, then
static/run.js follows ``/api/v1/runs/{id}/events?after=<last seq>`` with EventSource and
drops any seq it has shown already, so a reload mid-run neither loses nor repeats an event.

Every page is a GET that reads through Engine; the only write (answering an approval) is a
fetch from run.js to the JSON API, which checks the session's scope itself. Responses carry
a strict Content-Security-Policy: scripts and styles only from /static, no inline code.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

import agentform
from agentform.api.http import auth
from agentform.api.http.problems import Problem

__all__ = ["router"]

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
# Bounds: what one page reads and renders (a run's stream can be very long).
MAX_RENDERED_EVENTS = 5000
EVENT_BATCH = 500
MAX_TEXT = 4000
MAX_OUTPUT = 200_000   # characters of a run's output on its page (the API has all of it)
PAGE_SIZE = 50

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
TERMINAL = ("run.completed", "run.failed", "run.cancelled")
_ONE_LINE = re.compile(r"\n *")
GRAPH_KINDS = {"team": "Team", "pipeline": "Pipeline", "agent": "Agent"}

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(HERE / "templates"))   # autoescape on for .html


def _engine(request: Request) -> Any:
    return request.app.state.engine


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    who = getattr(request.state, "principal", None)
    session = None if who is None else {"scopes": sorted(who.scopes), "namespace": who.namespace}
    context = {"session": session, "nav": name.split(".")[0], **context}
    return templates.TemplateResponse(request, name, context, status_code=status, headers=SECURITY_HEADERS)


def _viewer(request: Request) -> auth.Principal | None | Response:
    """Who is looking (None: anonymous, allowed without ``serve --auth``), or the redirect to the
    login page when this server needs a ``read`` token and the browser has no session with one."""
    try:
        who = auth.principal(request)
    except Problem:   # a session whose token was revoked: as good as none
        request.state.principal = who = None
    if request.app.state.settings.auth and (who is None or not who.allows("read")):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303, headers=SECURITY_HEADERS)
    return who


def _namespace(who: auth.Principal | None) -> str | None:
    """The namespace a listing covers: a namespaced token's own, else all."""
    return None if who is None else who.namespace


# -- static files: a fixed set, no directory walking -------------------------------------------

_STATIC_FILES = {p.name: p for p in STATIC.iterdir() if p.suffix in STATIC_TYPES} if STATIC.is_dir() else {}


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    path = _STATIC_FILES.get(name)
    if path is None:
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix],
                        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})


# -- login ---------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = Query("/", max_length=2000), error: str | None = None) -> Response:
    # Only a local path may follow a login: never an open redirect.
    safe_next = next if next.startswith("/") and not next.startswith("//") else "/"
    return _page(request, "login.html", {"next": safe_next, "error": bool(error)})


# -- resources -----------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def resources_page(request: Request) -> Response:
    who = _viewer(request)
    if isinstance(who, Response):
        return who
    engine = _engine(request)
    resources = [engine.redact(r.to_dict()) for r in engine.resources(None, namespace=_namespace(who))]
    apps = None
    if _namespace(who) is None:   # an app spans namespaces: not for a namespaced token
        apps = [engine.redact(a.to_dict()) for a in engine.apps()]
        for item in apps:
            item["synced"] = _when(item.get("syncedAt"))
            if item.get("lastError"):
                item["lastError"]["when"] = _when(item["lastError"].get("at"))
    kinds: dict[str, list[dict[str, Any]]] = {}
    for item in resources:
        item["ready"] = _ready(item)
        kinds.setdefault(item.get("kind", "?"), []).append(item)
    return _page(request, "resources.html", {"kinds": kinds, "apps": apps,
                                             "graph_kinds": set(GRAPH_KINDS.values())})


def _ready(item: dict[str, Any]) -> dict[str, Any]:
    for condition in item.get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition
    return {"type": "Ready", "status": "Unknown", "reason": "", "message": ""}


# -- runs ----------------------------------------------------------------------------------------

RUN_STATUSES = ("queued", "running", "waiting", "succeeded", "failed", "cancelled")


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, status: str | None = Query(None, max_length=20),
              target: str | None = Query(None, max_length=300),
              cursor: str | None = Query(None, max_length=200)) -> Response:
    who = _viewer(request)
    if isinstance(who, Response):
        return who
    status = status or None
    target = (target or "").strip() or None
    engine = _engine(request)
    try:
        page = engine.runs(status=status, target=target, namespace=_namespace(who), limit=PAGE_SIZE, cursor=cursor)
    except agentform.AgentformError as exc:   # a target that is no target, a stale cursor
        return _page(request, "error.html", {"title": "Cannot list these runs", "message": str(exc)}, status=400)
    runs = [_run_row(engine.redact(r.to_dict())) for r in page.items]
    return _page(request, "runs.html", {"runs": runs, "next_cursor": page.next_cursor,
                                        "status": status or "", "target": target or "",
                                        "statuses": RUN_STATUSES})


def _run_row(row: dict[str, Any]) -> dict[str, Any]:
    """A run (RunInfo or RunRecord as a dict) with its times for people."""
    created, finished = row.get("created_at"), row.get("finished_at")
    started = row.get("started_at") or created
    row["created"] = _when(created)
    seconds = row.get("duration_s")
    if seconds is None and started:
        seconds = (finished or time.time()) - started
    row["duration"] = "" if seconds is None else _duration(seconds)
    row["state"] = str(row.get("status", "")).split(" ")[0]   # "failed (owner died)" -> failed
    return row


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + " UTC" if ts else ""


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@dataclass
class RunView:
    """What the run page renders: the record, the tail of the stream, and the totals of the
    events before that tail (so the live counters start from the whole run)."""

    run: dict[str, Any]
    events: list[dict[str, Any]]
    first_seq: int = 1
    last_seq: int = 0
    hidden: dict[str, float] = field(default_factory=lambda: {"tin": 0, "tout": 0, "cost": 0.0})
    totals: dict[str, float] = field(default_factory=lambda: {"tin": 0, "tout": 0, "cost": 0.0})
    waiting: list[dict[str, Any]] = field(default_factory=list)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> Response:
    who = _viewer(request)
    if isinstance(who, Response):
        return who
    engine = _engine(request)
    try:
        record = engine.get_run(run_id)
    except agentform.NotFound as exc:
        return _page(request, "error.html", {"title": "No such run", "message": str(exc)}, status=404)
    if not auth.visible(who, auth.target_namespace(record.target)):
        return _page(request, "error.html", {"title": "No such run", "message": f"run {run_id} not found"},
                     status=404)
    view = _read_run(engine, record)
    return _page(request, "run.html", {
        "view": view, "run": view.run, "can_approve": who is not None and who.allows("approve"),
        "last_seq": view.last_seq,
    })


def _read_run(engine: Any, record: Any) -> RunView:
    run = _run_row(engine.redact(dict(vars(record))))
    output = run.get("output")
    text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False, indent=2)
    run["output_text"] = text if len(text) <= MAX_OUTPUT else \
        f"{text[:MAX_OUTPUT]}\n… ({len(text) - MAX_OUTPUT} more characters: GET /api/v1/runs/{record.id})"
    tail: deque[dict[str, Any]] = deque(maxlen=MAX_RENDERED_EVENTS)
    hidden = {"tin": 0, "tout": 0, "cost": 0.0}
    requests: dict[str, dict[str, Any]] = {}
    after = 0
    while True:
        batch = engine.event_page(record.id, after=after, limit=EVENT_BATCH)
        for event in batch:
            row = _event_row(engine.redact(event.to_dict()))
            if len(tail) == tail.maxlen:
                dropped = tail[0]
                hidden["tin"] += dropped.get("tin", 0)
                hidden["tout"] += dropped.get("tout", 0)
                hidden["cost"] += dropped.get("cost", 0.0)
            tail.append(row)
            _track_approvals(requests, row)
            after = row["seq"]
        if len(batch) < EVENT_BATCH:
            break
    events = list(tail)
    _mark_spent_deltas(events)
    totals = {key: hidden[key] + sum(row.get(key, 0) for row in events) for key in hidden}
    return RunView(run=run, events=_fold_spent(events), first_seq=events[0]["seq"] if events else 1,
                   last_seq=after, hidden=hidden, totals=totals, waiting=list(requests.values()))


def _track_approvals(requests: dict[str, dict[str, Any]], row: dict[str, Any]) -> None:
    """Approvals asked and not yet answered: a resolution, the stage's end or the run's end clears one."""
    kind = row["type"]
    if kind == "approval.requested":
        requests[row["path"]] = {"path": row["path"], "stage": row["data"].get("stage") or row["path"],
                                 "message": row["data"].get("message") or "",
                                 "expires": row["data"].get("expiresAt") or ""}
    elif kind in ("approval.resolved", "stage.completed", "stage.failed", "stage.skipped"):
        requests.pop(row["path"], None)
    elif kind in TERMINAL:
        requests.clear()


def _mark_spent_deltas(events: list[dict[str, Any]]) -> None:
    """A streamed chunk is shown until its message completes; then the message stands for it."""
    completed: set[str] = set()
    for row in reversed(events):
        if row["type"] == "message.completed":
            completed.add(row["path"])
        elif row["type"] == "message.delta" and row["path"] in completed:
            row["spent"] = True
        elif row["type"] == "agent.started":
            completed.discard(row["path"])


def _fold_spent(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive spent chunks as one hidden row naming their seqs (``data-seqs="a-b"``): a long
    streamed reply is thousands of chunks the page would only hide."""
    out: list[dict[str, Any]] = []
    for row in events:
        previous = out[-1] if out else None
        if row.get("spent") and previous is not None and previous.get("spent") \
                and previous.get("last", previous["seq"]) + 1 == row["seq"]:
            previous["last"] = row["seq"]
            previous["path"] = previous["path"] if previous["path"] == row["path"] else ""
            previous["text"] = ""
        else:
            out.append(row)
    return out


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    """One event (``Event.to_dict()``, redacted) as the page shows it; run.js's ``render`` draws
    the same row for live events."""
    data = event["data"] if isinstance(event.get("data"), dict) else {}
    kind = event["type"]
    row: dict[str, Any] = {"seq": event["seq"], "type": kind, "path": event["path"], "data": data,
                           "time": time.strftime("%H:%M:%S", time.gmtime(event["ts"])),
                           "text": summary(kind, data), "error": _is_error(kind, data)}
    if kind == "usage":
        row["tin"] = _int(data.get("tokens_in"))
        row["tout"] = _int(data.get("tokens_out"))
        row["cost"] = _float(data.get("cost_usd"))
    return row


def _is_error(kind: str, data: dict[str, Any]) -> bool:
    return kind.endswith(".failed") or kind == "budget.exceeded" or (kind == "tool.result" and "error" in data)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0


def _text(value: Any) -> str:
    if value is None:
        return ""
    # One line of JSON as run.js writes it: JSON.stringify(v, null, 1) with the breaks folded.
    text = value if isinstance(value, str) else _ONE_LINE.sub(" ", json.dumps(value, ensure_ascii=False, indent=1))
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def summary(kind: str, data: dict[str, Any]) -> str:
    """The one-line text of an event (kept in step with ``summary`` in static/run.js)."""
    if kind == "message.delta":
        return _text(data.get("text"))
    if kind == "message.completed":
        calls = ", ".join(str(c.get("name")) for c in data.get("tool_calls") or () if isinstance(c, dict))
        content = _text(data.get("content"))
        return f"{content} → calls {calls}" if calls and content else (f"calls {calls}" if calls else content)
    if kind == "tool.call":
        return _text(f"{data.get('name')}({_text(data.get('arguments') or {})})")
    if kind == "tool.result":
        if "error" in data:
            return _text(f"{data.get('name')} failed: {_text(data.get('error'))}")
        return _text(f"{data.get('name')} → {_text(data.get('output'))}")
    if kind == "handoff":
        said = data.get("reason") or data.get("summary") or ""
        return _text(f"{data.get('from')} → {data.get('to')}" + (f": {_text(said)}" if said else ""))
    if kind == "usage":
        return (f"{data.get('model')}: {_int(data.get('tokens_in'))} in, {_int(data.get('tokens_out'))} out, "
                f"${_float(data.get('cost_usd')):.6f}")
    if kind == "approval.requested":
        return _text(data.get("message") or f"approve stage {data.get('stage')}?")
    if kind == "approval.resolved":
        verdict = "approved" if data.get("approved") else "rejected"
        said = f": {_text(data.get('message'))}" if data.get("message") else ""
        return _text(f"{verdict} by {data.get('by')}{said}")
    for key in ("error", "reason", "output", "task", "input"):
        if data.get(key) not in (None, ""):
            return _text(data.get(key))
    if kind == "run.started":
        return _text(data.get("target"))
    return ""


# -- graphs --------------------------------------------------------------------------------------


@router.get("/graph/{kind}/{namespace}/{name}", response_class=HTMLResponse)
def graph_page(request: Request, kind: str, namespace: str, name: str,
               revision: int | None = Query(None, ge=1)) -> Response:
    who = _viewer(request)
    if isinstance(who, Response):
        return who
    from agentform.specs import ResourceKey

    canonical = GRAPH_KINDS.get(kind.lower().rstrip("s"))
    if canonical is None:
        return _page(request, "error.html", {"title": "No graph", "message": (
            f"{kind!r} has no graph: teams, pipelines and agents do (e.g. /graph/team/default/NAME)")},
            status=404)
    key = ResourceKey(canonical, namespace, name)
    engine = _engine(request)
    mermaid = engine.graph_mermaid(key, revision) if auth.visible(who, namespace) else None
    mermaid = None if mermaid is None else engine.redact(mermaid)
    if mermaid is None:
        return _page(request, "error.html", {"title": "No graph", "message": (
            f"{canonical} {namespace}/{name} is not applied" + (f" at revision {revision}" if revision else ""))},
            status=404)
    layout = engine.graph_layout(key, revision)   # drawn from the same text: labels redacted below
    return _page(request, "graph.html", {"key": key, "kind": canonical, "mermaid": mermaid,
                                         "layout": engine.redact(layout.to_dict()) if layout is not None else None,
                                         "revision": revision})


# -- revisions -----------------------------------------------------------------------------------


@router.get("/revisions", response_class=HTMLResponse)
def revisions_page(request: Request, app: str | None = Query(None, max_length=200),
                   from_revision: int | None = Query(None, alias="from", ge=0, le=2**31),
                   to_revision: int | None = Query(None, alias="to", ge=1, le=2**31)) -> Response:
    """Revisions newest first, each with the changes it applied; ``?from=A&to=B`` adds the net
    change from A (exclusive) to B (inclusive)."""
    who = _viewer(request)
    if isinstance(who, Response):
        return who
    engine = _engine(request)
    namespace = _namespace(who)
    app = app or None
    revisions = [engine.redact(r.to_dict()) for r in engine.revisions(app=app, limit=PAGE_SIZE)]
    for revision in revisions:
        revision["created"] = _when(revision.get("createdAt"))
        revision["changes"] = _visible_changes(revision.get("changes") or [], namespace)
    compare = None
    if to_revision is not None:
        start = to_revision - 1 if from_revision is None else from_revision
        try:
            compare = engine.redact(engine.revision_diff(app, start, to_revision).to_dict())
        except agentform.AgentformError as exc:
            return _page(request, "error.html", {"title": "No such diff", "message": str(exc)}, status=404)
        compare["changes"] = _visible_changes(compare.get("changes") or [], namespace)
    return _page(request, "revisions.html", {"revisions": revisions, "app": app or "", "compare": compare,
                                             "from": from_revision if from_revision is not None else "",
                                             "to": to_revision or ""})


def _visible_changes(changes: list[dict[str, Any]], namespace: str | None) -> list[dict[str, Any]]:
    """A namespaced token sees the changes in its own namespace only."""
    return changes if namespace is None else [c for c in changes if c.get("namespace") == namespace]
