"""Graph checks: team and pipeline nesting cycles, the stage DAG and its loops, generated
tool names, and workspace ownership."""

from __future__ import annotations

from agentform.engine.errors import Diagnostic
from agentform.engine.graph import MAX_TOOL_NAME, ask_tool, transfer_tool
from agentform.engine.loader import LoadedManifest, ManifestSet
from agentform.specs import ResourceKey

from .references import ref_path
from .suggest import did_you_mean


def _find_cycles(edges: dict) -> list[list]:
    """Each elementary cycle found by a depth-first walk, as the list of its nodes (once per set)."""
    cycles, seen_sets = [], set()
    state: dict = {}
    for start in edges:
        if start in state:
            continue
        stack = [(start, iter(edges.get(start, ())))]
        trail = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                trail.pop()
                state[node] = 2
                continue
            if state.get(child) == 1:
                cycle = trail[trail.index(child):] + [child]
                if frozenset(cycle) not in seen_sets:
                    seen_sets.add(frozenset(cycle))
                    cycles.append(cycle)
            elif child not in state:
                state[child] = 1
                trail.append(child)
                stack.append((child, iter(edges.get(child, ()))))
    return cycles


def check_nesting_cycles(ms: ManifestSet) -> list[Diagnostic]:
    """A team may not contain itself through its members; nor a pipeline through its stages."""
    out = []
    for kind, field_of in (("Team", _team_edges), ("Pipeline", _pipeline_edges), ("Model", _fallback_edges)):
        edges: dict[ResourceKey, list[ResourceKey]] = {}
        where: dict[tuple, tuple[LoadedManifest, tuple]] = {}
        for m in ms.of_kind(kind):
            for path, target in field_of(m):
                edges.setdefault(m.key, []).append(target)
                where.setdefault((m.key, target), (m, path))
        for cycle in _find_cycles(edges):
            m, path = where[(cycle[-2], cycle[-1])]
            names = " -> ".join(k.name for k in cycle)
            what = {"Team": "team membership", "Pipeline": "pipeline nesting", "Model": "model fallback"}[kind]
            out.append(m.diag(f"{what} cycle: {names}", *ref_path(m, path)))
    return out


def _team_edges(m: LoadedManifest):
    for i, member in enumerate(m.resource.spec.members):  # type: ignore[attr-defined]
        if member.team is not None:
            ns, name = member.team.resolve(m.namespace)
            yield ("spec", "members", i, "team"), ResourceKey("Team", ns, name)


def _fallback_edges(m: LoadedManifest):
    for i, ref in enumerate(m.resource.spec.fallbacks):  # type: ignore[attr-defined]
        ns, name = ref.resolve(m.namespace)
        yield ("spec", "fallbacks", i), ResourceKey("Model", ns, name)


def _pipeline_edges(m: LoadedManifest):
    for i, stage in enumerate(m.resource.spec.stages):  # type: ignore[attr-defined]
        if stage.pipeline is not None:
            ns, name = stage.pipeline.resolve(m.namespace)
            yield ("spec", "stages", i, "pipeline"), ResourceKey("Pipeline", ns, name)


def upstream_sets(needs: dict[str, list[str]]) -> dict[str, set[str]]:
    """For each stage, every stage it needs directly or transitively (cycles tolerated)."""
    result: dict[str, set[str]] = {}
    for stage in needs:
        seen: set[str] = set()
        todo = list(needs.get(stage, ()))
        while todo:
            s = todo.pop()
            if s in seen or s not in needs:
                continue
            seen.add(s)
            todo.extend(needs[s])
        result[stage] = seen
    return result


