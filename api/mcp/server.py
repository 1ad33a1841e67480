"""``agentform mcp``: the engine as an MCP server over stdio, so that an MCP client (an IDE
assistant) can list what runs, start runs, follow them and read their cost.

Tools: ``list_targets``, ``start_run`` (returns the run id at once; the run executes in a
background task of this process), ``get_run``, ``wait_run``, ``read_events``, ``cancel_run``,
``cost``; ``answer_approval`` only when the server was started with ``--allow-approve`` (an
LLM client must not pass the human gate by default). Resources: ``agentform://runs`` (recent
runs), ``agentform://runs/{run_id}`` and ``agentform://runs/{run_id}/events``.

Everything goes through ``agentform.Engine``; every answer passes ``Engine.redact`` (the
protocol is written to the real stdout, past the CLI's redacting stream). Runs still going
when the client disconnects are cancelled (recorded as ``cancelled``; ``resume`` continues
them from their stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from agentform import AgentformError, Engine

RUNNABLE = ("team", "pipeline", "agent")
EVENTS_MAX = 500            # events per read_events call
WAIT_MAX = 600.0            # seconds wait_run may block
INPUT_MAX = 256 * 1024      # characters of a run's input
SHUTDOWN_WAIT = 10.0        # seconds background runs get to record their cancellation
RECORD_WAIT = 30.0          # seconds a started run may take to be recorded


class BackgroundRuns:
    """Runs started by this server, each a task of its event loop."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.tasks: dict[str, asyncio.Task] = {}

    async def start(self, execute: Callable[[Callable[[Any], None]], Awaitable[Any]]) -> str:
        """Begin ``execute(on_event)`` in the background; the run id once its first event is out.
        An error before any event (unknown target, bad params) is raised here."""
        loop = asyncio.get_running_loop()
        first: asyncio.Future[str] = loop.create_future()

        def on_event(event: Any) -> None:
            if not first.done():
                loop.call_soon_threadsafe(lambda: first.done() or first.set_result(event.run_id))

        task = asyncio.ensure_future(execute(on_event))
        await asyncio.wait({first, task}, return_when=asyncio.FIRST_COMPLETED)
        if not first.done():
            first.cancel()
            task.result()                   # raises the reason it did not start
            raise AgentformError("the run ended before its first event")
        run_id = first.result()
        self.tasks[run_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(run_id, None) if self.tasks.get(run_id) is task else None)
        await self._recorded(run_id, task)
        return run_id

    async def _recorded(self, run_id: str, task: asyncio.Task) -> None:
        """Until the run's record is in the store (its writer commits it with the first events),
        so that the id answered is one every tool and process can read."""
        from agentform import NotFound

        deadline = asyncio.get_running_loop().time() + RECORD_WAIT
        delay = 0.005
        while True:
            try:
                await asyncio.to_thread(self.engine.get_run, run_id)
                return
            except NotFound:
                if task.done() or asyncio.get_running_loop().time() > deadline:
                    raise
            await asyncio.sleep(delay)   # a poll of the store, which decides
            delay = min(delay * 2, 0.1)

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=SHUTDOWN_WAIT)


