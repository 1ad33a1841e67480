"""ToolServer operator: `apply` reaches each server once, lists its tools and pins them.

`validate` and `plan` never start a server (``observe`` returns None): a pull request's YAML
must not run commands in CI. `apply` starts a stdio server, or connects to an http/sse one,
exactly as a run does (engine/runtime/mcp_tools.py, with its environment rules and stderr
log), lists its tools and stops it; the hash of each tool's definition goes into
``ctx.tool_pins``, which the reconciler puts into the revision and every graph that uses the
server (engine/toolpins.py). The status (``describe``) lists the tools with their hashes.

What `apply` records when the server cannot be reached:

- ``startup: eager``: ``Ready=False`` (``StartFailed``) with the error and the end of the
  server's stderr (redacted): the server is expected to be up, and the apply exits 1.
- ``startup: lazy``: ``Ready=Unknown`` (``NotPinned``): a lazy server may legitimately be
  down at apply (a laptop without the service); its tools are then pinned in each run at its
  first use, and the next apply that reaches it pins them for good.
- a command that needs run context (``{{ run.id }}``): not started at apply
  (``PinnedAtFirstUse``), for the same reason.

Tool names that clash between the servers of one agent, or with a built-in the agent uses,
are reported at apply (``ToolNameClash``), not left for a run to find.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agentform.engine.graph import node_key
from agentform.engine.redaction import redact_text
from agentform.engine.toolpins import listing
from agentform.operators.base import BaseOperator, OperatorContext, failed, ready, register, unknown
from agentform.specs import ResourceKey

# Seconds apply waits for a server to start and list its tools (the first start of a
# `uvx`/`npx` server may fetch a package; a run's own start is not bounded by this).
PROBE_TIMEOUT = 30.0
CLASH = "ToolNameClash"


class ToolServerOperator(BaseOperator):
    kind = "ToolServer"

    def provision(self, ctx: OperatorContext, desired):
        spec = desired.resource.spec
        key = node_key(desired.key.namespace, desired.key.name)
        if needs_run_context(spec):
            return unknown("PinnedAtFirstUse", "its command uses run context ({{ ... }}), so apply does not "
                                               "start it; its tools are pinned in each run at first use")
        pins, error = ctx.tool_probes.pop(key, None) or probe(ctx, desired)
        if pins is not None:
            ctx.tool_pins[key] = pins
            started = "started at apply (startup: eager); " if spec.startup == "eager" else ""
            # Tool names are the server's words: redacted like everything a status holds.
            return ready("Pinned", redact_text(f"{started}{len(pins)} tools pinned: {listing(pins) or '(none)'}"))
        if spec.startup == "eager":
            return failed("StartFailed", error)
        return unknown("NotPinned", "not reachable at apply, so its tools are pinned in each run at first use "
                                    f"until an apply reaches it: {error}")

    def observe(self, ctx: OperatorContext, desired):
        return None  # plan never starts a server; a run reports a changed tool in the status


def needs_run_context(spec: Any) -> bool:
    return spec.transport == "stdio" and any("{{" in part or "{%" in part for part in spec.command or ())


# -- the probe ------------------------------------------------------------------------------------


class _ApplyRun:
    """What mcp_tools.ToolServers reads of a run, for one probe at apply."""

    def __init__(self, graph: Any, home: Any):
        self.graph = graph
        self.home = home
        self.run_id = "apply"
        self.store = None
        self.events: list[tuple[str, str, dict]] = []

    def emit(self, type_: str, path: str, data: dict, *args: Any, **kwargs: Any) -> None:
        self.events.append((type_, path, data))


def probe(ctx: OperatorContext, desired) -> tuple[dict[str, str] | None, str]:
    """Start (or connect to) the server once: (pins, "") or (None, why it failed, redacted)."""
    probe_all(ctx, [desired])
    return ctx.tool_probes.pop(node_key(desired.key.namespace, desired.key.name))


def probe_all(ctx: OperatorContext, items: list) -> None:
    """Probe the servers of ``items`` concurrently (those that need run context are skipped);
    the results go to ``ctx.tool_probes``."""
    items = [d for d in items if not needs_run_context(d.resource.spec)]
    if not items:
        return

    async def every() -> list[tuple[dict[str, str] | None, str]]:
        return list(await asyncio.gather(*(_list_tools(ctx, d) for d in items)))

    # A thread of its own: apply may be called from inside a running event loop (Engine.apply
    # in a notebook or an async test), where asyncio.run is refused.
    with ThreadPoolExecutor(1, thread_name_prefix="toolserver-probe") as pool:
        results = pool.submit(asyncio.run, every()).result()
    for d, (pins, error) in zip(items, results, strict=True):
        ctx.tool_probes[node_key(d.key.namespace, d.key.name)] = (pins, redact_text(error))


async def _list_tools(ctx: OperatorContext, desired) -> tuple[dict[str, str] | None, str]:
    from agentform.engine.graph import Graph
    from agentform.engine.runtime.mcp_tools import ToolServers

    key = node_key(desired.key.namespace, desired.key.name)
    folder = desired.resolved.get("folder")
    graph = Graph(kind="Agent", root=key, tool_servers={key: desired.resource.spec},
                  tool_server_dirs={key: folder} if folder else {}, secrets=_secrets(ctx, desired))
    servers = ToolServers(_ApplyRun(graph, ctx.home))  # type: ignore[arg-type]
    try:
        server = await asyncio.wait_for(servers._server(key), PROBE_TIMEOUT)
        return dict(server.pins), ""
    except TimeoutError:
        return None, f"tool server {key} did not list its tools within {PROBE_TIMEOUT:g}s"
    except Exception as exc:  # noqa: BLE001 - any failure to start is this server's status
        return None, str(exc) or type(exc).__name__
    finally:
        await servers.close()


def _secrets(ctx: OperatorContext, desired) -> dict[str, dict[str, Any]]:
    """The sources of the Secrets the server's env and headers name (resolved only at start)."""
    from agentform.engine.secrets import SecretSource
    from agentform.specs import SecretRef

    spec, ns = desired.resource.spec, desired.key.namespace
    out: dict[str, dict[str, Any]] = {}
    for value in (*spec.env.values(), *spec.headers.values()):
        if isinstance(value, SecretRef):
            sns, sname = value.secret_ref.resolve(ns)
            secret = ctx.desired.get(ResourceKey("Secret", sns, sname))
            if secret is not None:
                out[node_key(sns, sname)] = SecretSource.from_document(secret.document).to_dict()
    return out


