"""The graph page's layout (engine/graph_layout.py), read from the Mermaid text `graph` prints:
every shape and edge of that text is placed, edges go down except loops back, nothing overlaps."""

from __future__ import annotations

import itertools

from agentform.engine.graph_layout import MAX_NODES, layout_mermaid

from .helpers import ROOT


def _overlap(a, b) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def _reaches(edges, start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        seen.add(node)
        todo += [e.target for e in edges if e.source == node and e.target not in seen]
    return False


def _check(layout) -> None:
    for a, b in itertools.combinations(layout.nodes, 2):
        assert not _overlap(a, b), (a, b)
    by_id = {n.id: n for n in layout.nodes}
    down = [e for e in layout.edges if by_id[e.target].y > by_id[e.source].y]
    for edge in layout.edges:
        if edge.style != "route" and edge not in down:
            # only an edge that closes a cycle may point up: its target reaches its source going down
            assert _reaches(down, edge.target, edge.source), edge
    assert all(n.x >= 0 and n.y >= 0 and n.x + n.w <= layout.width and n.y + n.h <= layout.height
               for n in layout.nodes)


def test_every_shape_and_edge_of_the_mermaid_text():
    text = "\n".join([
        "flowchart TD",
        '  subgraph t_default_crew["team crew"]',
        '    a_lead(["lead (manager)"])',
        '    a_one["one"]',
        '    subgraph t_default_inner["team inner"]',
        '      a_boss(["boss (manager)"])',
        "    end",
        "  end",
        '  a_lead -->|"ask_one"| a_one',
        '  a_lead ==>|"transfer_to_inner"| a_boss',
        '  s_gate{{"gate<br/>approval"}}',
        '  s_each[["each<br/>forEach {{ items }}"]]',
        '  ts_default_git[/"tool server git<br/>stdio"/]',
        '  a_one -.-|"allow #quot;log#quot; #124; #lt;b#gt;"| ts_default_git',
        "  a_boss --> s_gate",
        "  s_gate --> s_each",
        '  s_each -.->|"again"| a_one',
        "  a_one -.- nowhere",
    ])
    layout = layout_mermaid(text)
    shapes = {n.id: n.shape for n in layout.nodes}
    assert shapes == {"a_lead": "manager", "a_one": "box", "a_boss": "manager", "s_gate": "approval",
                      "s_each": "foreach", "ts_default_git": "toolserver"}
    by_id = {n.id: n for n in layout.nodes}
    assert by_id["s_gate"].lines == ["gate", "approval"]
    assert by_id["a_one"].group == "t_default_crew" and by_id["a_boss"].group == "t_default_inner"
    styles = {(e.source, e.target): (e.style, e.label) for e in layout.edges}
    assert styles == {
        ("a_lead", "a_one"): ("solid", "ask_one"), ("a_lead", "a_boss"): ("thick", "transfer_to_inner"),
        ("a_one", "ts_default_git"): ("dotted", 'allow "log" | <b>'),
        ("a_boss", "s_gate"): ("solid", ""), ("s_gate", "s_each"): ("solid", ""),
        ("s_each", "a_one"): ("route", "again"),
    }   # an edge to an undeclared node is dropped
    assert {g.id: g.label for g in layout.groups} == {"t_default_crew": "team crew", "t_default_inner": "team inner"}
    _check(layout)


def test_examples_lay_out_without_overlap(tmp_path):
    """Every team and pipeline of the examples, as applied, is placed with no node on another
    (each example in its own home: examples may share resource names)."""
    from agentform import Engine
    from agentform.specs import ResourceKey

    seen = 0
    for example in sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir()):
        with Engine(home=tmp_path / example.name) as engine:
            engine.apply(example)
            for resource in engine.resources(None, namespace=None):
                if resource.kind not in ("Team", "Pipeline"):
                    continue
                key = ResourceKey(resource.kind, resource.namespace, resource.name)
                layout, mermaid = engine.graph_layout(key), engine.graph_mermaid(key)
                declared = [line for line in mermaid.splitlines()
                            if '"]' in line or '"}}' in line or '"/]' in line or '"])' in line]
                assert len(layout.nodes) == len(declared) - mermaid.count("subgraph"), mermaid
                _check(layout)
                seen += 1
    assert seen >= 5


def test_a_cycle_and_a_huge_graph_stay_bounded():
    cyclic = "flowchart TD\n  a[\"a\"]\n  b[\"b\"]\n  a --> b\n  b --> a\n"
    layout = layout_mermaid(cyclic)
    assert len(layout.nodes) == 2
    _check_no_overlap = [not _overlap(x, y) for x, y in itertools.combinations(layout.nodes, 2)]
    assert all(_check_no_overlap) and layout.nodes[0].y != layout.nodes[1].y
    many = "flowchart TD\n" + "".join(f'  n{i}["node {i}"]\n' for i in range(MAX_NODES + 50))
    assert len(layout_mermaid(many).nodes) == MAX_NODES
    long = layout_mermaid('flowchart TD\n  x["' + "y" * 500 + '"]\n')
    assert len(long.nodes[0].lines[0]) <= 40 and long.width < 500
