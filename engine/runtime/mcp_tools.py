"""MCP tool servers in a run: started on first use (or when the run starts, for ``startup: eager``),
shared by the run's agents, closed when the run ends.

Each server gets an owner task that enters the MCP client and leaves it (anyio needs both
in one task); tool calls from any agent go through that client. Secrets in ``env`` and
``headers`` are resolved when the server starts; every tool result (text, structured
content, errors) passes the process redactor in full before the engine sees it. A stdio
server's stderr goes through a redacting pipe into
``<home>/logs/toolservers/<namespace>-<name>.log`` (mcp_stderr.py); a server that does not
start is reported with the last lines of that stderr and the log's path. A stdio server runs
in its manifest's folder (pinned at apply), so relative paths in ``command`` mean the same
from any current directory. ``toolserver.started`` and ``toolserver.ready`` (run-level
events) show a slow start as it happens. mcp is imported here only.

A stdio server is its argv run with no shell, in an environment of its ``env`` plus PATH,
HOME, LANG and TMPDIR (mcp_stdio.py); an http/sse server's ``headers`` go to its own origin
only (mcp_http.py). A stdio server that dies is input, not a crash: the call in flight is a
tool error, and the next call starts it again (``toolserver.started`` with ``restart``), at
most ``toolServers.maxRestarts`` times per run (3 by default; ``<home>/config.yaml``).
"""

from __future__ import annotations

import asyncio
import functools
import os
from typing import TYPE_CHECKING, Any

from agentform.engine.errors import RunError
from agentform.engine.redaction import redact_data, redact_text, register
from agentform.engine.toolpins import changed_message, pins_of, record_changed, refused
from agentform.specs import parse_duration

from . import budget as budgets
from . import builtins
from .context import TOOL_CALL_KEY, WORKSPACE
from .tools import Tool

if TYPE_CHECKING:
    from .context import RunContext


DEFAULT_MAX_RESTARTS = 3  # per stdio server and run (CONTRACT section 8); toolServers.maxRestarts


IDEMPOTENCY_META = "dev.agentform/idempotency-key"   # CONTRACT §8


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
        self.pins: dict[str, str] = {}     # tool -> definition hash, as listed (engine/toolpins.py)
        self.refused: dict[str, str] = {}  # tool -> why the run refuses it (a changed definition)
        self.stderr: Any = None          # StderrLog of a stdio server
        self.cwd: str | None = None      # where a stdio server runs
        self.process: Any = None         # mcp_stdio.Process of a stdio server's current start
        self.restarts = 0                # restarts so far in this run
        self.max_restarts = DEFAULT_MAX_RESTARTS
        self.was_ready = False           # restarts are for servers that worked once
        self.revive: Any = None          # ToolServers._restart, bound to this server
        self.restarting = asyncio.Lock()  # the calls of one turn restart a dead server once
        self.ready = asyncio.Event()
        self.stop = asyncio.Event()
        self.error: BaseException | None = None
        self.failed: str | None = None
        self.task: asyncio.Task | None = None

    async def own(self, transport: Any, on_ready: Any) -> None:
        """The owner task: connect, list the tools, wait until the run ends, disconnect."""
        from mcp import Client

        try:
            async with Client(transport) as client:
                self._spawned()
                self.client = client
                # A server may describe its tools with what it was given: the model must not see it.
                listed = (await client.list_tools()).tools
                self.pins = pins_of(listed)  # as sent, before redaction (engine/toolpins.py)
                self.tools = [t.model_copy(update={"description": redact_text(t.description or "") or None,
                                                   "input_schema": redact_data(t.input_schema)})
                              for t in listed]
                self.was_ready = True
                on_ready(self)
                self.ready.set()
                await self.stop.wait()
        except BaseException as exc:  # noqa: BLE001 - reported to every caller of this server
            self._spawned()
            self.error = exc
            self.ready.set()
            if isinstance(exc, asyncio.CancelledError):
                raise

    def _spawned(self) -> None:
        if self.stderr is not None:
            self.stderr.spawned()

    @property
    def down(self) -> bool:
        """A stdio server that was ready once and has exited since (or failed to restart)."""
        return self.was_ready and self.process is not None and (self.process.exited or self.error is not None)

    async def retire(self) -> None:
        """Stop this start's owner task (bounded) and forget its state, before a restart."""
        self.stop.set()
        if self.task is not None:
            await asyncio.wait([self.task], timeout=10)
            if not self.task.done():
                self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.stderr is not None:
            await self.stderr.drained()  # its last words are in the log before the next start's header
        self.ready, self.stop = asyncio.Event(), asyncio.Event()
        # ``process`` stays until the next start replaces it: a start that fails before it
        # spawns anything leaves the server down, so the next call tries again.
        self.client = self.error = self.failed = self.task = self.stderr = None

    async def call(self, name: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None) -> Any:
        if self.down:
            await self.revive()
        try:
            key = TOOL_CALL_KEY.get()
            if key:   # the same on a retry after a resume: the server can tell a repeat
                meta = {**(meta or {}), IDEMPOTENCY_META: key}
            result = await self.client.call_tool(name, arguments, meta=meta)  # the loop applies ``timeout``
        except Exception as exc:  # noqa: BLE001 - a crashed server or a protocol error: the model's to read
            where = f" (server stderr: {self.stderr.path})" if self.stderr is not None else ""
            if self.down:
                then = ("it is restarted at the next call" if self.restarts < self.max_restarts else
                        f"it has used its {self.max_restarts} restarts of this run")
                raise RunError(f"tool server {self.key} exited during the call{self.exit_note()}; "
                               f"{then}{where}") from None
            raise RunError(redact_text(_describe(exc)) + where) from None
        texts = [getattr(block, "text", "") for block in result.content]
        text = redact_text("\n".join(t for t in texts if t))
        if result.is_error:
            raise ToolFailed(text or f"{name} reported an error")
        data = result.structured_content
        if isinstance(data, dict) and list(data) == ["result"]:
            return redact_data(data["result"])  # how MCP servers wrap a plain return value
        return text if data is None else redact_data(data)

    def exit_note(self) -> str:
        code = None if self.process is None else self.process.exit_code
        if code is None:
            return ""
        return f" (killed by signal {-code})" if code < 0 else f" (exit code {code})"

    async def failure(self) -> str:
        """Why the server did not start: the error, the end of its stderr, where its log is."""
        detail = redact_text(_describe(self.error))
        if self.cwd is not None:
            detail += f" (started in {self.cwd})"
        if self.stderr is None:
            return detail
        await self.stderr.drained()
        lines = self.stderr.last_lines()
        if lines:
            detail += "; its stderr ends with:\n" + "\n".join(f"  {line}" for line in lines)
        return f"{detail}\nfull stderr log: {self.stderr.path}"