def check_pipeline(m: LoadedManifest) -> list[Diagnostic]:
    """Stage names unique, needs known and acyclic, routes going back upstream with maxVisits."""
    out = []
    stages = m.resource.spec.stages  # type: ignore[attr-defined]
    first: dict[str, int] = {}
    for i, stage in enumerate(stages):
        if stage.name in first:
            line = m.locate("spec", "stages", first[stage.name], "name").line
            out.append(m.diag(f"duplicate stage name '{stage.name}' (first at line {line})",
                              "spec", "stages", i, "name"))
        else:
            first[stage.name] = i
    needs = {s.name: [n for n in s.needs if n in first] for s in stages}
    for i, stage in enumerate(stages):
        for j, need in enumerate(stage.needs):
            if need == stage.name:
                out.append(m.diag(f"stage '{stage.name}' needs itself", "spec", "stages", i, "needs", j))
            elif need not in first:
                hint = did_you_mean(need, first)
                out.append(m.diag(f"stage '{stage.name}' needs unknown stage '{need}'{hint}",
                                  "spec", "stages", i, "needs", j))
    for cycle in _find_cycles({k: [n for n in v if n != k] for k, v in needs.items()}):
        closer = stages[first[cycle[-2]]]
        j = closer.needs.index(cycle[-1])
        out.append(m.diag(f"needs cycle: {' -> '.join(cycle)}", "spec", "stages", first[cycle[-2]], "needs", j))
    upstream = upstream_sets(needs)
    for i, stage in enumerate(stages):
        for k, route in enumerate(stage.routes):
            at = ("spec", "stages", i, "routes", k, "goto")
            if route.goto not in first:
                out.append(m.diag(f"route goes to unknown stage '{route.goto}'{did_you_mean(route.goto, first)}", *at))
            elif route.goto not in upstream.get(stage.name, set()):
                out.append(m.diag(
                    f"route goto '{route.goto}' must name a stage upstream of '{stage.name}' "
                    "(one it needs, directly or through other stages)", *at))
            elif stage.max_visits is None:
                out.append(m.diag(
                    f"stage '{stage.name}' loops back to '{route.goto}' without maxVisits "
                    "(set maxVisits to bound the loop)", *at))
    return out


def check_tool_names(m: LoadedManifest) -> list[Diagnostic]:
    """The ask_*/transfer_to_* tools a team's manager gets: at most 64 characters, unique."""
    out = []
    spec = m.resource.spec  # type: ignore[attr-defined]
    given: dict[str, int] = {}
    for i, member in enumerate(spec.members):
        mode = member.mode or spec.mode
        name = member.ref.name
        tool = ask_tool(name) if mode == "orchestrate" else transfer_tool(name)
        path = ref_path(m, ("spec", "members", i, "agent" if member.agent is not None else "team"))
        if len(tool) > MAX_TOOL_NAME:
            out.append(m.diag(f"member '{name}' gives the manager a tool name longer than "
                              f"{MAX_TOOL_NAME} characters ('{tool}', {len(tool)}); use a shorter name", *path))
        if tool in given:
            line = m.locate("spec", "members", given[tool]).line
            out.append(m.diag(f"two members give the manager the same tool '{tool}' "
                              f"(the other is the member at line {line})", *path))
        else:
            given[tool] = i
    return out


def check_manager_not_member(m: LoadedManifest) -> list[Diagnostic]:
    """A team's manager is not one of its own members: it would be offered a call or a handoff to itself."""
    spec = m.resource.spec  # type: ignore[attr-defined]
    manager = spec.manager.resolve(m.namespace)
    out = []
    for i, member in enumerate(spec.members):
        if member.agent is None or member.agent.resolve(m.namespace) != manager:
            continue
        mode = member.mode or spec.mode
        tool = ask_tool(manager[1]) if mode == "orchestrate" else transfer_tool(manager[1])
        out.append(m.diag(
            f"agent '{manager[1]}' is this team's manager and cannot also be its member "
            f"(it would get '{tool}', a call to itself); remove it from members, or name another manager",
            *ref_path(m, ("spec", "members", i, "agent"))))
    return out


