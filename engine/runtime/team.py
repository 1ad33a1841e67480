"""Teams: a manager speaks for the team; members are asked (orchestrate) or handed the conversation
(delegate); in handoff mode the conversation moves among the team's agents (handoff.py).

A team call runs the manager at the team's path with one tool per member, under the
team's budget. Delegating hands the member the manager's conversation under the member's
own instructions; the member's ``transfer_back(summary)`` or final answer returns control,
and the manager takes another turn with that as the transfer's result.

The n-th call of one member within one manager invocation (asked or handed over, across
the manager's turns) runs at ``<team path>/<member>#n``, as a stage's n-th visit does; the
agent loop numbers the calls in the order the manager's replies give them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentform.engine.graph import MemberEdge

from .agent_loop import run_agent
from .context import WORKSPACE, enter_scope, join_path, leave_scope, visit_name
from .recorded import recorded_of
from .tools import back_tool, team_tools

if TYPE_CHECKING:
    from .context import RunContext


async def run_team(ctx: RunContext, key: str, task: str, path: str, *,
                   conversation: list[dict[str, Any]] | None = None, delegated: bool = False) -> Any:
    """One call of team ``key`` at ``path``: its manager, with its member tools, under the team budget.

    A team in handoff mode runs as handoff.py says (handed a conversation by a delegating
    manager, it answers it as any handoff team does: no ``transfer_back``)."""
    node = ctx.graph.teams[key]
    if node.mode == "handoff":
        from .handoff import run_handoff_team

        async def work() -> Any:
            return await run_handoff_team(ctx, key, task, path, conversation)
    else:
        tools = team_tools(ctx.graph, key)
        if delegated:
            back = back_tool()
            tools = {**tools, back.name: back}

        async def work() -> Any:
            return await run_agent(ctx, node.manager, task, path, tools=tools, max_parallel=node.max_parallel,
                                   conversation=conversation, workspace=node.workspace)

    token = enter_scope(node.vars)   # the team's vars, for every agent inside
    room = WORKSPACE.set(node.workspace) if node.workspace else None   # its workspace, likewise
    try:
        return await ctx.in_scope(path, f"team/{node.name}", ctx.budget_of(node.budget), work)
    finally:
        if room is not None:
            WORKSPACE.reset(room)
        leave_scope(token)


async def delegate_to(ctx: RunContext, edge: MemberEdge, reason: str, conversation: list[dict[str, Any]],
                      manager_path: str, visit: int = 1) -> Any:
    """Hand the conversation to a delegate member (its ``visit``-th activation in this manager
    invocation runs at ``member#visit``); returns its summary or final answer."""
    path = join_path(manager_path, visit_name(edge.name, visit))
    manager = _speaker(manager_path)
    # Resumed mid-delegation: the handover is on record already (the member started).
    past = recorded_of(ctx).get(path) if ctx.history else None
    if past is None or not past.started:
        ctx.emit("handoff", manager_path, {"from": manager, "to": edge.name, "reason": reason})
    handed = [*conversation, {"role": "user", "content": f"(handed over to you: {reason})"}]
    if edge.kind == "Team":
        result = await run_team(ctx, edge.target, reason, path, conversation=handed, delegated=True)
    else:
        back = back_tool()
        result = await run_agent(ctx, edge.target, reason, path, tools={back.name: back},
                                 conversation=handed)
    if past is None or not past.handed_back:
        ctx.emit("handoff", path, {"from": edge.name, "to": manager, "summary": result})
    return result


def _speaker(path: str) -> str:
    # handoff data name agents and teams; which call it was is in the event's path
    return path.rsplit("/", 1)[-1].split("#", 1)[0]
