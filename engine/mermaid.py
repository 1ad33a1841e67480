"""A compiled Graph as a Mermaid flowchart (``agentform graph team/NAME|pipeline/NAME``).

Teams: the manager points at each member, labelled with the tool it calls (delegate edges
are thick); a nested team is a subgraph answered through its manager. A handoff team draws
an edge per handoff between its agents (cycles included), the entry agent rounded, and
"may end" on the agents whose answer can end it. Pipelines: stages
with their needs as edges, routes as dotted edges labelled with their condition, forEach
stages marked, approvals drawn as hexagons. Every ToolServer an agent uses is a
parallelogram, drawn once, joined to each agent node (and each agent or tool stage) that uses
it by a dotted line labelled with the agent's allow/deny filter, if it has one.
"""

from __future__ import annotations

import re

from agentform.engine.graph import Graph, PipelineNode, transfer_tool

_ID_RE = re.compile(r"[^A-Za-z0-9_]")


def to_mermaid(graph: Graph) -> str:
    """The Mermaid ``flowchart`` text of ``graph``."""
    out = ["flowchart TD"]
    uses: list[tuple[str, str, str]] = []   # (node id, tool server key, edge label)
    if graph.kind == "Pipeline":
        _pipeline(graph, graph.pipelines[graph.root], out, prefix="", uses=uses)
    elif graph.kind == "Team":
        _team(graph, graph.root, out, set(), uses=uses)
    else:
        agent = graph.agents[graph.root]
        node = _id("a", graph.root)
        out.append(f'  {node}["{_text(agent.name)}<br/>model {_text(agent.model)}"]')
        uses.extend(_servers_of(graph, graph.root, node))
    _tool_servers(graph, uses, out)
    return "\n".join(out) + "\n"


def _servers_of(graph: Graph, agent_key: str, node: str) -> list[tuple[str, str, str]]:
    """The ToolServers agent ``agent_key`` uses, as (its node id, server key, filter label)."""
    agent = graph.agents.get(agent_key)
    if agent is None:
        return []
    found = []
    for use in agent.spec.tools:
        if use.builtin is not None:   # an in-process server (engine/runtime/builtins/)
            found.append((node, f"builtin:{use.builtin}", f"hosts {', '.join(use.hosts)}" if use.hosts else ""))
            continue
        if use.tool_server is None:
            continue
        key = "/".join(use.tool_server.resolve(agent.namespace))
        label = (f"allow {', '.join(use.allow)}" if use.allow is not None else
                 f"deny {', '.join(use.deny)}" if use.deny is not None else "")
        found.append((node, key, label))
    return found


def _tool_servers(graph: Graph, uses: list[tuple[str, str, str]], out: list[str]) -> None:
    drawn: set[str] = set()
    for node, key, label in uses:
        server = _id("ts", key)
        if key not in drawn:
            drawn.add(key)
            spec = graph.tool_servers.get(key)
            transport = f"<br/>{spec.transport}" if spec is not None else ""
            if key.startswith("builtin:"):
                out.append(f'  {server}[/"built-in {_text(key.split(":", 1)[1])}"/]')
            else:
                out.append(f'  {server}[/"tool server {_text(key.split("/", 1)[1])}{transport}"/]')
        out.append(f'  {node} -.-|"{_text(label)}"| {server}' if label else f"  {node} -.- {server}")


def _id(prefix: str, key: str) -> str:
    return f"{prefix}_{_ID_RE.sub('_', key)}"


def _text(text: str) -> str:
    """Label text safe inside Mermaid quotes."""
    return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
            .replace(">", "#gt;").replace("|", "#124;").replace("\n", " "))


