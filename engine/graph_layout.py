"""A compiled graph laid out for an SVG picture (the web view's graph page), from its Mermaid text.

The Mermaid text that engine/mermaid.py writes is the one description of the picture; this
reads back the small subset it writes (``subgraph``/``end``, nodes ``ID["label"]`` in five
shapes, edges ``-->``, ``==>``, ``-.-``, ``-.->`` with an optional ``|"label"|``) and places it
in layers, top down: a node sits one layer below the lowest node that points at it. Route
edges (``-.->``, a loop back to an earlier stage) and edges that close a cycle (a handoff
back) do not place nodes; they are drawn as curves on the side. Within a layer, nodes keep
the order Mermaid declares them in, then move towards the mean position of their parents.
No browser-side library is needed, so the page stays small and works offline.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["GraphLayout", "layout_mermaid"]

_NODE = re.compile(r'^\s*(\w+)(\[\[|\[/|\(\[|\{\{|\[)"(.*)"(\]\]|/\]|\]\)|\}\}|\])\s*$')
_EDGE = re.compile(r'^\s*(\w+)\s+(-->|==>|-\.->|-\.-)(?:\|"(.*)"\|)?\s+(\w+)\s*$')
_GROUP = re.compile(r'^\s*subgraph\s+(\w+)\["(.*)"\]\s*$')
_SHAPES = {"[": "box", "([": "manager", "{{": "approval", "[[": "foreach", "[/": "toolserver"}
_STYLES = {"-->": "solid", "==>": "thick", "-.-": "dotted", "-.->": "route"}
_ENTITIES = (("#quot;", '"'), ("#lt;", "<"), ("#gt;", ">"), ("#124;", "|"), ("#amp;", "&"))

CHAR_W, LABEL_W, LINE_H, PAD_X, PAD_Y = 7.0, 6.2, 16.0, 14.0, 10.0
GAP_X, GAP_Y, MARGIN, MAX_CHARS, MAX_NODES = 28.0, 64.0, 32.0, 40, 2000


@dataclass
class LaidNode:
    id: str
    lines: list[str]
    shape: str                 # box | manager | approval | foreach | toolserver
    x: float                   # top-left corner
    y: float
    w: float
    h: float
    group: str | None = None


@dataclass
class LaidEdge:
    source: str
    target: str
    style: str                 # solid | thick | dotted (tool server) | route (loop back)
    label: str
    d: str                     # the SVG path
    label_x: float
    label_y: float
    anchor: str = "middle"     # the label's text-anchor


@dataclass
class LaidGroup:
    id: str
    label: str
    x: float
    y: float
    w: float
    h: float


@dataclass
class GraphLayout:
    width: float
    height: float
    nodes: list[LaidNode] = field(default_factory=list)
    edges: list[LaidEdge] = field(default_factory=list)
    groups: list[LaidGroup] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _label(text: str) -> list[str]:
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    lines = [line.strip() for line in text.split("<br/>")]
    return [line if len(line) <= MAX_CHARS else line[:MAX_CHARS - 1] + "…" for line in lines]


def layout_mermaid(text: str) -> GraphLayout:
    """Parse the Mermaid ``text`` (as engine/mermaid.py writes it) and place its nodes."""
    nodes: dict[str, LaidNode] = {}
    edges: list[tuple[str, str, str, str]] = []
    groups: dict[str, str] = {}
    stack: list[str] = []
    for line in text.splitlines():
        if (m := _GROUP.match(line)) is not None:
            groups[m.group(1)] = _label(m.group(2))[0]
            stack.append(m.group(1))
        elif line.strip() == "end" and stack:
            stack.pop()
        elif (m := _NODE.match(line)) is not None and len(nodes) < MAX_NODES:
            lines = _label(m.group(3))
            w = max(len(s) for s in lines) * CHAR_W + 2 * PAD_X + (16 if m.group(2) in ("{{", "[/") else 0)
            nodes[m.group(1)] = LaidNode(m.group(1), lines, _SHAPES[m.group(2)], 0, 0, max(w, 64.0),
                                         len(lines) * LINE_H + 2 * PAD_Y, stack[-1] if stack else None)
        elif (m := _EDGE.match(line)) is not None:
            edges.append((m.group(1), m.group(4), _STYLES[m.group(2)], _label(m.group(3) or "")[0]))
    edges = [e for e in edges if e[0] in nodes and e[1] in nodes]
    for _, target, style, label in edges:   # an edge's label sits on its target: room for it
        if style != "route":
            nodes[target].w = max(nodes[target].w, len(label) * LABEL_W + 8)
    layers = _layers(list(nodes), [(s, t) for s, t, style, _ in edges if style != "route"])
    _place(nodes, layers, edges)
    laid: list[LaidEdge] = []
    for s, t, style, label in edges:
        laid.append(_edge(nodes[s], nodes[t], style, label, sum(e.anchor == "start" for e in laid)))
    width = max([n.x + n.w for n in nodes.values()] +
                [e.label_x + len(e.label) * LABEL_W for e in laid if e.anchor == "start"], default=0) + MARGIN
    height = max((n.y + n.h for n in nodes.values()), default=0) + MARGIN + 16   # a group's label strip
    # A nested team's nodes belong to its own box only (the innermost group).
    boxes = [_group(gid, label, [n for n in nodes.values() if n.group == gid]) for gid, label in groups.items()]
    return GraphLayout(width, height, list(nodes.values()), laid, [b for b in boxes if b is not None])


def _layers(order: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Longest-path layers. An edge that closes a cycle (a handoff back, found by a depth-first
    walk in declaration order) does not place its target, so every other edge points down."""
    children: dict[str, list[str]] = {n: [] for n in order}
    for source, target in edges:
        if source != target:
            children[source].append(target)
    back = _back_edges(order, children)
    depth = dict.fromkeys(order, 0)
    for node in _topological(order, children, back):
        for child in children[node]:
            if (node, child) not in back:
                depth[child] = max(depth[child], depth[node] + 1)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in order:
        layers[depth[node]].append(node)
    return [layer for layer in layers if layer]