# -- clashes --------------------------------------------------------------------------------------


def builtin_tool_names() -> dict[str, tuple[str, ...]]:
    try:
        from agentform.engine.runtime.builtins import tool_names
    except ImportError:  # an engine without in-process built-ins
        return {}
    return tool_names()


def clashes(ctx: OperatorContext, pins: dict[str, dict[str, str]]) -> list[tuple[ResourceKey, ResourceKey | None, str]]:
    """Every agent's tool-name clashes (servers and built-ins): (agent, the ToolServer that
    brought the second name or None for a built-in, message)."""
    from agentform.engine.runtime.mcp_tools import _allowed

    builtins = builtin_tool_names()
    found: list[tuple[ResourceKey, ResourceKey | None, str]] = []
    for d in ctx.desired.values():
        if d.key.kind != "Agent":
            continue
        owners: dict[str, str] = {}  # tool name -> who offers it to this agent
        for use in d.resource.spec.tools:  # type: ignore[attr-defined]
            if use.builtin is not None:
                offered = [(name, f"builtin: {use.builtin}", None) for name in builtins.get(use.builtin, ())]
            elif use.tool_server is not None:
                sns, sname = use.tool_server.resolve(d.key.namespace)
                server = ctx.desired.get(ResourceKey("ToolServer", sns, sname))
                if server is None:
                    continue
                filt = server.resource.spec.tools  # type: ignore[attr-defined]
                offered = [(name, f"toolserver/{sns}/{sname}", ResourceKey("ToolServer", sns, sname))
                           for name in pins.get(node_key(sns, sname), {})
                           if _allowed(name, filt, use.allow, use.deny)]
            else:
                continue
            for name, who, blame in offered:
                if name in owners and owners[name] != who:
                    message = (f"agent {d.key.namespace}/{d.key.name} gets a tool named {name} from both "
                               f"{owners[name]} and {who}; narrow one with tools.allow/deny")
                    found.append((d.key, blame, message))
                owners.setdefault(name, who)
    return found


register(ToolServerOperator())