def build_server(engine: Engine, *, allow_approve: bool = False) -> tuple[Any, BackgroundRuns]:
    """The MCPServer and its background runs (tests build it in process too)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
    from mcp_types import ToolAnnotations

    import agentform

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    server = MCPServer("agentform", version=agentform.__version__, instructions=(
        "agentform runs teams of LLM agents and pipelines declared in manifests. list_targets shows "
        "what can run; start_run returns a run id at once; wait_run or get_run give its status and "
        "output; read_events pages through what happened; cost reports tokens and USD."
        + ("" if allow_approve else " Approvals are answered by people, outside this server.")))
    # Building an MCPServer configures the root logger at INFO: what the CLI had stays.
    root.setLevel(level)
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    runs = BackgroundRuns(engine)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn`` in a thread; engine errors become tool errors the model can read."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except AgentformError as exc:
            raise ToolError(engine.redact(str(exc))) from None

    def status(run_id: str) -> dict[str, Any]:
        info = engine.run_info(run_id).to_dict()
        record = engine.get_run(info["id"])
        info["output"] = record.output
        info["last_seq"] = record.last_seq
        info["resource"] = f"agentform://runs/{info['id']}"
        if record.status == "waiting":
            info["approvals"] = [{"stage": e.data.get("stage"), "path": e.path, "message": e.data.get("message"),
                                  "expires_at": e.data.get("expiresAt")} for e in engine.pending_approvals(record.id)]
        return info

    @server.tool(annotations=read_only, description=(
        "What can run: teams, pipelines and agents applied to agentform, with their health and, for "
        "pipelines, their params. kind: team | pipeline | agent (default: all three); namespace: "
        "default 'default', '*' for every namespace."))
    async def list_targets(kind: str | None = None, namespace: str = "default") -> dict[str, Any]:
        kinds = RUNNABLE if kind is None else (kind.lower().rstrip("s"),)
        if any(k not in RUNNABLE for k in kinds):
            raise ToolError(f"kind {kind!r}: one of team, pipeline, agent")
        found = []
        for k in kinds:
            for r in await call(engine.resources, k, namespace=None if namespace == "*" else namespace):
                entry = {"target": f"{k}/{r.namespace}/{r.name}", "kind": r.kind, "namespace": r.namespace,
                         "name": r.name, "health": r.health, "revision": r.revision}
                spec = r.spec.get("spec") or {}          # the applied document, sensitive leaves masked
                for field in ("description", "params"):
                    if spec.get(field):
                        entry[field] = spec[field]
                found.append(entry)
        return engine.redact({"targets": found})

    @server.tool(description=(
        "Start a run of target (team/NAME, pipeline/NAME, agent/NAME, or kind/NAMESPACE/NAME) with an "
        "input text (teams, agents) or params (pipelines); optional thread id for a conversation. "
        "Returns the run id at once; the run executes in the background: follow it with wait_run, "
        "get_run or read_events."))
    async def start_run(target: str, input: str | None = None, params: dict[str, Any] | None = None,
                        thread: str | None = None) -> dict[str, Any]:
        if input is not None and len(input) > INPUT_MAX:
            raise ToolError(f"input: {len(input)} characters, more than {INPUT_MAX}")
        try:
            run_id = await runs.start(lambda on_event: engine.run(target, input=input, params=params,
                                                                  thread=thread, on_event=on_event))
        except AgentformError as exc:
            raise ToolError(engine.redact(str(exc))) from None
        return {"run": run_id, "status": "running", "resource": f"agentform://runs/{run_id}"}

    @server.tool(annotations=read_only, description=(
        "A run's status (queued, running, waiting, succeeded, failed, cancelled), output, error, "
        "tokens and cost; for a waiting run, 'approvals' lists what waits for an answer. run_id: the id or a unique prefix."))
    async def get_run(run_id: str) -> dict[str, Any]:
        return engine.redact(await call(status, run_id))

    @server.tool(annotations=read_only, description=(
        "Wait until a run is no longer queued or running (it ended, or waits for an approval), at most "
        f"timeout_s seconds (default 60, at most {WAIT_MAX:g}); then its status as get_run gives it."))
    async def wait_run(run_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + max(0.0, min(timeout_s, WAIT_MAX))
        info = await call(status, run_id)
        while info["status"] in ("queued", "running") and asyncio.get_running_loop().time() < deadline:
            task = runs.tasks.get(info["id"])
            if task is not None:        # executing here: its end is the signal
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), timeout=min(
                        1.0, deadline - asyncio.get_running_loop().time()))
            else:                       # executing elsewhere: the store says when
                await asyncio.sleep(0.25)
            info = await call(status, run_id)
        return engine.redact(info)

    @server.tool(annotations=read_only, description=(
        "A run's events after seq 'after' (0: from the start), at most 'limit' (default 100, at most "
        f"{EVENTS_MAX}): seq, type, path (who: team/member/stage), data. Continue with after=next_after."))
    async def read_events(run_id: str, after: int = 0, limit: int = 100) -> dict[str, Any]:
        limit = max(1, min(limit, EVENTS_MAX))
        page = await call(engine.event_page, run_id, after, limit)
        events = [e.to_dict() for e in page]
        return engine.redact({"events": events, "next_after": events[-1]["seq"] if events else after,
                              "more": len(events) == limit})

    @server.tool(description="Cancel a run (it stops within a second, wherever it executes).",
                 annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
    async def cancel_run(run_id: str) -> dict[str, Any]:
        record, asked = await call(engine.cancel, run_id)
        return {"run": record.id, "status": record.status, "owner_asked": asked}

    @server.tool(annotations=read_only, description=(
        "Tokens and USD spent by runs, grouped by model | agent | team | pipeline | target, since a "
        "duration back from now (e.g. 24h, 7d; default: all time)."))
    async def cost(by: str = "model", since: str | None = None) -> dict[str, Any]:
        return (await call(engine.cost, by, since)).to_dict()

    if allow_approve:
        @server.tool(description=(
            "Answer a run's waiting approval: approve=true continues it, false rejects; stage names "
            "the approval when several wait; message is recorded. The run continues in the background."))
        async def answer_approval(run_id: str, approve: bool, message: str | None = None,
                                  stage: str | None = None) -> dict[str, Any]:
            try:
                run = await runs.start(lambda on_event: engine.approve(
                    run_id, approve=approve, by="mcp", message=message, stage=stage, on_event=on_event))
            except AgentformError as exc:
                raise ToolError(engine.redact(str(exc))) from None
            return {"run": run, "approved": approve, "resource": f"agentform://runs/{run}"}

    @server.resource("agentform://runs", mime_type="application/json", description="The 50 latest runs.")
    async def recent_runs() -> dict[str, Any]:
        return engine.redact((await call(engine.runs, limit=50)).to_dict())

    @server.resource("agentform://runs/{run_id}", mime_type="application/json",
                     description="A run: status, output, tokens, cost.")
    async def run_resource(run_id: str) -> dict[str, Any]:
        try:
            return engine.redact(await call(status, run_id))
        except ToolError as exc:
            raise ResourceNotFoundError(str(exc)) from None

    @server.resource("agentform://runs/{run_id}/events", mime_type="application/json",
                     description=f"A run's first {EVENTS_MAX} events (read_events pages further).")
    async def run_events(run_id: str) -> list[dict[str, Any]]:
        try:
            return engine.redact([e.to_dict() for e in await call(engine.event_page, run_id, 0, EVENTS_MAX)])
        except ToolError as exc:
            raise ResourceNotFoundError(str(exc)) from None

    return server, runs


async def serve_stdio(engine: Engine, *, allow_approve: bool = False) -> None:
    """Serve MCP on this process' stdin/stdout until the client closes it; then cancel the runs
    still going."""
    from mcp.server.stdio import stdio_server

    server, runs = build_server(engine, allow_approve=allow_approve)
    lowlevel = server._lowlevel_server     # run_stdio_async, with our own streams (below)
    try:
        with _claim_stdio(engine.redact) as (stdin, stdout):
            async with stdio_server(stdin=stdin, stdout=stdout) as (read_stream, write_stream):
                await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
    finally:
        await runs.close()


class _RedactedWire(io.TextIOBase):
    """The protocol's side of stdout: each message passes the redactor on its way out."""

    def __init__(self, raw: io.TextIOBase, redact: Callable[[str], str]):
        self._raw, self._redact = raw, redact

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._raw.write(self._redact(text))
        return len(text)

    def flush(self) -> None:
        self._raw.flush()


@contextlib.contextmanager
def _claim_stdio(redact: Callable[[str], str]):
    """The protocol gets private copies of fds 0 and 1; while it runs, fd 0 reads /dev/null and
    fd 1 writes to stderr, so a stray print (ours, a library's, a child's) cannot corrupt the
    protocol. The SDK does the same for a plain sys.stdout, but the CLI's stdout is the
    redacting stream, which hides its byte buffer on purpose."""
    import anyio

    sys.stdout.flush()
    wire_in, wire_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    reader = io.TextIOWrapper(os.fdopen(wire_in, "rb", closefd=False), encoding="utf-8", errors="replace")
    writer = io.TextIOWrapper(os.fdopen(wire_out, "wb", closefd=False), encoding="utf-8", line_buffering=False)
    try:
        yield anyio.wrap_file(reader), anyio.wrap_file(_RedactedWire(writer, redact))
    finally:
        with contextlib.suppress(OSError, ValueError):
            writer.flush()
        os.dup2(wire_in, 0)
        os.dup2(wire_out, 1)
        # The reader thread may still block on wire_in: it is left open (the process ends next).
        os.close(wire_out)
