"""Compile an Agent, Team or Pipeline into a self-contained Graph (engine/graph.py).

Pure given its inputs: the target and an index of the desired resources (with the
script contents and absolute secret file paths pinned at apply). The output is
deterministic (every map sorted by key) so that graph hashes are stable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from agentform.engine.errors import Diagnostic, ManifestError
from agentform.engine.graph import (
    AgentNode,
    Graph,
    MemberEdge,
    ModelNode,
    PipelineNode,
    StageEdge,
    TeamNode,
    ask_tool,
    node_key,
    transfer_tool,
)
from agentform.specs import Resource, ResourceKey, SecretRef

if TYPE_CHECKING:
    from agentform.engine.desired import Desired
    from agentform.engine.loader import LoadedManifest, ManifestSet

RUNNABLE = ("Agent", "Team", "Pipeline")


class Index:
    """The desired resources by key, plus what each pinned from disk (``resolved``)."""

    def __init__(self, resources: Mapping[ResourceKey, Resource], resolved: Mapping[ResourceKey, dict]):
        self.resources = resources
        self.resolved = resolved

    @classmethod
    def of_desired(cls, items: Iterable[Desired]) -> Index:
        items = list(items)
        return cls({d.key: d.resource for d in items}, {d.key: d.resolved for d in items})

    @classmethod
    def of_manifests(cls, manifests: ManifestSet) -> Index:
        from agentform.engine.desired import from_manifest_set

        return cls.of_desired(from_manifest_set(manifests))

    def get(self, kind: str, namespace: str, name: str, *, needed_by: str) -> Resource:
        found = self.resources.get(ResourceKey(kind, namespace, name))
        if found is None:
            raise ManifestError([Diagnostic("<compile>", 0, 0,
                                            f"{needed_by} refers to {kind} {namespace}/{name}, which does not exist")])
        return found


def compile_graph(target: LoadedManifest | Desired | Resource,
                  manifests: ManifestSet | Index | Iterable[Desired]) -> Graph:
    """The Graph of one Agent, Team or Pipeline, with everything it reaches."""
    resource: Resource = getattr(target, "resource", target)  # type: ignore[assignment]
    if isinstance(manifests, Index):
        index = manifests
    elif hasattr(manifests, "manifests"):
        index = Index.of_manifests(manifests)  # type: ignore[arg-type]
    else:
        index = Index.of_desired(manifests)  # type: ignore[arg-type]
    return _Compiler(index).compile(resource)


class _Compiler:
    def __init__(self, index: Index):
        self.index = index
        self.models: dict[str, ModelNode] = {}
        self.agents: dict[str, AgentNode] = {}
        self.teams: dict[str, TeamNode] = {}
        self.pipelines: dict[str, PipelineNode] = {}
        self.tool_servers: dict[str, Any] = {}
        self.tool_server_dirs: dict[str, str] = {}
        self.workspaces: dict[str, Any] = {}
        self.workspace_seeds: dict[str, str] = {}
        self.knowledge: dict[str, Any] = {}
        self.knowledge_sources: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}

    def compile(self, resource: Resource) -> Graph:
        ns, name = resource.metadata.namespace, resource.metadata.name
        if resource.kind not in RUNNABLE:
            raise ValueError(f"only {', '.join(RUNNABLE)} compile to a graph, not {resource.kind}")
        getattr(self, f"_{resource.kind.lower()}")(ns, name, f"{resource.kind} {ns}/{name}")
        return Graph(
            kind=resource.kind, root=node_key(ns, name),  # type: ignore[arg-type]
            models=_sorted(self.models), agents=_sorted(self.agents), teams=_sorted(self.teams),
            pipelines=_sorted(self.pipelines), tool_servers=_sorted(self.tool_servers),
            tool_server_dirs=_sorted(self.tool_server_dirs),
            workspaces=_sorted(self.workspaces), workspace_seeds=_sorted(self.workspace_seeds),
            knowledge=_sorted(self.knowledge), knowledge_sources=_sorted(self.knowledge_sources),
            secrets=_sorted(self.secrets),
        )

    # -- leaves ------------------------------------------------------------------------------
    def _model(self, ns: str, name: str, by: str) -> str:
        key = node_key(ns, name)
        if key in self.models:
            return key
        res = self.index.get("Model", ns, name, needed_by=by)
        spec = res.spec  # type: ignore[attr-defined]
        script = self.index.resolved.get(res.key, {}).get("script")
        self.models[key] = ModelNode(name=name, namespace=ns, spec=spec, script=script)
        if spec.api_key is not None:
            self._secret_ref(spec.api_key, ns, f"Model {key}")
        for ref in spec.fallbacks:
            self._model(*ref.resolve(ns), f"Model {key}")
        return key

    def _secret_ref(self, ref: SecretRef, ns: str, by: str) -> None:
        sns, sname = ref.secret_ref.resolve(ns)
        key = node_key(sns, sname)
        if key not in self.secrets:
            res = self.index.get("Secret", sns, sname, needed_by=by)
            from agentform.engine.secrets import SecretSource

            spec = res.spec  # type: ignore[attr-defined]
            resolved = self.index.resolved.get(res.key, {})
            self.secrets[key] = SecretSource(sns, sname, spec.sealed, spec.from_env,
                                             resolved.get("fromFile") or spec.from_file).to_dict()

    def _tool_server(self, ns: str, name: str, by: str) -> str:
        key = node_key(ns, name)
        if key not in self.tool_servers:
            res = self.index.get("ToolServer", ns, name, needed_by=by)
            spec = res.spec  # type: ignore[attr-defined]
            self.tool_servers[key] = spec
            folder = self.index.resolved.get(res.key, {}).get("folder")
            if folder:
                self.tool_server_dirs[key] = folder
            for value in (*spec.env.values(), *spec.headers.values()):
                if isinstance(value, SecretRef):
                    self._secret_ref(value, ns, f"ToolServer {key}")
        return key

    def _workspace(self, ns: str, name: str, by: str) -> str:
        key = node_key(ns, name)
        if key not in self.workspaces:
            res = self.index.get("Workspace", ns, name, needed_by=by)
            self.workspaces[key] = res.spec  # type: ignore[attr-defined]
            seed = self.index.resolved.get(res.key, {}).get("seed")
            if seed:
                self.workspace_seeds[key] = seed
        return key

    def _knowledge(self, ns: str, name: str, by: str) -> str:
        key = node_key(ns, name)
        if key not in self.knowledge:
            spec = self.index.get("KnowledgeBase", ns, name, needed_by=by).spec  # type: ignore[attr-defined]
            self.knowledge[key] = spec
            res_key = ResourceKey("KnowledgeBase", ns, name)
            self.knowledge_sources[key] = dict(self.index.resolved.get(res_key, {}))
            qdrant = spec.store.qdrant
            if not isinstance(qdrant, str) and qdrant.api_key is not None:
                self._secret_ref(qdrant.api_key, ns, f"KnowledgeBase {key}")
            if spec.embedding.api_key is not None:
                self._secret_ref(spec.embedding.api_key, ns, f"KnowledgeBase {key}")
        return key

    # -- runnables ---------------------------------------------------------------------------
    def _agent(self, ns: str, name: str, by: str) -> str:
        key = node_key(ns, name)
        if key in self.agents:
            return key
        spec = self.index.get("Agent", ns, name, needed_by=by).spec  # type: ignore[attr-defined]
        who = f"Agent {key}"
        model = self._model(*spec.model.resolve(ns), who)
        for tool in spec.tools:
            if tool.tool_server is not None:
                self._tool_server(*tool.tool_server.resolve(ns), who)
            elif tool.knowledge is not None:
                self._knowledge(*tool.knowledge.resolve(ns), who)
        pinned = self.index.resolved.get(ResourceKey("Agent", ns, name), {}).get("instructions")
        if pinned is not None:  # instructionsFile: the content pinned at apply is what runs
            spec = spec.model_copy(update={"instructions": pinned, "instructions_file": None})
        self.agents[key] = AgentNode(name=name, namespace=ns, model=model, spec=spec)
        return key

    def _team(self, ns: str, name: str, by: str) -> str:
        key = node_key(ns, name)
        if key in self.teams:
            return key
        spec = self.index.get("Team", ns, name, needed_by=by).spec  # type: ignore[attr-defined]
        who = f"Team {key}"
        # Reserve the key first: a cycle (rejected by validate) must not recurse forever.
        self.teams[key] = None  # type: ignore[assignment]
        manager = self._agent(*spec.manager.resolve(ns), who)
        edges = []
        for member in spec.members:
            mns, mname = member.ref.resolve(ns)
            target = self._agent(mns, mname, who) if member.kind == "Agent" else self._team(mns, mname, who)
            mode = member.mode or spec.mode
            tool = ask_tool(mname) if mode == "orchestrate" else transfer_tool(mname)
            edges.append(MemberEdge(kind=member.kind, target=target, name=mname, mode=mode, tool=tool,
                                    handoffs=list(member.handoffs or ()) if mode == "handoff" else None))
        workspace = self._workspace(*spec.workspace.resolve(ns), who) if spec.workspace else None
        budget = spec.budget.model_dump(mode="json", by_alias=True, exclude_none=True) if spec.budget else None
        handoff = spec.mode == "handoff"
        self.teams[key] = TeamNode(
            name=name, namespace=ns, manager=manager, members=edges, max_parallel=spec.max_parallel,
            budget=budget, workspace=workspace, mode=spec.mode, vars=spec.vars,
            handoffs=(list(spec.handoffs) if spec.handoffs is not None else [e.name for e in edges])
            if handoff else None,
            finishers=list(spec.finishers) if handoff and spec.finishers is not None else None)
        return key

    def _pipeline(self, ns: str, name: str, by: str) -> str:
        key = node_key(ns, name)
        if key in self.pipelines:
            return key
        spec = self.index.get("Pipeline", ns, name, needed_by=by).spec  # type: ignore[attr-defined]
        who = f"Pipeline {key}"
        self.pipelines[key] = None  # type: ignore[assignment]
        targets: dict[str, StageEdge] = {}
        for stage in spec.stages:
            kind = stage.target_kind
            target: str | None = None
            if kind in ("agent", "team", "pipeline"):
                ref = getattr(stage, kind)
                target = getattr(self, f"_{kind}")(*ref.resolve(ns), f"{who} stage {stage.name}")
            elif kind == "tool":
                target = self._tool_server(*stage.tool.tool_server.resolve(ns), f"{who} stage {stage.name}")
            targets[stage.name] = StageEdge(stage=stage.name, kind=kind, target=target)
        workspace = self._workspace(*spec.workspace.resolve(ns), who) if spec.workspace else None
        self.pipelines[key] = PipelineNode(name=name, namespace=ns, spec=spec, targets=targets,
                                           order=topological_order(spec.stages), workspace=workspace)
        return key


def topological_order(stages) -> list[str]:
    """Stage names ordered so that every stage comes after its needs; ties keep declaration order."""
    names = [s.name for s in stages]
    needs = {s.name: [n for n in s.needs if n in names] for s in stages}
    done: list[str] = []
    placed: set[str] = set()
    while len(done) < len(names):
        ready = [n for n in names if n not in placed and all(x in placed for x in needs[n])]
        if not ready:  # a needs-cycle (validate rejects it): keep the rest in declaration order
            ready = [n for n in names if n not in placed]
        for n in ready:
            done.append(n)
            placed.add(n)
            break
    return done


def models_under_cost_cap(graph: Graph) -> set[str]:
    """Models whose cost a ``maxCostUsd`` budget must count (so they need a known price)."""
    capped: set[str] = set()

    def agent_models(agent_key: str) -> set[str]:
        agent = graph.agents[agent_key]
        found = {agent.model}
        found |= {node_key(*r.resolve(agent.namespace)) for r in graph.models[agent.model].spec.fallbacks}
        return found

    def team_models(team_key: str, seen: set[str]) -> set[str]:
        if team_key in seen:
            return set()
        seen.add(team_key)
        team = graph.teams[team_key]
        found = agent_models(team.manager)
        for edge in team.members:
            found |= agent_models(edge.target) if edge.kind == "Agent" else team_models(edge.target, seen)
        return found

    for key, agent in graph.agents.items():
        if agent.spec.budget and agent.spec.budget.max_cost_usd is not None:
            capped |= agent_models(key)
    for key, team in graph.teams.items():
        if team.budget and team.budget.get("maxCostUsd") is not None:
            capped |= team_models(key, set())
    for pipeline in graph.pipelines.values():
        if pipeline.spec.budget and pipeline.spec.budget.max_cost_usd is not None:
            capped |= set(graph.models)  # approximate: a pipeline's budget covers all it reaches
    return capped


def _sorted(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: mapping[k] for k in sorted(mapping)}
