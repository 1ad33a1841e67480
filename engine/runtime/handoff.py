"""Handoff mode: the conversation moves among a team's agents until one answers without a tool call.

The manager is the entry agent. Each agent of the team gets ``transfer_to_<name>(reason)`` for
the agents its ``handoffs`` list (the manager's: the team's ``handoffs``, by default every
member). A transfer ends the active agent's invocation; the next agent gets the whole
conversation (without the transferring turn) and a note of who handed over and why. A reply
with no tool call ends the team and is its output (only from a ``finishers`` agent, when the
team lists them). Activations are numbered per team call: the manager speaks at the team's
path, later at ``<team>/<manager>#n``; a member at ``<team>/<member>``, then ``#n``.
``budget.maxHandoffs`` (default 10) bounds the handoffs of one team call.

Resumed, an activation the stream holds is not run again: its transfer is read from its last
recorded turn and the conversation it handed on is rebuilt from its recorded turns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentform.engine.errors import BudgetExceeded, RunError
from agentform.engine.graph import TeamNode, transfer_tool

from .agent_loop import builds_conversation, recorded_messages, run_agent
from .context import join_path, visit_name
from .recorded import Invocation, recorded_of
from .tools import Tool, text_param

if TYPE_CHECKING:
    from .context import RunContext

DEFAULT_MAX_HANDOFFS = 10


@dataclass(slots=True)
class _Handover:
    """What the active agent's transfer asked for (set by its transfer tool, or read from the stream)."""

    to: str | None = None
    reason: str = ""
    conversation: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Agent:
    key: str
    handoffs: tuple[str, ...]
    about: str


def team_agents(ctx: RunContext, node: TeamNode) -> tuple[str, dict[str, _Agent]]:
    """The manager's name and every agent of the handoff team by name."""
    graph = ctx.graph
    manager = graph.agents[node.manager]
    agents = {manager.name: _Agent(node.manager, tuple(node.handoffs or ()),
                                   manager.spec.description or f"the agent {manager.name}")}
    for edge in node.members:
        spec = graph.agents[edge.target].spec
        agents[edge.name] = _Agent(edge.target, tuple(edge.handoffs or ()),
                                   spec.description or f"the agent {edge.name}")
    return manager.name, agents


async def run_handoff_team(ctx: RunContext, key: str, task: str, path: str,
                           conversation: list[dict[str, Any]] | None = None) -> Any:
    """One call of handoff team ``key`` at ``path``: activations until a reply without a transfer."""
    node = ctx.graph.teams[key]
    entry, agents = team_agents(ctx, node)
    limit = (node.budget or {}).get("maxHandoffs", DEFAULT_MAX_HANDOFFS)
    recorded = recorded_of(ctx) if ctx.history else None
    activations: dict[str, int] = {}
    handoffs = 0
    active, convo, asked = entry, conversation, task
    while True:
        n = activations[active] = activations.get(active, 0) + 1
        at = path if active == entry and n == 1 else join_path(path, visit_name(active, n))
        agent = agents[active]
        handover = _Handover()
        targets = {transfer_tool(t): t for t in agent.handoffs}
        tools = {name: _transfer(t, agents[t].about, handover) for name, t in targets.items()}
        output = await run_agent(ctx, agent.key, asked, at, tools=tools, max_parallel=node.max_parallel,
                                 conversation=convo, workspace=node.workspace)
        past = recorded.get(at) if recorded else None
        if handover.to is None and past is not None and past.turns:
            _from_stream(ctx, handover, past, targets, agent.key, _start(ctx, convo, asked, at))
        if handover.to is None:
            if node.finishers is not None and active not in node.finishers:
                raise RunError(f"team {node.name}: {active} answered without handing off, but only "
                               f"{', '.join(node.finishers) or 'no agent'} may end the team (finishers)")
            return output
        handoffs += 1
        if handoffs > limit:
            holder = f"team/{node.name}"
            ctx.emit("budget.exceeded", path, {"budget": "maxHandoffs", "holder": holder,
                                               "limit": limit, "used": handoffs})
            raise BudgetExceeded("maxHandoffs", holder, limit, handoffs)
        if past is None or not past.handed_off:
            ctx.emit("handoff", at, {"from": active, "to": handover.to, "reason": handover.reason})
        convo = [*handover.conversation,
                 {"role": "user", "content": f"(handed over to you by {active}: {handover.reason})"}]
        active, asked = handover.to, handover.reason   # what agent.started shows as its task


def _transfer(target: str, about: str, handover: _Handover) -> Tool:
    async def run(ctx: RunContext, path: str, args: dict, conversation: list, visit: int = 1) -> Any:
        handover.to, handover.reason, handover.conversation = target, args["reason"], conversation
        return f"handed over to {target}"

    name = transfer_tool(target)
    return Tool(name, f"Hand the whole conversation over to {target}, who answers from here. {about}",
                text_param("reason", "why you hand over, and what is expected"), run, "handoff", ("reason",))


def _start(ctx: RunContext, conversation: list[dict[str, Any]] | None, task: str, path: str) -> list[dict[str, Any]]:
    """The messages an activation began with, after its instructions (as the agent loop builds them)."""
    if conversation is not None:
        return list(conversation)
    return [*(ctx.thread_messages if "/" not in path else ()), {"role": "user", "content": task}]


def _from_stream(ctx: RunContext, handover: _Handover, past: Invocation, targets: dict[str, str],
                 agent_key: str, start: list[dict[str, Any]]) -> None:
    """The transfer a recorded activation ended with, and the conversation it handed on."""
    last = past.turns[-1]
    for call in last.data.get("tool_calls") or ():
        target = targets.get(call.get("name"))
        result = last.calls.get(str(call.get("id")))
        if target is None or result is None or result.result is None or "error" in result.result:
            continue
        arguments = call.get("arguments") if isinstance(call.get("arguments"), dict) else {}
        handover.to, handover.reason = target, str(arguments.get("reason", ""))
        break
    if handover.to is None:
        return
    if builds_conversation(ctx.model(ctx.graph.agents[agent_key].model)):
        # the scripted model never reads the conversation: the live loop hands on none either
        handover.conversation = start + recorded_messages(past.turns[:-1])
