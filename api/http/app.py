"""The HTTP face: ``create_app(engine, ...)`` builds the FastAPI app that ``agentform serve`` runs.

It only translates between HTTP and ``agentform.Engine``: the JSON API and SSE under
``/api/v1`` (routes_read, routes_events, routes_write), ``/metrics``, ``/healthz``,
``/readyz`` (routes_ops), ``POST /login`` / ``/logout`` (auth) and the web pages (web.py,
when present). Every JSON answer passes the engine's redactor (``RedactedJSON``); every
error is problem+json (problems.py); request bodies are capped at ``MAX_BODY`` bytes.

On PostgreSQL the app runs an embedded worker for queued runs unless ``worker=False``
(``serve --no-worker``, when separate ``agentform worker`` processes execute them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

import agentform

from . import auth as authn
from . import problems, routes_events, routes_ops, routes_read, routes_write
from .ratelimit import RateLimiter

MAX_BODY = 2 * 1024 * 1024
LEARN_SECRETS_S = 30.0
log = logging.getLogger("agentform.serve")


@dataclass(frozen=True)
class Settings:
    auth: bool = False             # reading needs a `read` token too
    rate_limit: int = 60           # writes per minute per token
    ping_s: float = 15.0           # SSE keep-alive comment when idle
    worker: bool = True            # PostgreSQL: run an embedded worker for queued runs
    worker_concurrency: int = 4
    drain_s: float = 30.0          # stopping: how long runs executing here may take to finish


class RedactedJSON(JSONResponse):
    """JSON with every secret value this process knows masked, whatever the route put in it."""

    def render(self, content: Any) -> bytes:
        return super().render(agentform.Engine.redact(content))


class BodyLimit:
    """413 for a request body over ``limit`` bytes, declared or streamed (ASGI middleware)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, receive, send)
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = (f'{{"type":"{problems.TYPE_BASE}too-large","title":"Content too large","status":413,'
                f'"detail":"request bodies are limited to {self.limit} bytes"}}').encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", problems.MEDIA_TYPE.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(engine: Any, *, auth: bool = False, rate_limit: int = 60, worker: bool = True,
               worker_concurrency: int = 4, ping_s: float = 15.0, drain_s: float = 30.0,
               on_worker_exit: Callable[[], None] | None = None) -> FastAPI:
    """The ASGI app over ``engine`` (see the module docstring). The embedded worker drains on
    SIGTERM/SIGINT; ``on_worker_exit`` is then called (``serve`` stops its server there)."""
    settings = Settings(auth=auth, rate_limit=rate_limit, ping_s=ping_s, worker=worker,
                        worker_concurrency=worker_concurrency, drain_s=drain_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The values of applied Secrets this process can read are masked in every answer, from
        # the start and as applies add Secrets (a run written elsewhere may carry one).
        known = await asyncio.to_thread(engine.learn_secrets)
        learner = asyncio.create_task(_keep_learning_secrets(app, known))
        worker_task = None
        if settings.worker and await asyncio.to_thread(engine.live_workers) is not None:
            worker_task = asyncio.create_task(_embedded_worker(engine, settings.worker_concurrency, on_worker_exit))
        try:
            yield
        finally:
            learner.cancel()
            # Runs this server executes (SQLite) and approvals it continues finish first, up to
            # drain_s; what is still running then is cancelled, as a Ctrl-C on `run` would.
            answers = list(app.state.tasks)
            if answers:
                await asyncio.wait(answers, timeout=settings.drain_s)
            cancelled = await engine.drain_started(settings.drain_s)
            if cancelled:
                log.warning("%d run(s) still running after %.0f s were cancelled", cancelled, settings.drain_s)
            if worker_task is not None:
                worker_task.cancel()
                with contextlib.suppress(BaseException):
                    await worker_task

    app = FastAPI(title="agentform", version=agentform.__version__, lifespan=lifespan,
                  default_response_class=RedactedJSON,
                  description="The agentform engine over HTTP: read-only state, runs and their event streams "
                              "(SSE), and three writes (start, cancel, approve) for tokens with their scope.")
    app.state.engine = engine
    app.state.settings = settings
    app.state.sessions = authn.Sessions()
    app.state.limiter = RateLimiter(rate_limit)
    app.state.encoded = routes_events.Encoded(engine)
    app.state.tasks = set()
    problems.install(app)
    app.add_middleware(BodyLimit)
    for module in (routes_read, routes_events, routes_write, routes_ops):
        app.include_router(module.router)
    app.include_router(authn.router)
    web = _web_router()
    if web is not None:
        app.include_router(web)
    return app


def _web_router() -> Any:
    """Engineer C's pages (api/http/web.py), when that module is there."""
    try:
        from . import web
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.endswith(".web"):
            return None
        raise
    return web.router


async def _keep_learning_secrets(app: FastAPI, known: int) -> None:
    while True:
        await asyncio.sleep(LEARN_SECRETS_S)
        try:
            learned = await asyncio.to_thread(app.state.engine.learn_secrets)
        except Exception:   # the store is away for now: /readyz says so; try again later
            log.warning("could not read the applied Secrets", exc_info=True)
            continue
        if learned != known:   # SSE bytes encoded before a value was known may carry it
            app.state.encoded.clear()
            known = learned


async def _embedded_worker(engine: Any, concurrency: int, on_exit: Callable[[], None] | None) -> None:
    """PostgreSQL: execute queued runs here too (``serve --no-worker`` leaves them to workers).
    The worker owns SIGTERM/SIGINT while it runs (it drains); when it returns, the server stops."""
    try:
        await engine.worker(concurrency=concurrency, wait=True)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the embedded worker stopped; queued runs wait for `agentform worker` processes")
        return
    if on_exit is not None:
        on_exit()