def check_workspaces(ms: ManifestSet) -> list[Diagnostic]:
    """A workspace belongs to one Team or Pipeline."""
    owners: dict[tuple[str, str], LoadedManifest] = {}
    out = []
    for m in ms.manifests:
        if m.kind not in ("Team", "Pipeline") or m.resource.spec.workspace is None:  # type: ignore[attr-defined]
            continue
        key = m.resource.spec.workspace.resolve(m.namespace)  # type: ignore[attr-defined]
        first = owners.setdefault(key, m)
        if first is not m:
            other = first.locate("spec", "workspace")
            out.append(m.diag(
                f"Workspace '{key[1]}' is already used by {first.kind} '{first.name}' ({other}); "
                "a workspace belongs to one Team or Pipeline", *ref_path(m, ("spec", "workspace"))))
    return out


def check_handoffs(m: LoadedManifest) -> list[Diagnostic]:
    """A handoff team: agents as members, known handoff targets, every member reachable from the
    manager, and from every agent a chain of handoffs to one that may end the team."""
    spec = m.resource.spec  # type: ignore[attr-defined]
    if spec.mode != "handoff":
        return []
    out = []
    manager = spec.manager.name
    names = [manager] + [member.ref.name for member in spec.members]
    lists: dict[str, list[str]] = {manager: list(spec.handoffs) if spec.handoffs is not None
                                   else [member.ref.name for member in spec.members]}
    where: dict[str, tuple] = {manager: ref_path(m, ("spec", "manager"))}
    given = [(manager, ("spec", "handoffs"), spec.handoffs or [])]
    for i, member in enumerate(spec.members):
        if member.team is not None:
            out.append(m.diag(
                f"member '{member.team.name}' is a team: the members of a handoff team are agents "
                "(ask or delegate to a team from an orchestrate or delegate team instead)",
                *ref_path(m, ("spec", "members", i, "team"))))
            continue
        lists[member.ref.name] = list(member.handoffs or ())
        where[member.ref.name] = ref_path(m, ("spec", "members", i, "agent"))
        given.append((member.ref.name, ("spec", "members", i, "handoffs"), member.handoffs or []))
    for who, at, targets in given:
        for j, target in enumerate(targets):
            if target == who:
                out.append(m.diag(f"'{who}' cannot hand off to itself", *at, j))
            elif target not in lists:
                out.append(m.diag(f"'{who}' hands off to '{target}', which is not an agent of this team"
                                  f"{did_you_mean(target, names)} (the team's agents: {', '.join(lists)})",
                                  *at, j))
            elif len(transfer_tool(target)) > MAX_TOOL_NAME:
                out.append(m.diag(f"'{target}' gives the tool name '{transfer_tool(target)}', longer than "
                                  f"{MAX_TOOL_NAME} characters; use a shorter name", *at, j))
    unknown = [j for j, name in enumerate(spec.finishers or ()) if name not in lists]
    for j in unknown:
        name = spec.finishers[j]
        out.append(m.diag(f"finisher '{name}' is not an agent of this team{did_you_mean(name, names)}",
                          "spec", "finishers", j))
    edges = {who: [t for t in targets if t in lists and t != who] for who, targets in lists.items()}
    reached, todo = {manager}, [manager]
    while todo:
        for target in edges[todo.pop()]:
            if target not in reached:
                reached.add(target)
                todo.append(target)
    for name in lists:
        if name not in reached:
            out.append(m.diag(f"member '{name}' is unreachable: no agent reachable from the manager "
                              f"'{manager}' hands off to it (add it to a handoffs list)", *where[name]))
    finishers = set(spec.finishers) if spec.finishers is not None else set(lists)
    can_finish = set(finishers & set(lists))
    changed = True
    while changed:
        changed = False
        for who, targets in edges.items():
            if who not in can_finish and any(t in can_finish for t in targets):
                can_finish.add(who)
                changed = True
    for name in lists if not unknown else ():   # a misspelt finisher would make every agent one
        if name in reached and name not in can_finish:
            out.append(m.diag(f"'{name}' has no way to finish: it is not in finishers and no chain of "
                              "its handoffs reaches an agent that is (add one to its handoffs, or it "
                              "to finishers)", *where[name]))
    return out