class ToolServers:
    """The MCP servers of one run, by graph key."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self._servers: dict[str, _Server] = {}
        self._lock = asyncio.Lock()
        self._max_restarts = max_restarts(ctx.home)
        self._first_seen: dict[str, dict[str, str]] = {}  # servers apply did not pin: first listing
        self._reported: set[str] = set()                  # refusals recorded in the status

    async def tools_for(self, agent: Any) -> dict[str, Tool]:
        """The MCP tools of an agent (after the server's filter and the agent's allow/deny)."""
        tools: dict[str, Tool] = {}
        for use in agent.spec.tools:
            if use.builtin is not None:  # an in-process server (builtins/), bound to its caller
                server, caller = await self._server(f"builtin:{use.builtin}"), agent
            elif use.knowledge is not None:  # one search_knowledge over all the agent's bases
                if "search_knowledge" in tools:
                    continue
                server, caller = await self._server("builtin:knowledge"), agent
            elif use.tool_server is None:
                continue
            else:
                namespace, name = use.tool_server.resolve(agent.namespace)
                server, caller = await self._server(f"{namespace}/{name}"), None
            for listed in server.tools:
                if not _allowed(listed.name, server.spec.tools, use.allow, use.deny):
                    continue
                if listed.name in tools:
                    raise RunError(f"agent {agent.namespace}/{agent.name}: two tool servers offer a tool "
                                   f"named {listed.name}; narrow one with allow/deny")
                if listed.name in server.refused:  # the model never sees the changed description
                    tools[listed.name] = _refused_tool(server, listed.name)
                    continue
                tools[listed.name] = _tool(server, listed, caller)
        return tools

    async def call(self, key: str, name: str, arguments: dict[str, Any]) -> Any:
        """Call one tool of server ``key`` directly (a pipeline's ``tool`` stage), within its timeout."""
        server = await self._server(key)
        if not any(t.name == name for t in server.tools) or not _allowed(name, server.spec.tools, None, None):
            raise RunError(f"tool server {key} has no tool {name}")
        if name in server.refused:
            raise RunError(_refusal(server, name))
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
                spec = self.ctx.graph.tool_servers.get(key) or builtins.spec_for(key)
                if spec is None:
                    raise RunError(f"tool server {key} is not part of this run's revision")
                server = self._servers[key] = _Server(key, spec)
                server.max_restarts = self._max_restarts
                server.revive = functools.partial(self._restart, server)
                self._start(server)
        await server.ready.wait()
        if server.error is not None and not server.was_ready:  # a server that worked once restarts instead
            if server.failed is None:  # drained once: every caller gets the same message
                server.failed = f"tool server {key} did not start: {await server.failure()}"
            raise RunError(server.failed)
        return server

    def _start(self, server: _Server, restart: int = 0) -> None:
        self.ctx.emit("toolserver.started", "", {"server": server.key, "restart": restart} if restart
                      else {"server": server.key})
        try:
            transport = self._transport(server)
        except BaseException as exc:
            server.error = exc
            server.ready.set()
            raise
        server.task = asyncio.get_running_loop().create_task(server.own(transport, self._ready))

    async def _restart(self, server: _Server) -> None:
        """Start a dead stdio server again, at most ``max_restarts`` times in a run; the calls
        of one turn that find it dead restart it once."""
        async with server.restarting:
            if not server.down:
                return
            if server.restarts >= server.max_restarts:
                raise RunError(f"tool server {server.key} is down{server.exit_note()} and is not restarted: "
                               f"it was restarted {server.restarts} times in this run, the limit "
                               f"(toolServers.maxRestarts in {self.ctx.home / 'config.yaml'})")
            server.restarts += 1
            await server.retire()
            try:
                self._start(server, server.restarts)
            except BaseException as exc:  # noqa: BLE001 - the model reads it; the next call tries again
                raise RunError(f"tool server {server.key} did not restart: {redact_text(_describe(exc))}") from None
            await server.ready.wait()
            if server.error is not None:
                raise RunError(f"tool server {server.key} did not restart: {await server.failure()}")

    def _ready(self, server: _Server) -> None:
        names = [t.name for t in server.tools if _allowed(t.name, server.spec.tools, None, None)]
        server.refused = self._check_pins(server, names)
        data: dict[str, Any] = {"server": server.key, "tools": names}
        if server.refused:
            data["refused"] = sorted(server.refused)
        # What the models are shown, so that a replay offers the same tools with no server (replay.py).
        data["definitions"] = [{"name": t.name, "description": t.description, "inputSchema": t.input_schema}
                               for t in server.tools if t.name in names and t.name not in server.refused]
        self.ctx.emit("toolserver.ready", "", data)

    def _check_pins(self, server: _Server, names: list[str]) -> dict[str, str]:
        """The tools whose definition differs from the pin of apply (or, for a server apply could
        not pin, from this run's first listing); the first refusal is recorded in the ToolServer's
        status, which `plan` shows as drift (engine/toolpins.py)."""
        pinned = getattr(self.ctx.graph, "tool_pins", {}).get(server.key)
        if pinned is None:
            pinned = self._first_seen.setdefault(server.key, dict(server.pins))
        why = refused(pinned, {n: server.pins[n] for n in names if n in server.pins})
        if why and server.key not in self._reported and self.ctx.store is not None:
            self._reported.add(server.key)
            descriptions = {t.name: t.description or "" for t in server.tools if t.name in why}
            record_changed(self.ctx.store, server.key, changed_message(server.key, why, descriptions))
        return why

    def _transport(self, server: _Server) -> Any:
        if server.spec.transport == "inproc":
            return builtins.make_server(server.spec.name, self.ctx)  # mcp.Client connects it in process
        spec, (namespace, _) = server.spec, server.key.split("/", 1)
        # ``env`` belongs to stdio servers and ``headers`` to http/sse ones (validate refuses the
        # other way round); a secret is resolved only where it is used.
        if spec.transport == "stdio":
            from .mcp_stderr import StderrLog
            from .mcp_stdio import Process, server_environment, stdio_transport

            values = {k: self._value(v, namespace, server) for k, v in spec.env.items()}
            argv = [self._render(part) for part in spec.command]
            folder = self.ctx.graph.tool_server_dirs.get(server.key)
            argv[0] = _command_in(argv[0], folder)
            server.cwd = folder
            server.process = Process()
            log = self.ctx.home / "logs" / "toolservers" / f"{server.key.replace('/', '-')}.log"
            started = f"restart {server.restarts}" if server.restarts else "starting"
            server.stderr = StderrLog(log, f"--- run {self.ctx.run_id}: {started} {server.key}")
            return stdio_transport(argv, server_environment(values), folder, server.stderr.writer, server.process)
        from .mcp_http import client_factory, streamable_http

        headers = {k: self._value(v, namespace, server) for k, v in spec.headers.items()}
        if spec.transport == "sse":
            from mcp.client.sse import sse_client

            return sse_client(spec.url, httpx_client_factory=client_factory(spec.url, headers))
        return streamable_http(spec.url, headers)

    def _value(self, value: Any, namespace: str, server: _Server) -> str:
        if isinstance(value, str):
            return value
        from agentform.engine.secrets import resolve_ref

        secret = resolve_ref(value, namespace=namespace, secrets=self.ctx.graph.secrets, home=self.ctx.home)
        register(secret)  # before the server can print or return it
        return secret

    def _render(self, part: str) -> str:
        if "{" not in part:
            return part
        from agentform.engine.templates import render

        # The workspace in effect where the server starts (the run target's for an eager one).
        return render(part, {"workspace": {"path": self.ctx.workspace_path(None) or ""},
                             "run": {"id": self.ctx.run_id}})

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
        # The servers have exited: wait until their last stderr lines are in the logs, so that a
        # finished run's logs are complete.
        logs = [s.stderr.drained() for s in self._servers.values() if s.stderr is not None]
        if logs:
            await asyncio.gather(*logs)


def max_restarts(home: Any) -> int:
    """``toolServers.maxRestarts`` of ``<home>/config.yaml``: how many times a stdio server
    that died is started again within one run (default ``DEFAULT_MAX_RESTARTS``; 0: never)."""
    from pathlib import Path

    path = Path(home) / "config.yaml"
    if not path.is_file():
        return DEFAULT_MAX_RESTARTS
    from agentform.engine.errors import UsageError
    from agentform.engine.yamlsafe import parse_yaml

    parsed = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    if parsed.fatal:
        raise UsageError(str(parsed.fatal[0]))
    data = parsed.documents[0].data if parsed.documents else None
    section = data.get("toolServers") if isinstance(data, dict) else None
    if section is None:
        return DEFAULT_MAX_RESTARTS
    unknown = sorted(set(section) - {"maxRestarts"}) if isinstance(section, dict) else ["(not a mapping)"]
    if unknown:
        raise UsageError(f"{path}: toolServers.{unknown[0]} is not a setting (known: maxRestarts)")
    value = section.get("maxRestarts", DEFAULT_MAX_RESTARTS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{path}: toolServers.maxRestarts must be a whole number, 0 or more (got {value!r})")
    return value


def _allowed(name: str, server_filter: Any, allow: list[str] | None, deny: list[str] | None) -> bool:
    for allow_list, deny_list in ((getattr(server_filter, "allow", None), getattr(server_filter, "deny", None)),
                                  (allow, deny)):
        if allow_list is not None and name not in allow_list:
            return False
        if deny_list is not None and name in deny_list:
            return False
    return True


def _tool(server: _Server, listed: Any, caller: Any = None) -> Tool:
    schema = dict(listed.input_schema or {"type": "object", "properties": {}})

    async def run(ctx: Any, path: str, args: dict, conversation: list, _name=listed.name) -> Any:
        if caller is None:
            return await server.call(_name, args)
        # A built-in acts for its caller: who that is goes with the call, out of the model's reach.
        token = builtins.enroll_caller(builtins.Caller(caller, path, (budgets.current.get(),
                                                                      budgets.agent_scope.get()),
                                                       WORKSPACE.get()))
        try:
            return await server.call(_name, args, {builtins.CALLER_META: token})
        finally:
            builtins.drop_caller(token)

    return Tool(listed.name, listed.description or listed.name, schema, run, "external",
                tuple(schema.get("required", ())), timeout=server.timeout)


def _refusal(server: _Server, name: str) -> str:
    return (f"tool {name} of tool server {server.key} is refused: {server.refused[name]}; a changed "
            "definition may carry new instructions, so it is not used until someone reviews it and runs "
            "`agentform apply` again, which pins it")


def _refused_tool(server: _Server, name: str) -> Tool:
    """A placeholder under the tool's name: a call gets the refusal (naming the tool), and the
    model never reads the description the server offers now."""
    async def run(ctx: Any, path: str, args: dict, conversation: list) -> Any:
        raise RunError(_refusal(server, name))

    return Tool(name, f"(unavailable in this run: its definition changed since {server.key} was pinned)",
                {"type": "object"}, run, "external", timeout=server.timeout)


def _command_in(command: str, folder: str | None) -> str:
    """A relative ``command[0]`` with a ``/`` (``tools/server.py``, ``./bin/srv``) names a file of
    the manifest's folder; a bare name (``uvx``, ``python``) is looked up on PATH as usual."""
    if folder is None or "/" not in command or os.path.isabs(command):
        return command
    return os.path.join(folder, command)


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
