"""The agents team-control creates in a run: their records, their commands (background tasks),
the budget view that charges them to their creator, and their rebuild on a resumed run.

team_control.py is the MCP surface over this; everything here answers one creator (a
``Caller``: node, path, budget scopes at the call) and raises ``ToolError`` for what the
model should read and correct.
"""

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

from agentform.engine.graph import AgentNode
from agentform.engine.redaction import redact_data
from agentform.specs.agent import AgentSpec, ToolUse

from .. import budget as budgets
from ..context import join_path, visit_name
from . import Caller

NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_AGENTS = 64            # created agents per run: a model in a loop must not make thousands
MAX_WAIT = 300.0           # seconds check_agent_status may wait for a command to finish
_TEXT = 2000               # characters of one log entry's text that read_logs returns


@dataclass(eq=False)
class Command:
    handle: str
    path: str
    task: str
    usage: budgets.Scope           # counts this command's turns, tokens and cost
    status: str = "running"        # running | succeeded | failed | interrupted
    began: bool = False            # its agent was started (a command cancelled before that has no events)
    output: Any = None
    error: str | None = None
    runner: asyncio.Task | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"handle": self.handle, "path": self.path, "status": self.status}
        if self.status == "succeeded":
            out["output"] = self.output
        elif self.error is not None:
            out["error"] = self.error
        out.update(tokens=self.usage.tokens, cost_usd=round(self.usage.cost_usd, 10))
        return out


@dataclass(eq=False)
class Created:
    name: str
    creator: str                   # the creator's path
    node: AgentNode
    tools: list[str]
    commands: list[Command] = field(default_factory=list)


class _Creator(budgets.Scope):
    """The creator's own budget seen from a created agent's chain: tokens and cost count
    against it (its turns do not: maxTurns is about the creator's own replies)."""

    __slots__ = ("own",)

    def __init__(self, own: budgets.Scope, parent: budgets.Scope | None):
        # Scope.__init__ would write the counters through the properties below: set fields by hand.
        self.own = own
        self.holder, self.kind, self.path, self.parent = own.holder, "created", own.path, parent
        self.depth = 0 if parent is None else parent.depth + 1
        self.limits = [lim for lim in own.limits if lim[0] in ("maxTokens", "maxCostUsd")]
        self.timeout, self.turns, self.steps, self.max_steps = None, 0, 0, None

    tokens = property(lambda s: s.own.tokens, lambda s, v: setattr(s.own, "tokens", v))
    cost_usd = property(lambda s: s.own.cost_usd, lambda s, v: setattr(s.own, "cost_usd", v))
    exceeded = property(lambda s: s.own.exceeded, lambda s, v: setattr(s.own, "exceeded", v))


