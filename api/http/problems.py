"""Errors as RFC 9457 problem details (``application/problem+json``), for every error the API returns.

``Problem`` is the exception routes raise; the handlers installed by ``install`` turn it,
the engine's error types, FastAPI's request validation and Starlette's HTTP errors into
``{type, title, status, detail, instance}`` (plus ``errors`` for a 422 body, ``retryAfter``
for a 429). No handler prints a traceback into a response; details pass the redactor.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

import agentform

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://agentform.dev/problems/"
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 413: "Content too large",
          422: "Unprocessable content", 429: "Too many requests", 500: "Internal server error",
          503: "Service unavailable"}
log = logging.getLogger("agentform.serve")


class ProblemModel(BaseModel):
    """The body of every error (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str = ""
    instance: str = ""
    errors: list[dict[str, Any]] | None = None
    retryAfter: int | None = None


class Problem(Exception):
    def __init__(self, status: int, detail: str, *, slug: str | None = None, headers: dict[str, str] | None = None,
                 errors: list[dict[str, Any]] | None = None, retry_after: int | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, dict(headers or {})
        self.slug = slug or TITLES.get(status, "error").lower().replace(" ", "-")
        self.errors, self.retry_after = errors, retry_after
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)


# The documented error answers of a route, for the OpenAPI document.
def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ProblemModel, "description": TITLES.get(code, "Error"),
                   "content": {MEDIA_TYPE: {}}} for code in codes}


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    engine = getattr(request.app.state, "engine", None)
    detail = engine.redact(problem.detail) if engine is not None else problem.detail
    body = ProblemModel(type=TYPE_BASE + problem.slug, title=TITLES.get(problem.status, "Error"),
                        status=problem.status, detail=detail, instance=request.url.path,
                        errors=problem.errors, retryAfter=problem.retry_after)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=problem.status,
                        media_type=MEDIA_TYPE, headers=problem.headers)


def from_engine_error(exc: Exception) -> Problem:
    """The engine's error types, by who must act: a missing run or resource is 404, a call the
    engine refuses is 422 (usage), another process owning the run is 409, the store 503."""
    message = str(exc)
    if isinstance(exc, agentform.NotFound):
        return Problem(404, message)
    if isinstance(exc, agentform.RunTakenOver):
        return Problem(409, message, slug="run-taken-over")
    if isinstance(exc, agentform.StoreError):
        return Problem(503, message, slug="store-unavailable")
    if isinstance(exc, agentform.ManifestError | agentform.UsageError | agentform.RunError):
        return Problem(422, message, slug="refused")
    return Problem(400, message)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(agentform.AgentformError)
    async def _engine(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(request, from_engine_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()[:50]]
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
        return problem_response(request, Problem(422, f"the request is not valid: {where}", slug="invalid-request",
                                                 errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        return problem_response(request, Problem(exc.status_code, detail, headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(request, Problem(500, "an unexpected error; the server log has the details",
                                                 slug="internal"))
