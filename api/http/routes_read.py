"""Read-only JSON under ``/api/v1``: resources with conditions, revisions and their diffs, runs,
threads and the engine's public key. Every route reads through ``agentform.Engine``.

A namespaced token sees only its namespace: listings are narrowed to it, and a run or
resource of another namespace answers 404, as if it did not exist.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from agentform.specs import KINDS

from . import models
from .auth import Principal, reader, scope_namespace, target_namespace, visible
from .problems import Problem, responses

router = APIRouter(prefix="/api/v1", tags=["read"], responses=responses(401, 403, 422))
Reader = Annotated[Principal | None, Depends(reader)]
MAX_LIMIT = 500
KIND = "^(" + "|".join(f"{k}|{k.lower()}" for k in KINDS) + ")(s|es)?$"   # agent, agents, Agent
LABELS = r"^[^=,]{1,100}=[^,]{0,100}(,[^=,]{1,100}=[^,]{0,100}){0,19}$"
NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# The engine's duration grammar (h, m, s, ms, each once, in that order), or whole days.
SINCE = (r"^(([0-9]{1,9}(\.[0-9]{1,6})?h)?([0-9]{1,9}(\.[0-9]{1,6})?m)?([0-9]{1,9}(\.[0-9]{1,6})?s)?([0-9]{1,9}ms)?"
         r"|[0-9]{1,6}d)$")


def engine_of(request: Request) -> Any:
    return request.app.state.engine


def as_dict(item: Any) -> dict[str, Any]:
    return item.to_dict() if hasattr(item, "to_dict") else dict(item)


def run_model(record: Any) -> models.Run:
    """A run in full, from the engine's RunRecord."""
    return models.Run.of(record)


def _labels(selector: str | None) -> dict[str, str] | None:
    if not selector:
        return None
    labels = {}
    for part in selector.split(","):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise Problem(422, f"labels {selector!r}: use key=value[,key=value]", slug="invalid-request")
        labels[key.strip()] = value.strip()
    return labels


async def visible_run(request: Request, who: Principal | None, run_id: str) -> Any:
    """The run's record, or 404 when it does not exist or the token may not see its namespace."""
    record = await asyncio.to_thread(engine_of(request).get_run, run_id)
    if not visible(who, target_namespace(record.target)):
        raise Problem(404, f"run {run_id!r} does not exist")
    return record


@router.get("/resources", response_model=list[models.Resource], summary="Resources with their conditions")
async def list_resources(request: Request, who: Reader,
                         kind: Annotated[str | None, Query(max_length=40, pattern=KIND)] = None,
                         namespace: Annotated[str | None, Query(max_length=63, pattern=NAME)] = None,
                         all_namespaces: Annotated[bool, Query(alias="allNamespaces")] = False,
                         labels: Annotated[str | None, Query(max_length=4100, pattern=LABELS,
                                                             description="key=value[,key=value]")] = None,
                         ) -> list[dict[str, Any]]:
    if who is not None and who.namespace is not None:
        ns = scope_namespace(who, namespace)
    else:
        ns = None if all_namespaces and namespace is None else (namespace or "default")
    items = await asyncio.to_thread(engine_of(request).resources, kind, namespace=ns, labels=_labels(labels))
    return [as_dict(r) for r in items]


@router.get("/resources/{kind}/{namespace}/{name}", response_model=models.ResourceDetail,
            responses=responses(404), summary="One resource in detail (describe)")
async def get_resource(request: Request, who: Reader, kind: Annotated[str, Path(max_length=40, pattern=KIND)],
                       namespace: Annotated[str, Path(max_length=63, pattern=NAME)],
                       name: Annotated[str, Path(max_length=63, pattern=NAME)]) -> dict[str, Any]:
    if not visible(who, namespace):
        raise Problem(404, f"{kind}/{namespace}/{name} does not exist")
    return as_dict(await asyncio.to_thread(engine_of(request).resource, kind, name, namespace))


@router.get("/revisions", response_model=list[models.Revision], summary="Revisions, newest first")
async def list_revisions(request: Request, who: Reader, app: Annotated[str | None, Query(max_length=200)] = None,
                         limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50) -> list[dict[str, Any]]:
    return [as_dict(r) for r in await asyncio.to_thread(engine_of(request).revisions, app, limit)]


@router.get("/revisions/diff", response_model=models.RevisionDiff, responses=responses(404),
            summary="What changed between two revisions")
async def revision_diff(request: Request, who: Reader,
                        from_revision: Annotated[int, Query(alias="from", ge=0, le=2**31)],
                        to_revision: Annotated[int, Query(alias="to", ge=0, le=2**31)],
                        app: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    diff = await asyncio.to_thread(engine_of(request).revision_diff, app, from_revision, to_revision)
    return as_dict(diff)


@router.get("/runs", response_model=models.RunPage, summary="Runs, newest first, a page at a time")
async def list_runs(request: Request, who: Reader,
                    status: Annotated[str | None, Query(pattern="^(queued|running|waiting|succeeded|failed|cancelled)$")] = None,
                    target: Annotated[str | None, Query(max_length=300)] = None,
                    thread: Annotated[str | None, Query(max_length=200)] = None,
                    namespace: Annotated[str | None, Query(max_length=63)] = None,
                    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
                    cursor: Annotated[str | None, Query(max_length=200)] = None) -> models.RunPage:
    page = await asyncio.to_thread(engine_of(request).runs, status=status, target=target, thread=thread,
                                   namespace=scope_namespace(who, namespace), limit=limit, cursor=cursor)
    return models.RunPage.model_validate(page.to_dict())


@router.get("/runs/{run_id}", response_model=models.Run, responses=responses(404), summary="One run")
async def get_run(request: Request, who: Reader, run_id: Annotated[str, Path(max_length=100)]) -> models.Run:
    return run_model(await visible_run(request, who, run_id))


@router.get("/threads", response_model=list[models.Thread], summary="Conversation threads")
async def list_threads(request: Request, who: Reader,
                       limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50) -> list[dict[str, Any]]:
    engine = engine_of(request)
    items = await asyncio.to_thread(engine.threads, limit=limit, namespace=scope_namespace(who, None))
    return [as_dict(t) for t in items]


@router.get("/publickey", response_model=models.PublicKey, responses=responses(404),
            summary="The public key values are sealed for (`secret seal --public-key`)")
async def public_key(request: Request, who: Reader) -> models.PublicKey:
    try:
        key_id, pem = await asyncio.to_thread(engine_of(request).secret_public_key)
    except FileNotFoundError as exc:
        raise Problem(404, "this engine has no key pair yet: `agentform secret keygen` makes one") from exc
    return models.PublicKey(keyId=key_id, pem=pem)


@router.get("/cost", response_model=models.CostReport, summary="Tokens and USD from the streams' usage events")
async def cost(request: Request, who: Reader,
               by: Annotated[str, Query(pattern="^(model|agent|team|pipeline|target)$")] = "model",
               since: Annotated[str | None, Query(min_length=2, max_length=40, pattern=SINCE,
                                                  description="a duration back from now: 30m, 24h, 7d")] = None,
               ) -> dict[str, Any]:
    if who is not None and who.namespace is not None:
        raise Problem(403, f"token {who.token_id} is limited to namespace {who.namespace!r}; cost spans them all",
                      slug="other-namespace")
    return (await asyncio.to_thread(engine_of(request).cost, by, since)).to_dict()
