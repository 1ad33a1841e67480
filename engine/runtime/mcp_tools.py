"""MCP tool servers in a run: started on first use (or when the run starts, for ``startup: eager``),
shared by the run's agents, closed when the run ends.

Each server gets an owner task that enters the MCP client and leaves it (anyio needs both
in one task); tool calls from any agent go through that client. Secrets in ``env`` and
``headers`` are resolved when the server starts and redacted from every error. A server's
stderr goes to ``<home>/logs/toolservers/<namespace>-<name>.log``. mcp is imported here only.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from agentform.engine.errors import RunError
from agentform.specs import parse_duration

from .tools import Tool

if TYPE_CHECKING:
    from .context import RunContext


class ToolFailed(RunError):
    """A tool ran and reported an error (``is_error``): the model reads the message."""


class _Server:
    """One running MCP server: its client, its tools, its owner task."""

    def __init__(self, key: str, spec: Any):
        self.key = key
        self.spec = spec
        self.timeout = parse_duration(spec.timeout)
        self.client: Any = None
        self.tools: list[Any] = []
        self.secrets: list[str] = []
        self.ready = asyncio.Event()
        self.stop = asyncio.Event()
        self.error: BaseException | None = None
        self.task: asyncio.Task | None = None

    async def own(self, transport: Any) -> None:
        """The owner task: connect, list the tools, wait until the run ends, disconnect."""
        from mcp import Client

        try:
            async with Client(transport) as client:
                self.client = client
                self.tools = list((await client.list_tools()).tools)
                self.ready.set()
                await self.stop.wait()
        except BaseException as exc:  # noqa: BLE001 - reported to every caller of this server
            self.error = exc
            self.ready.set()
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        from agentform.engine.secrets import redact

        result = await self.client.call_tool(name, arguments)  # the loop applies ``timeout``
        texts = [getattr(block, "text", "") for block in result.content]
        text = redact("\n".join(t for t in texts if t), self.secrets)
        if result.is_error:
            raise ToolFailed(text or f"{name} reported an error")
        data = result.structured_content
        if isinstance(data, dict) and list(data) == ["result"]:
            return data["result"]  # how MCP servers wrap a plain return value
        return text if data is None else data


class ToolServers:
    """The MCP servers of one run, by graph key."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self._servers: dict[str, _Server] = {}
        self._lock = asyncio.Lock()

    async def tools_for(self, agent: Any) -> dict[str, Tool]:
        """The MCP tools of an agent (after the server's filter and the agent's allow/deny)."""
        tools: dict[str, Tool] = {}
        for use in agent.spec.tools:
            if use.tool_server is None:
                continue
            namespace, name = use.tool_server.resolve(agent.namespace)
            server = await self._server(f"{namespace}/{name}")
            for listed in server.tools:
                if not _allowed(listed.name, server.spec.tools, use.allow, use.deny):
                    continue
                if listed.name in tools:
                    raise RunError(f"agent {agent.namespace}/{agent.name}: two tool servers offer a tool "
                                   f"named {listed.name}; narrow one with allow/deny")
                tools[listed.name] = _tool(server, listed)
        return tools

    async def call(self, key: str, name: str, arguments: dict[str, Any]) -> Any:
        """Call one tool of server ``key`` directly (a pipeline's ``tool`` stage), within its timeout."""
        server = await self._server(key)
        if not any(t.name == name for t in server.tools) or not _allowed(name, server.spec.tools, None, None):
            raise RunError(f"tool server {key} has no tool {name}")
        try:
            return await asyncio.wait_for(server.call(name, arguments), server.timeout)
        except TimeoutError:
            raise RunError(f"{name} timed out after {server.timeout:g}s") from None

    async def start_eager(self) -> None:
        """Start the servers with ``startup: eager`` now, so that a broken one fails the run early."""
        for key, spec in self.ctx.graph.tool_servers.items():
            if spec.startup == "eager":
                await self._server(key)

    async def _server(self, key: str) -> _Server:
        async with self._lock:
            server = self._servers.get(key)
            if server is None:
                spec = self.ctx.graph.tool_servers.get(key)
                if spec is None:
                    raise RunError(f"tool server {key} is not part of this run's revision")
                server = self._servers[key] = _Server(key, spec)
                transport = self._transport(server)
                server.task = asyncio.get_running_loop().create_task(server.own(transport))
        await server.ready.wait()
        if server.error is not None:
            from agentform.engine.secrets import redact

            detail = redact(_describe(server.error), server.secrets)
            raise RunError(f"tool server {key} did not start: {detail}")
        return server

    def _transport(self, server: _Server) -> Any:
        spec, (namespace, _) = server.spec, server.key.split("/", 1)
        values = {k: self._value(v, namespace, server) for k, v in spec.env.items()}
        headers = {k: self._value(v, namespace, server) for k, v in spec.headers.items()}
        if spec.transport == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            argv = [self._render(part) for part in spec.command]
            log_dir = self.ctx.home / "logs" / "toolservers"
            log_dir.mkdir(parents=True, exist_ok=True)
            errlog = open(log_dir / f"{server.key.replace('/', '-')}.log", "a", encoding="utf-8")  # noqa: SIM115
            self._close_later(errlog)
            return stdio_client(StdioServerParameters(command=argv[0], args=argv[1:], env=values or None),
                                errlog=errlog)
        if spec.transport == "sse":
            from mcp.client.sse import sse_client

            return sse_client(spec.url, headers=headers or None)
        from mcp.client.streamable_http import streamable_http_client

        if not headers:
            return streamable_http_client(spec.url)
        import httpx2

        return streamable_http_client(spec.url, http_client=httpx2.AsyncClient(headers=headers))

    def _value(self, value: Any, namespace: str, server: _Server) -> str:
        if isinstance(value, str):
            return value
        from agentform.engine.secrets import resolve_ref

        secret = resolve_ref(value, namespace=namespace, secrets=self.ctx.graph.secrets, home=self.ctx.home)
        server.secrets.append(secret)
        return secret

    def _render(self, part: str) -> str:
        if "{" not in part:
            return part
        from agentform.engine.templates import render

        return render(part, {"workspace": {"path": ""}, "run": {"id": self.ctx.run_id}})

    def _close_later(self, handle: Any) -> None:
        self._files = [*getattr(self, "_files", []), handle]

    async def close(self) -> None:
        """Stop every server of the run (their owner tasks leave the MCP clients)."""
        for server in self._servers.values():
            server.stop.set()
        tasks = [s.task for s in self._servers.values() if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=10)
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for handle in getattr(self, "_files", []):
            with contextlib.suppress(OSError):
                handle.close()


def _allowed(name: str, server_filter: Any, allow: list[str] | None, deny: list[str] | None) -> bool:
    for allow_list, deny_list in ((getattr(server_filter, "allow", None), getattr(server_filter, "deny", None)),
                                  (allow, deny)):
        if allow_list is not None and name not in allow_list:
            return False
        if deny_list is not None and name in deny_list:
            return False
    return True


def _tool(server: _Server, listed: Any) -> Tool:
    schema = dict(listed.input_schema or {"type": "object", "properties": {}})

    async def run(ctx: Any, path: str, args: dict, conversation: list, _name=listed.name) -> Any:
        return await server.call(_name, args)

    return Tool(listed.name, listed.description or listed.name, schema, run, "external",
                tuple(schema.get("required", ())), timeout=server.timeout)


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
