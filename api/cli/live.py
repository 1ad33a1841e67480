"""The live terminal view of ``run``: the agent tree with status, tool calls in flight, tokens, cost,
and the run's tool servers while they start (a stdio server can take seconds).

Fed by the run's ``on_event`` callback (same thread as the run), drawn by rich's ``Live``
a few times a second; only imported when stdout is a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text
from rich.tree import Tree

from agentform import printable

_MARKS = {"running": ("●", "yellow"), "completed": ("✓", "green"), "failed": ("✗", "red")}


@dataclass
class _Node:
    agent: str = ""
    status: str = "running"
    tools: dict[str, str] = field(default_factory=dict)   # call id -> tool name, in flight
    tokens: int = 0
    cost: float = 0.0
    note: str = ""


class LiveView:
    """Collects events into a tree of paths and renders it."""

    def __init__(self, target: str):
        self.target = target
        self.run_id = ""
        self.nodes: dict[str, _Node] = {}
        self.status = "starting"
        self.tokens = 0
        self.cost = 0.0
        self.servers: dict[str, str] = {}   # tool server key -> "starting" | "ready, N tools"
        self.console = Console(stderr=True)
        self._live = Live(console=self.console, refresh_per_second=8, transient=False,
                          get_renderable=self.render)

    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        self._live.stop()

    def on_event(self, event: Any) -> None:
        t, d, path = event.type, event.data, event.path
        if t == "run.started":
            self.run_id = event.run_id
            self.status = "running"
        elif t.startswith("run."):
            self.status = t.split(".", 1)[1]
        elif t in ("agent.started", "stage.started"):
            node = self.nodes.setdefault(path, _Node())
            node.agent, node.status = d.get("agent", node.agent or path.rsplit("/", 1)[-1]), "running"
        elif t in ("agent.completed", "stage.completed"):
            self.nodes.setdefault(path, _Node()).status = "completed"
        elif t in ("agent.failed", "stage.failed"):
            node = self.nodes.setdefault(path, _Node())
            # rich strips BEL and CR but not ESC or bidi controls: escape what the error echoes
            node.status, node.note = "failed", printable(str(d.get("error", "")), one_line=True)[:80]
        elif t == "tool.call":
            self.nodes.setdefault(path, _Node()).tools[d.get("id", "")] = d.get("name", "")
        elif t == "tool.result":
            self.nodes.setdefault(path, _Node()).tools.pop(d.get("id", ""), None)
        elif t == "usage":
            node = self.nodes.setdefault(path, _Node())
            used = d.get("tokens_in", 0) + d.get("tokens_out", 0)
            node.tokens += used
            node.cost += d.get("cost_usd", 0.0)
            self.tokens += used
            self.cost += d.get("cost_usd", 0.0)
        elif t == "budget.exceeded":
            self.nodes.setdefault(path, _Node()).note = f"budget {d.get('budget')} exceeded"
        elif t == "toolserver.started":
            self.servers[str(d.get("server", ""))] = "starting"
        elif t == "toolserver.ready":
            self.servers[str(d.get("server", ""))] = f"ready, {len(d.get('tools') or [])} tools"

    def render(self) -> Any:
        head = Text.assemble((f"{self.target} ", "bold"), (f"run {self.run_id} ", "dim"),
                             (self.status, "cyan"), f"  {self.tokens} tokens  ${self.cost:.4f}")
        tree = Tree(head)
        branches: dict[str, Tree] = {"": tree}
        # Insertion order puts every parent before its children (a child starts after it);
        # a snapshot, since the run's thread adds nodes while rich's thread draws.
        for path, node in list(self.nodes.items()):
            parent = branches.get(path.rsplit("/", 1)[0] if "/" in path else "", tree)
            mark, style = _MARKS.get(node.status, ("·", "white"))
            label = Text.assemble((f"{mark} ", style), (path.rsplit("/", 1)[-1], "bold"))
            if node.agent and node.agent != path.rsplit("/", 1)[-1]:
                label.append(f" ({node.agent})", "dim")
            if node.tokens:
                label.append(f"  {node.tokens} tok ${node.cost:.4f}", "dim")
            if node.tools:
                label.append("  → " + ", ".join(sorted(set(node.tools.values()))), "yellow")
            if node.note:
                label.append(f"  {node.note}", "red")
            branches[path] = parent.add(label)
        servers = []
        for key, state in list(self.servers.items()):
            mark, style = _MARKS["running" if state == "starting" else "completed"]
            servers.append(Text.assemble((f"{mark} ", style), (f"tool server {key} ", "bold"), (state, "dim")))
        return Group(tree, *servers)
