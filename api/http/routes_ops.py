"""For operators, without a token: ``/metrics`` (Prometheus text), ``/healthz`` (the process
answers) and ``/readyz`` (the store answers a query; 503 otherwise)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from . import models
from .problems import Problem, responses

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics, derived from the store",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **responses(503)})
async def metrics(request: Request) -> PlainTextResponse:
    engine = request.app.state.engine
    text = await asyncio.to_thread(engine.metrics)
    return PlainTextResponse(engine.redact(text), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/healthz", response_model=models.Health, summary="The process answers")
async def healthz() -> models.Health:
    return models.Health(status="ok")


@router.get("/readyz", response_model=models.Health, responses=responses(503), summary="The store answers")
async def readyz(request: Request) -> models.Health:
    try:
        await asyncio.to_thread(request.app.state.engine.ping_store)
    except Exception as exc:
        raise Problem(503, f"the state store does not answer: {exc}", slug="store-unavailable") from exc
    return models.Health(status="ok")
