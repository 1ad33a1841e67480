"""The tool names the graph gives each agent, so that a script's ``toolCalls`` are checked at
validate rather than failing half-way through a run.

An agent may play several roles (manager of a team, a delegate member, a pipeline stage) and
one script key serves all of them, so a name is accepted when any role offers it: team
tools of the teams it manages, ``transfer_back`` where it (or the team it manages) is a
delegate member, built-ins, knowledge search, and ToolServer tools. A ToolServer whose tools
are not listed by an ``allow`` (on the server or on the agent's entry) cannot be checked
until tool lists are pinned: any name not denied is accepted for that agent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from agentform.engine.graph import TRANSFER_BACK, ask_tool, transfer_tool
from agentform.engine.loader import ManifestSet

BUILTIN_TOOL_NAMES = {
    "workspace": ("read_file", "write_file", "list_files", "run_command"),
    "team-control": ("create_agent", "command_agent", "check_agent_status", "list_agents",
                     "delete_agent", "interrupt_agent", "read_logs", "report_cost"),
    "think": ("think",),
    "todo": ("todo_write", "todo_read"),
    "memory": ("memory_set", "memory_get", "memory_list", "memory_delete"),
    "fetch": ("fetch",),
}
KNOWLEDGE_TOOL = "search_knowledge"

AgentKey = tuple[str, str]


@dataclass
class Offered:
    """What one agent can call: names known for sure, plus one entry per unlisted MCP server."""

    names: set[str] = field(default_factory=set)
    unlisted: list[frozenset[str]] = field(default_factory=list)   # each such server's denied names

    def accepts(self, name: str) -> bool:
        return name in self.names or any(name not in denied for denied in self.unlisted)


def offered_tools(ms: ManifestSet) -> dict[AgentKey, Offered]:
    """Every Agent's tool names across all the roles the manifests give it."""
    offered: dict[AgentKey, Offered] = {}

    def of(key: AgentKey) -> Offered:
        return offered.setdefault(key, Offered())

    managers: dict[AgentKey, AgentKey] = {}   # team -> its manager
    for m in ms.of_kind("Team"):
        managers[m.key.namespace, m.key.name] = m.resource.spec.manager.resolve(m.namespace)  # type: ignore[attr-defined]
    for m in ms.of_kind("Team"):
        spec = m.resource.spec  # type: ignore[attr-defined]
        manager = managers[m.key.namespace, m.key.name]
        if spec.mode == "handoff":   # each agent transfers to the ones it lists (the manager: all by default)
            listed = spec.handoffs if spec.handoffs is not None else [mb.ref.name for mb in spec.members]
            of(manager).names.update(transfer_tool(t) for t in listed)
            for member in spec.members:
                if member.agent is not None:
                    of(member.agent.resolve(m.namespace)).names.update(
                        transfer_tool(t) for t in member.handoffs or ())
            continue
        for member in spec.members:
            mode = member.mode or spec.mode
            name = member.ref.name
            of(manager).names.add(ask_tool(name) if mode == "orchestrate" else transfer_tool(name))
            if mode == "delegate":
                target = member.ref.resolve(m.namespace)
                speaker = target if member.agent is not None else managers.get(target)
                if speaker is not None:
                    of(speaker).names.add(TRANSFER_BACK)
    for m in ms.of_kind("Agent"):
        mine = of((m.namespace, m.name))
        for use in m.resource.spec.tools:  # type: ignore[attr-defined]
            if use.builtin is not None:
                mine.names.update(BUILTIN_TOOL_NAMES.get(use.builtin, ()))
            elif use.knowledge is not None:
                mine.names.add(KNOWLEDGE_TOOL)
            elif use.tool_server is not None:
                _add_server_tools(ms, mine, m.namespace, use)
    return offered