class TeamControl:
    """The created agents of one run, by creator path and name."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.agents: dict[tuple[str, str], Created] = {}
        self.counts: dict[tuple[str, str], int] = {}   # commands so far per (creator, name), deletes included
        self.made = 0
        self.restored: set[str] = set()                # creator paths whose past is rebuilt

    async def restore(self, caller: Caller) -> None:
        """On a resumed run, rebuild the caller's agents and commands from the stream (once per
        creator path): what was created and not deleted exists again, finished commands report
        what they ended with, and a command that was running when the run stopped runs again
        (its agent goes on from the stream, as any resumed invocation does)."""
        if caller.path in self.restored:
            return
        self.restored.add(caller.path)
        if not self.ctx.history:
            return
        calls: dict[str, dict[str, Any]] = {}
        for event in self.ctx.history:
            if event.path != caller.path or event.type not in ("tool.call", "tool.result"):
                continue
            data = event.data
            if event.type == "tool.call":
                if data.get("name") in ("create_agent", "delete_agent", "command_agent"):
                    calls[data["id"]] = data.get("arguments") or {}
                continue
            arguments = calls.pop(data.get("id"), None)
            if arguments is None or "error" in data:
                continue
            with contextlib.suppress(ToolError):
                if data["name"] == "create_agent":
                    await self.create_agent(caller, arguments["name"], arguments.get("instructions", ""),
                                            arguments.get("model"), arguments.get("tools"))
                elif data["name"] == "delete_agent":
                    self.agents.pop((caller.path, arguments["name"]), None)
                else:
                    self._restore_command(caller, arguments, data["output"])

    def _restore_command(self, caller: Caller, arguments: dict[str, Any], output: dict[str, Any]) -> None:
        created = self._agent(caller, arguments["name"])
        handle, path = output["handle"], output["path"]
        n = int(handle.rsplit("#", 1)[1])
        self.counts[(caller.path, created.name)] = max(n, self.counts.get((caller.path, created.name), 0))
        command = Command(handle, path, arguments.get("task", ""),
                          budgets.Scope(f"created/{created.name}", None, self._chain(caller)))
        created.commands.append(command)
        for event in self.ctx.history:
            if event.path == path and event.type == "agent.completed":
                command.status, command.output = "succeeded", event.data.get("output")
            elif event.path == path and event.type == "agent.failed":
                error = event.data.get("error") or ""
                command.status, command.error = ("interrupted" if error.startswith("interrupted") else "failed"), error
            elif event.type == "usage" and (event.path == path or event.path.startswith(path + "/")):
                command.usage.tokens += event.data.get("tokens_in", 0) + event.data.get("tokens_out", 0)
                command.usage.cost_usd += event.data.get("cost_usd", 0.0)
        if command.status == "running":
            # its recorded replies are charged again as its invocation plays them back
            command.usage.tokens, command.usage.cost_usd = 0, 0.0
            command.runner = asyncio.get_running_loop().create_task(self._execute(created, command))
        else:
            command.done.set()

    # -- the tools -----------------------------------------------------------------------------
    async def create_agent(self, caller: Caller, name: str, instructions: str, model: str | None,
                           tools: list[str] | None) -> dict[str, Any]:
        if not NAME.fullmatch(name) or len(name) > 63:
            raise ToolError(f"'{name}' is not a valid agent name: lowercase letters, digits and '-', "
                            "starting and ending with a letter or digit, at most 63 characters")
        self._check_free(caller, name)
        members = self._member_names(caller.node)
        if name in members:
            raise ToolError(f"'{name}' is a member of your team; its path would clash: pick another name")
        model_key = self._model(caller.node, model)
        uses = await self._tools(caller.node, sorted(set(tools or [])))
        self._check_free(caller, name)   # again: the calls of one turn run concurrently
        source = instructions.replace("{", "{{ '{' }}")  # the model's text, never a template
        spec = AgentSpec.model_construct(model=caller.node.spec.model.model_copy(
            update={"name": model_key.split("/", 1)[1], "namespace": model_key.split("/", 1)[0]}),
            description="", instructions=source, tools=uses, output=None, budget=None)
        node = AgentNode(name=name, namespace=caller.node.namespace, model=model_key, spec=spec)
        created = Created(name, caller.path, node, sorted(set(tools or [])))
        self.agents[(caller.path, name)] = created
        self.made += 1
        return {"agent": name, "path": join_path(caller.path, name), "model": model_key.split("/", 1)[1],
                "tools": created.tools}

    async def command_agent(self, caller: Caller, name: str, task: str) -> dict[str, Any]:
        created = self._agent(caller, name)
        n = self.counts[(caller.path, name)] = self.counts.get((caller.path, name), 0) + 1
        command = Command(f"{name}#{n}", join_path(caller.path, visit_name(name, n)), task,
                          budgets.Scope(f"created/{name}", None, self._chain(caller)))
        created.commands.append(command)
        command.runner = asyncio.get_running_loop().create_task(self._execute(created, command))
        return {"handle": command.handle, "path": command.path, "status": "running"}

    async def check_agent_status(self, caller: Caller, handle: str, wait: float) -> dict[str, Any]:
        command = self._command(caller, handle)
        if wait > 0 and command.status == "running":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(command.done.wait(), min(wait, MAX_WAIT))
        return command.report()

    async def read_logs(self, caller: Caller, name: str, tail: int) -> dict[str, Any]:
        base = name.split("#", 1)[0]
        created = self._agent(caller, base)
        paths = [c.path for c in created.commands if "#" not in name or c.handle == name]
        if not paths and "#" in name:
            raise ToolError(f"no command {name}; {self._handles(created)}")
        await self.ctx.durable()
        events = await asyncio.to_thread(self.ctx.store.read_events, self.ctx.run_id, 0)
        entries = [_entry(e) for e in events if any(e.path == p or e.path.startswith(p + "/") for p in paths)]
        entries = [e for e in entries if e is not None]
        return {"agent": base, "entries": entries[-max(1, tail):], "total": len(entries)}

    async def list_agents(self, caller: Caller) -> dict[str, Any]:
        return {"agents": [{"name": a.name, "path": join_path(a.creator, a.name),
                            "model": a.node.model.split("/", 1)[1], "tools": a.tools,
                            "commands": [{"handle": c.handle, "status": c.status} for c in a.commands]}
                           for (creator, _), a in self.agents.items() if creator == caller.path]}

    async def delete_agent(self, caller: Caller, name: str) -> dict[str, Any]:
        created = self._agent(caller, name)
        stopped = await self._interrupt([c for c in created.commands if c.status == "running"],
                                        f"deleted by {_who(caller)}")
        del self.agents[(caller.path, name)]
        return {"deleted": name, "interrupted": [c.handle for c in stopped]}

    async def interrupt_agent(self, caller: Caller, handle: str) -> dict[str, Any]:
        if "#" in handle:
            running = [self._command(caller, handle)]
        else:
            running = self._agent(caller, handle).commands
        running = [c for c in running if c.status == "running"]
        if not running:
            raise ToolError(f"{handle} has no command running")
        stopped = await self._interrupt(running, f"interrupted by {_who(caller)}")
        return {"interrupted": [c.handle for c in stopped]}

    async def report_cost(self, caller: Caller) -> dict[str, Any]:
        rows, tokens, cost = [], 0, 0.0
        for (creator, _), a in self.agents.items():
            if creator != caller.path:
                continue
            t = sum(c.usage.tokens for c in a.commands)
            usd = sum(c.usage.cost_usd for c in a.commands)
            rows.append({"agent": a.name, "commands": len(a.commands), "tokens": t, "cost_usd": round(usd, 10)})
            tokens, cost = tokens + t, cost + usd
        return {"agents": rows, "tokens": tokens, "cost_usd": round(cost, 10)}

    # -- running created agents ----------------------------------------------------------------
    async def _execute(self, created: Created, command: Command) -> None:
        from ..agent_loop import run_agent

        command.began = True
        budgets.current.set(command.usage)   # this task's own context: the creator's chain, counted
        budgets.agent_scope.set(None)
        try:
            command.output = await run_agent(self.ctx, f"{created.node.namespace}/{created.name}", command.task,
                                             command.path, node=created.node)
            command.status = "succeeded"
        except asyncio.CancelledError:
            if command.status == "running":  # not ours: the run itself is being cancelled
                command.status, command.error = "interrupted", "the run was cancelled"
                raise
        except Exception as exc:  # noqa: BLE001 - the creator reads it with check_agent_status
            command.status, command.error = "failed", redact_data(str(exc) or type(exc).__name__)
        finally:
            command.done.set()

    async def _interrupt(self, commands: list[Command], why: str) -> list[Command]:
        for command in commands:
            command.status, command.error = "interrupted", why
            if command.runner is not None:
                command.runner.cancel()
        for command in commands:
            if command.runner is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await command.runner
            if not command.began:
                continue
            # run_agent leaves a cancelled invocation open: close it in the stream.
            self.ctx.emit("agent.failed", command.path, {"agent": command.path.rsplit("/", 1)[-1].split("#")[0],
                                                         "error": why})
        return commands

    async def close(self) -> None:
        """The run ends: interrupt what still runs, so nothing is written after its end."""
        running = [c for a in self.agents.values() for c in a.commands if c.status == "running"]
        if running:
            await self._interrupt(running, "interrupted: the run ended")

    # -- helpers -------------------------------------------------------------------------------
    def _chain(self, caller: Caller) -> budgets.Scope | None:
        current, own = caller.scopes
        return _Creator(own, current) if own is not None else current

    def _check_free(self, caller: Caller, name: str) -> None:
        if (caller.path, name) in self.agents:
            raise ToolError(f"an agent named '{name}' already exists at {join_path(caller.path, name)}: "
                            "pick another name, or delete_agent it first")
        if self.made >= MAX_AGENTS:
            raise ToolError(f"this run has made {MAX_AGENTS} agents, the most it may make")

    def _agent(self, caller: Caller, name: str) -> Created:
        created = self.agents.get((caller.path, name))
        if created is None:
            mine = sorted(n for (creator, n) in self.agents if creator == caller.path)
            raise ToolError(f"you have no agent named '{name}'; "
                            + (f"your agents: {', '.join(mine)}" if mine else "create_agent makes one"))
        return created

    def _command(self, caller: Caller, handle: str) -> Command:
        name = handle.split("#", 1)[0]
        created = self._agent(caller, name)
        if "#" not in handle and created.commands:
            return created.commands[-1]
        for command in created.commands:
            if command.handle == handle:
                return command
        raise ToolError(f"no command {handle}; {self._handles(created)}")

    @staticmethod
    def _handles(created: Created) -> str:
        if not created.commands:
            return f"{created.name} has not been commanded yet (command_agent)"
        return f"the handles of {created.name}: {', '.join(c.handle for c in created.commands)}"

    def _member_names(self, node: AgentNode) -> set[str]:
        key = f"{node.namespace}/{node.name}"
        return {m.name for t in self.ctx.graph.teams.values() if t.manager == key for m in t.members}

    def _model(self, node: AgentNode, wanted: str | None) -> str:
        """The Model key a created agent may use: the creator's, or one of its fallbacks."""
        allowed, todo = [], [node.model]
        while todo:
            key = todo.pop(0)
            if key in allowed or key not in self.ctx.graph.models:
                continue
            allowed.append(key)
            spec = self.ctx.graph.models[key].spec
            todo.extend("/".join(ref.resolve(key.split("/", 1)[0])) for ref in spec.fallbacks)
        if wanted is None:
            return node.model
        key = wanted if "/" in wanted else f"{node.namespace}/{wanted}"
        if key not in allowed:
            names = ", ".join(k.split("/", 1)[1] for k in allowed)
            raise ToolError(f"model '{wanted}' is not yours to give: a created agent may use {names}")
        return key

    async def _tools(self, node: AgentNode, wanted: list[str]) -> list[ToolUse]:
        """The creator's tool entries narrowed to ``wanted`` (names the creator has itself)."""
        if not wanted:
            return []
        servers = self.ctx.tool_servers()
        uses: list[ToolUse] = []
        have: set[str] = set()
        for use in node.spec.tools:
            offered = set(await servers.tools_for(_OneUse(node, use)))
            have |= offered
            mine = sorted(offered.intersection(wanted))
            if not mine:
                continue
            if use.tool_server is not None:
                uses.append(ToolUse(tool_server=use.tool_server, allow=mine))
            else:
                # allow/deny are a toolServer entry's in manifests; here the engine narrows a built-in
                # the same way (mcp_tools honours ``allow`` on any entry), without the manifest check.
                uses.append(ToolUse.model_construct(builtin=use.builtin, knowledge=use.knowledge,
                                                    tool_server=None, allow=mine, deny=None))
        missing = [n for n in wanted if n not in have]
        if missing:
            yours = ", ".join(sorted(have)) or "none (team tools such as ask_* cannot be given)"
            raise ToolError(f"tool(s) {', '.join(missing)} are not yours to give; your tools: {yours}")
        return uses


