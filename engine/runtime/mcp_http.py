"""The HTTP clients of streamable-HTTP and SSE tool servers: a manifest's ``headers`` reach
the server's own origin and no other.

The headers are not client defaults: a request hook adds them to each request whose origin
(scheme, host, port) is the one of the manifest's ``url``, so a redirect to another origin,
or an SSE ``endpoint`` naming one, goes without them whatever the SDK's redirect policy
becomes (mcp 2.3 does not follow such redirects at all). Nothing else is added: the engine's
own API tokens never go to a tool server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any


def _origin(url: Any) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def client_factory(url: str, headers: dict[str, str]) -> Callable[..., Any]:
    """An ``httpx_client_factory`` (the SDK's signature) whose clients carry ``headers`` to
    ``url``'s origin only."""
    import httpx2
    from mcp.shared._httpx_utils import create_mcp_http_client

    origin = _origin(httpx2.URL(url))

    async def credentials(request: Any) -> None:
        if _origin(request.url) == origin:
            request.headers.update(headers)
        else:
            for name in headers:
                request.headers.pop(name, None)

    def factory(headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None) -> Any:
        client = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
        if attach:
            hooks = client.event_hooks
            client.event_hooks = {**hooks, "request": [*hooks.get("request", ()), credentials]}
        return client

    attach = bool(headers)
    return factory


@asynccontextmanager
async def streamable_http(url: str, headers: dict[str, str]) -> AsyncIterator[Any]:
    """The SDK's streamable-HTTP transport over such a client (closed with the transport)."""
    from mcp.client.streamable_http import streamable_http_client

    async with client_factory(url, headers)() as client, streamable_http_client(url, http_client=client) as streams:
        yield streams
