"""Who is calling: a Bearer token, or a browser session made by ``POST /login``; never a query string.

``principal(request)`` is the verified caller (None: anonymous). Tokens are checked by the
engine (hash, revocation) on every request, so a revoked token stops at once, sessions too:
a session keeps the token in this process's memory only (the cookie carries a random id),
is HttpOnly and SameSite=Strict (a cross-site form cannot use it), and ends at logout, after
``SESSION_TTL_S`` or when its token is revoked.

Rules: reading needs the ``read`` scope when ``serve --auth`` is on (anonymous reads
otherwise); every write needs a token with its scope, ``--auth`` or not. A token limited to a
namespace sees only that namespace's runs, resources and events.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from .problems import Problem

SESSION_COOKIE = "agentform_session"
SESSION_TTL_S = 12 * 3600
MAX_SESSIONS = 10_000
MAX_TOKEN = 512
_UNSET = object()


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    scopes: frozenset[str]
    namespace: str | None     # None: every namespace

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def sees(self, namespace: str | None) -> bool:
        return self.namespace is None or self.namespace == namespace


@dataclass
class _Session:
    token: str
    expires: float


class Sessions:
    """Browser sessions of this process: random id -> the token it logged in with."""

    def __init__(self) -> None:
        self._by_id: dict[str, _Session] = {}

    def open(self, token: str) -> str:
        now = time.time()
        if len(self._by_id) >= MAX_SESSIONS:   # bounded: expired ones go first, then the oldest
            for sid in [s for s, v in self._by_id.items() if v.expires <= now] or list(self._by_id)[:1]:
                del self._by_id[sid]
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = _Session(token, now + SESSION_TTL_S)
        return sid

    def token(self, sid: str) -> str | None:
        session = self._by_id.get(sid)
        if session is None or session.expires <= time.time():
            self._by_id.pop(sid, None)
            return None
        return session.token

    def close(self, sid: str) -> None:
        self._by_id.pop(sid, None)


def _presented(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Problem(401, "use 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"})
        return value.strip()[:MAX_TOKEN]
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        return request.app.state.sessions.token(sid[:100])
    return None


def principal(request: Request) -> Principal | None:
    """The verified caller, or None when no credential came; 401 for one that is not valid."""
    known = getattr(request.state, "principal", _UNSET)
    if known is not _UNSET:
        return known
    token = _presented(request)
    found = None
    if token is not None:
        info = request.app.state.engine.token_verify(token)
        if info is None:
            raise Problem(401, "the token is unknown, revoked or malformed", headers={"WWW-Authenticate": "Bearer"})
        found = Principal(info.id, info.name, frozenset(info.scopes), info.namespace)
    request.state.principal = found
    return found


def reader(request: Request) -> Principal | None:
    """A dependency of every read route: with ``--auth``, a token with ``read``."""
    who = principal(request)
    if request.app.state.settings.auth:
        if who is None:
            raise Problem(401, "this server requires a token: send 'Authorization: Bearer <token>' "
                               "(agentform token create --scope read)", headers={"WWW-Authenticate": "Bearer"})
        if not who.allows("read"):
            raise Problem(403, f"token {who.token_id} lacks the 'read' scope", slug="missing-scope")
    return who


def writer(request: Request, scope: str) -> Principal:
    """A write's caller: a token with ``scope`` (always required for writes)."""
    who = principal(request)
    if who is None:
        raise Problem(401, f"writes need a token with the '{scope}' scope: send 'Authorization: Bearer <token>'",
                      headers={"WWW-Authenticate": "Bearer"})
    if not who.allows(scope):
        raise Problem(403, f"token {who.token_id} lacks the '{scope}' scope", slug="missing-scope")
    return who


def visible(who: Principal | None, namespace: str | None) -> bool:
    return who is None or who.sees(namespace)


def scope_namespace(who: Principal | None, asked: str | None) -> str | None:
    """The namespace a listing may cover: a namespaced token's own (asking for another is 403)."""
    if who is None or who.namespace is None:
        return asked
    if asked is not None and asked != who.namespace:
        raise Problem(403, f"token {who.token_id} is limited to namespace {who.namespace!r}", slug="other-namespace")
    return who.namespace


def target_namespace(target: str) -> str | None:
    """The namespace of a run's target text (``kind/namespace/name``)."""
    parts = target.split("/")
    return parts[1] if len(parts) == 3 else "default"


router = APIRouter(include_in_schema=False)


def _local(path: str) -> str:
    """A redirect target on this server only (never ``//host`` or a scheme)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


@router.post("/login")
async def login(request: Request, token: str = Form(..., max_length=MAX_TOKEN), next: str = Form("/", max_length=2000)) -> Response:
    """Exchange a token for an HttpOnly, SameSite=Strict session cookie (browsers; EventSource)."""
    import asyncio

    engine = request.app.state.engine
    info = await asyncio.to_thread(engine.token_verify, token.strip())
    wants_json = "application/json" in request.headers.get("accept", "")
    if info is None or "read" not in info.scopes:
        if wants_json:
            raise Problem(401, "the token is unknown, revoked, or lacks the 'read' scope")
        return RedirectResponse(f"/login?error=1&next={_quote(_local(next))}", status_code=303)
    sid = request.app.state.sessions.open(token.strip())
    response: Response = JSONResponse({"tokenId": info.id, "scopes": list(info.scopes), "namespace": info.namespace}) \
        if wants_json else RedirectResponse(_local(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, sid, max_age=SESSION_TTL_S, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        request.app.state.sessions.close(sid[:100])
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


def settings_of(request: Request) -> Any:
    return request.app.state.settings