def _add_server_tools(ms: ManifestSet, mine: Offered, namespace: str, use) -> None:
    ns, name = use.tool_server.resolve(namespace)
    server = ms.get("ToolServer", ns, name)
    server_filter = server.resource.spec.tools if server is not None else None  # type: ignore[attr-defined]
    allows = [a for a in (getattr(server_filter, "allow", None), use.allow) if a is not None]
    denied = frozenset((getattr(server_filter, "deny", None) or []) + (use.deny or []))
    if server is None or not allows:
        # An unknown server is reported by the reference check; an unlisted one is unknowable here.
        mine.unlisted.append(denied)
        return
    listed = set(allows[0]).intersection(*allows[1:])
    mine.names.update(listed - denied)


def models_of_agents(ms: ManifestSet) -> dict[AgentKey, set[tuple[str, str]]]:
    """Each Agent's Model and that Model's fallbacks (transitively): whose scripts it may play."""
    fallbacks: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for m in ms.of_kind("Model"):
        fallbacks[m.namespace, m.name] = [ref.resolve(m.namespace) for ref in m.resource.spec.fallbacks]  # type: ignore[attr-defined]
    out: dict[AgentKey, set[tuple[str, str]]] = {}
    for m in ms.of_kind("Agent"):
        seen: set[tuple[str, str]] = set()
        todo = [m.resource.spec.model.resolve(m.namespace)]  # type: ignore[attr-defined]
        while todo:
            model = todo.pop()
            if model not in seen:
                seen.add(model)
                todo.extend(fallbacks.get(model, ()))
        out[m.namespace, m.name] = seen
    return out


class ToolCallCheck:
    """Checks the ``toolCalls`` names of scripts against what their agents are offered.

    Built lazily on the first script that has tool calls, once per validate.
    """

    def __init__(self, ms: ManifestSet):
        self.ms = ms
        self._offered: dict[AgentKey, Offered] | None = None
        self._models: dict[AgentKey, set[tuple[str, str]]] = {}
        self._scripts: dict[object, set[tuple[str, str]]] = {}

    def _prepare(self) -> None:
        from agentform.specs.model import SCRIPTED

        self._offered = offered_tools(self.ms)
        self._models = models_of_agents(self.ms)
        for m in self.ms.of_kind("Model"):
            spec = m.resource.spec  # type: ignore[attr-defined]
            if spec.model == SCRIPTED and spec.script:
                self._scripts.setdefault((m.base_dir / spec.script).resolve(), set()).add((m.namespace, m.name))

    def __call__(self, script_path, agent: str, turns) -> Iterator[tuple[int, int, str, str]]:
        """(turn index, call index, name, message) for each call no agent playing this key can make."""
        if not any(t.tool_calls for t in turns):
            return
        if self._offered is None:
            self._prepare()
        assert self._offered is not None
        models = self._scripts.get(script_path, set())
        players = [key for key, used in self._models.items() if key[1] == agent and used & models]
        if not players:
            return   # no agent plays these turns with this script: nothing to check them against
        offers = [self._offered.get(key, Offered()) for key in players]
        known = sorted(set().union(*(o.names for o in offers)))
        for i, turn in enumerate(turns):
            for j, call in enumerate(turn.tool_calls):
                if any(o.accepts(call.name) for o in offers):
                    continue
                denied = any(call.name in d for o in offers for d in o.unlisted)
                yield i, j, call.name, _message(agent, call.name, known, denied)


def _message(agent: str, name: str, known: list[str], denied: bool) -> str:
    from .suggest import did_you_mean

    if denied:
        return f"agent '{agent}' has no tool '{name}': a deny list of its tool servers removes it"
    if not known:
        return (f"agent '{agent}' has no tool '{name}': it has no tools at all (no team it manages, "
                "no tools: entry, not a delegate member)")
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    twin = _other_mode(name, known)
    hint = f" (did you mean '{twin}'? the member's mode decides which)" if twin else did_you_mean(name, known)
    return f"agent '{agent}' has no tool '{name}'{hint}; its tools: {shown}"


def _other_mode(name: str, known: list[str]) -> str | None:
    """``transfer_to_x`` for ``ask_x`` (and back): the member is there, in the other mode."""
    for wrong, right in (("ask_", "transfer_to_"), ("transfer_to_", "ask_")):
        if name.startswith(wrong) and right + name[len(wrong):] in known:
            return right + name[len(wrong):]
    return None