def _team(graph: Graph, team_key: str, out: list[str], seen: set[str], indent: str = "  ",
          uses: list[tuple[str, str, str]] | None = None) -> str:
    """Draw a team as a subgraph; returns the node id that answers for it (its manager)."""
    team = graph.teams[team_key]
    manager_id = _id("a", f"{team_key}.{team.manager}")
    if team_key in seen:
        return manager_id
    seen.add(team_key)
    if team.mode == "handoff":
        return _handoff_team(graph, team_key, out, indent, uses)
    out.append(f'{indent}subgraph {_id("t", team_key)}["team {_text(team.name)}"]')
    out.append(f'{indent}  {manager_id}(["{_text(graph.agents[team.manager].name)} (manager)"])')
    if uses is not None:
        uses.extend(_servers_of(graph, team.manager, manager_id))
    edges: list[str] = []
    for member in team.members:
        if member.kind == "Agent":
            member_id = _id("a", f"{team_key}.{member.target}")
            out.append(f'{indent}  {member_id}["{_text(member.name)}"]')
            if uses is not None:
                uses.extend(_servers_of(graph, member.target, member_id))
        else:
            member_id = _team(graph, member.target, out, seen, indent + "  ", uses)
        arrow = "==>" if member.mode == "delegate" else "-->"
        edges.append(f'{indent}{manager_id} {arrow}|"{_text(member.tool)}"| {member_id}')
    out.append(f"{indent}end")
    out.extend(edges)
    return manager_id


def _handoff_team(graph: Graph, team_key: str, out: list[str], indent: str,
                  uses: list[tuple[str, str, str]] | None) -> str:
    """A handoff team: its agents, and an edge for each handoff (``transfer_to_*``) between them."""
    team = graph.teams[team_key]
    entry = graph.agents[team.manager].name
    agents = {entry: (team.manager, team.handoffs or [])}
    agents.update({m.name: (m.target, m.handoffs or []) for m in team.members})
    ids = {name: _id("a", f"{team_key}.{key}") for name, (key, _) in agents.items()}
    out.append(f'{indent}subgraph {_id("t", team_key)}["team {_text(team.name)} (handoff)"]')
    for name, (key, _) in agents.items():
        ends = team.finishers is None or name in team.finishers
        label = _text(name) + (" (entry)" if name == entry else "") + ("<br/>may end" if ends else "")
        out.append(f'{indent}  {ids[name]}(["{label}"])' if name == entry else f'{indent}  {ids[name]}["{label}"]')
        if uses is not None:
            uses.extend(_servers_of(graph, key, ids[name]))
    out.append(f"{indent}end")
    for name, (_, targets) in agents.items():
        for target in targets:
            if target in ids:
                out.append(f'{indent}{ids[name]} ==>|"{_text(transfer_tool(target))}"| {ids[target]}')
    return ids[entry]


def _pipeline(graph: Graph, node: PipelineNode, out: list[str], prefix: str,
              uses: list[tuple[str, str, str]] | None = None) -> None:
    key = f"{node.namespace}/{node.name}"
    ids = {name: _id("s", f"{prefix}{key}.{name}") for name in node.order}
    for stage in node.spec.stages:
        edge = node.targets[stage.name]
        parts = [stage.name]
        if edge.kind in ("agent", "team", "pipeline") and edge.target:
            parts.append(f"{edge.kind} {edge.target.split('/', 1)[1]}")
        elif edge.kind == "tool" and stage.tool is not None:
            parts.append(f"tool {stage.tool.name}")
        elif edge.kind == "approval":
            parts.append("approval")
        if stage.for_each:
            parts.append(f"forEach {stage.for_each}")
        if stage.when:
            parts.append(f"when {stage.when}")
        if stage.on_exhausted is not None:
            parts.append(f"maxVisits {stage.max_visits}, then {stage.on_exhausted}")
        label = "<br/>".join(_text(p) for p in parts)
        sid = ids[stage.name]
        if uses is not None and edge.kind == "agent" and edge.target:
            uses.extend(_servers_of(graph, edge.target, sid))
        elif uses is not None and edge.kind == "tool" and edge.target:
            uses.append((sid, edge.target, ""))
        if edge.kind == "approval":
            out.append(f'  {sid}{{{{"{label}"}}}}')
        elif stage.for_each:
            out.append(f'  {sid}[["{label}"]]')
        else:
            out.append(f'  {sid}["{label}"]')
    for stage in node.spec.stages:
        for need in stage.needs:
            if need in ids:
                out.append(f"  {ids[need]} --> {ids[stage.name]}")
        for route in stage.routes:
            if route.goto in ids:
                out.append(f'  {ids[stage.name]} -.->|"{_text(route.when)}"| {ids[route.goto]}')
