"""The writes: start a run, cancel one, answer an approval. Each needs a token with its scope
(``run``, ``run``, ``approve``), is rate-limited per token (429 with Retry-After) and is
recorded in the audit log with its outcome, refused or not (token id, action, target, time,
source address, HTTP status).

Where a run executes: ``Engine.start`` queues it for the workers on PostgreSQL (``serve``
runs an embedded worker unless ``--no-worker``) and executes it in this process on SQLite.
An approval continues the run in this process, as ``agentform approve`` does; the answer
comes once the engine has taken the run over (or refused), not when the run ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

import agentform

from . import models
from .auth import Principal, target_namespace, writer
from .problems import Problem, from_engine_error, responses
from .routes_read import engine_of, run_model, visible_run

router = APIRouter(prefix="/api/v1", tags=["write"], responses=responses(400, 401, 403, 404, 409, 413, 422, 429))
APPROVAL_ANSWER_S = 30.0   # how long an approval request waits for the takeover before answering 202 anyway


def _source(request: Request) -> str:
    return request.client.host if request.client else ""


async def _audited(request: Request, scope: str, action: str, target: str,
                   act: Callable[[Principal], Awaitable[Any]]) -> Any:
    """Check the token and its rate, act, and record the attempt whatever its outcome."""
    engine = engine_of(request)
    who: Principal | None = None
    status, detail = 500, ""
    try:
        who = writer(request, scope)
        wait = request.app.state.limiter.take(who.token_id)
        if wait is not None:
            raise Problem(429, f"token {who.token_id} wrote more than {request.app.state.settings.rate_limit} "
                               f"times in a minute; retry in {wait} s", retry_after=wait, slug="rate-limited")
        result = await act(who)
        status = 202 if action != "run.cancel" else 200
        return result
    except Problem as exc:
        status, detail = exc.status, exc.detail
        raise
    except agentform.AgentformError as exc:
        problem = from_engine_error(exc)
        status, detail = problem.status, problem.detail
        raise problem from exc
    finally:
        await asyncio.to_thread(engine.audit_record, token_id=who.token_id if who else None, action=action,
                                target=target, source=_source(request), status=status, detail=detail)


@router.post("/runs", response_model=models.Run, status_code=202, summary="Start a run (`run` scope)")
async def start_run(request: Request, body: models.StartRun) -> models.Run:
    async def act(who: Principal) -> models.Run:
        namespace = target_namespace(body.target)
        if not who.sees(namespace):
            raise Problem(403, f"token {who.token_id} is limited to namespace {who.namespace!r}",
                          slug="other-namespace")
        record = await engine_of(request).start(body.target, input=body.input, params=dict(body.params) or None,
                                                thread=body.thread)
        return run_model(record)

    return await _audited(request, "run", "run.start", body.target, act)


@router.post("/runs/{run_id}/cancel", response_model=models.Run, summary="Cancel a run (`run` scope)")
async def cancel_run(request: Request, run_id: Annotated[str, Path(max_length=100)]) -> models.Run:
    async def act(who: Principal) -> models.Run:
        record = await visible_run(request, who, run_id)
        cancelled, _ = await asyncio.to_thread(engine_of(request).cancel, record.id)
        return run_model(cancelled)

    return await _audited(request, "run", "run.cancel", run_id, act)


@router.post("/runs/{run_id}/approval", response_model=models.Accepted, status_code=202,
             summary="Approve or reject a waiting approval (`approve` scope)")
async def answer_approval(request: Request, body: models.Approval,
                          run_id: Annotated[str, Path(max_length=100)]) -> models.Accepted:
    async def act(who: Principal) -> models.Accepted:
        engine = engine_of(request)
        record = await visible_run(request, who, run_id)
        if record.status != "waiting":
            raise Problem(409, f"run {record.id} is not waiting for an approval (it is {record.status})",
                          slug="not-waiting")
        if body.stage is None:   # an answer must not land on an approval its author did not see
            pending = await asyncio.to_thread(engine.pending_approvals, record.id)
            if len(pending) > 1:
                stages = ", ".join(sorted(str(e.data.get("stage") or e.path) for e in pending))
                raise Problem(409, f"run {record.id} waits for {len(pending)} approvals ({stages}): name one "
                                   "with 'stage'", slug="several-approvals")
        moved = asyncio.Event()
        task = asyncio.get_running_loop().create_task(engine.approve(
            record.id, approve=body.decision == "approve", by=f"token:{who.token_id}" + (f" ({who.name})" if who.name else ""),
            message=body.message, stage=body.stage, on_event=lambda _e: moved.set()))
        request.app.state.tasks.add(task)
        task.add_done_callback(request.app.state.tasks.discard)
        waiter = asyncio.ensure_future(moved.wait())
        await asyncio.wait({task, waiter}, timeout=APPROVAL_ANSWER_S, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done() and task.exception() is not None:
            raise task.exception()
        now = await asyncio.to_thread(engine.get_run, record.id)
        verb = "approved" if body.decision == "approve" else "rejected"
        return models.Accepted(run=run_model(now), detail=f"{verb}; the run continues on this server")

    return await _audited(request, "approve", "run.approve", run_id, act)