def _back_edges(order: list[str], children: dict[str, list[str]]) -> set[tuple[str, str]]:
    state = dict.fromkeys(order, 0)   # 0 unseen, 1 on the walk's stack, 2 done
    back: set[tuple[str, str]] = set()
    for root in order:
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(children[root]))]
        while stack:
            node, pending = stack[-1]
            child = next(pending, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state[child] == 1:
                back.add((node, child))
            elif state[child] == 0:
                state[child] = 1
                stack.append((child, iter(children[child])))
    return back


def _topological(order: list[str], children: dict[str, list[str]], back: set[tuple[str, str]]) -> list[str]:
    pending = dict.fromkeys(order, 0)
    for node in order:
        for child in children[node]:
            if (node, child) not in back:
                pending[child] += 1
    ready = [n for n in order if pending[n] == 0]
    done: list[str] = []
    while ready:
        node = ready.pop(0)
        done.append(node)
        for child in children[node]:
            if (node, child) not in back:
                pending[child] -= 1
                if pending[child] == 0:
                    ready.append(child)
    return done


def _place(nodes: dict[str, LaidNode], layers: list[list[str]], edges: list[tuple[str, str, str, str]]) -> None:
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for source, target, style, _ in edges:
        if style != "route":
            parents[target].append(source)
    widths = [sum(nodes[n].w for n in layer) + GAP_X * (len(layer) - 1) for layer in layers]
    full = max(widths, default=0)
    y = MARGIN
    for number, layer in enumerate(layers):
        if number:   # towards the parents' mean centre, declaration order breaking ties
            index = {name: i for i, name in enumerate(layer)}
            layer.sort(key=lambda n: _mean_centre(nodes, parents[n], index[n], y))
        x = MARGIN + (full - widths[number]) / 2
        for name in layer:
            nodes[name].x, nodes[name].y = x, y
            x += nodes[name].w + GAP_X
        y += max(nodes[n].h for n in layer) + GAP_Y


def _mean_centre(nodes: dict[str, LaidNode], parents: list[str], index: int, y: float) -> tuple[float, int]:
    placed = [nodes[p].x + nodes[p].w / 2 for p in parents if 0 < nodes[p].y < y]   # the layers above
    return (sum(placed) / len(placed) if placed else float("inf"), index)


def _edge(a: LaidNode, b: LaidNode, style: str, label: str, sideways: int) -> LaidEdge:
    if b.y > a.y:     # downwards: bottom centre to top centre, the label just above the target
        x1, y1, x2, y2 = a.x + a.w / 2, a.y + a.h, b.x + b.w / 2, b.y
        bend = (y2 - y1) / 2
        d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2:.1f}"
        return LaidEdge(a.id, b.id, style, label, d, x2, y2 - 13, "middle")
    # back or sideways (a loop or a handoff back): right side to right side, bulging right;
    # each such edge reaches a little further than the one before, so they nest, not cross
    x1, y1, x2, y2 = a.x + a.w, a.y + a.h / 2, b.x + b.w, b.y + b.h / 2
    reach = max(x1, x2) + 30 + 22 * sideways
    d = f"M{x1:.1f},{y1:.1f} C{reach:.1f},{y1:.1f} {reach:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    return LaidEdge(a.id, b.id, style, label, d, reach - 4, (y1 + y2) / 2, "start")


def _group(gid: str, label: str, members: list[LaidNode]) -> LaidGroup | None:
    if not members:
        return None
    # The label goes in a strip along the bottom: the top is where edge labels come in.
    x = min(n.x for n in members) - 8
    y = min(n.y for n in members) - 8
    w = max(n.x + n.w for n in members) + 8 - x
    h = max(n.y + n.h for n in members) + 24 - y
    return LaidGroup(gid, label, x, y, w, h)