@dataclass(frozen=True)
class _OneUse:
    """An agent with one of its tool entries: what tools_for lists for that entry alone."""

    agent: AgentNode
    use: ToolUse

    @property
    def namespace(self) -> str:
        return self.agent.namespace

    @property
    def name(self) -> str:
        return self.agent.name

    @property
    def spec(self) -> Any:
        return _Tools([self.use])


@dataclass(frozen=True)
class _Tools:
    tools: list[ToolUse]


def _who(caller: Caller) -> str:
    return caller.path or caller.node.name


def _entry(event: Any) -> dict[str, Any] | None:
    """One stream event as read_logs shows it, or None for the ones it leaves out (deltas, usage)."""
    data, kind = event.data, event.type
    # no seq: parallel work numbers events differently from run to run, and a replay must read the same
    out: dict[str, Any] = {"path": event.path, "type": kind}
    if kind == "message.completed":
        if data.get("content") is not None:
            out["content"] = _clip(data["content"])
        if data.get("tool_calls"):
            out["tool_calls"] = [c.get("name") for c in data["tool_calls"]]
    elif kind == "tool.call":
        out.update(name=data.get("name"), arguments=_clip(data.get("arguments")))
    elif kind == "tool.result":
        out["name"] = data.get("name")
        out.update({"error": _clip(data["error"])} if "error" in data else {"output": _clip(data.get("output"))})
    elif kind == "agent.started":
        out["task"] = _clip(data.get("task"))
    elif kind == "agent.completed":
        out["output"] = _clip(data.get("output"))
    elif kind == "agent.failed":
        out["error"] = _clip(data.get("error"))
    else:
        return None
    return redact_data(out)


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _TEXT:
        return value[:_TEXT] + f"... ({len(value) - _TEXT} more characters)"
    return value
