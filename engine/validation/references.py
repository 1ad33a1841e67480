"""References between manifests: every one must resolve, in its namespace, to the right kind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agentform.engine.errors import Diagnostic
from agentform.engine.loader import LoadedManifest, ManifestSet
from agentform.specs.common import Ref, SecretRef

from .suggest import did_you_mean


def _secret_refs(value: Any, path: tuple) -> Iterator[tuple[tuple, str, Ref]]:
    if isinstance(value, SecretRef):
        yield path + ("secretRef",), "Secret", value.secret_ref


def refs_of(m: LoadedManifest) -> Iterator[tuple[tuple, str, Ref]]:
    """(data path, target kind, reference) for every reference a manifest makes."""
    spec = m.resource.spec  # type: ignore[attr-defined]
    kind = m.kind
    if kind == "Model":
        if spec.api_key is not None:
            yield from _secret_refs(spec.api_key, ("spec", "apiKey"))
        for i, ref in enumerate(spec.fallbacks):
            yield ("spec", "fallbacks", i), "Model", ref
    elif kind == "ToolServer":
        for field in ("env", "headers"):
            for name, value in getattr(spec, field).items():
                yield from _secret_refs(value, ("spec", field, name))
    elif kind == "KnowledgeBase":
        qdrant = spec.store.qdrant
        if not isinstance(qdrant, str) and qdrant.api_key is not None:
            yield from _secret_refs(qdrant.api_key, ("spec", "store", "qdrant", "apiKey"))
        if spec.embedding.api_key is not None:
            yield from _secret_refs(spec.embedding.api_key, ("spec", "embedding", "apiKey"))
    elif kind == "Agent":
        yield ("spec", "model"), "Model", spec.model
        for i, tool in enumerate(spec.tools):
            if tool.tool_server is not None:
                yield ("spec", "tools", i, "toolServer"), "ToolServer", tool.tool_server
            if tool.knowledge is not None:
                yield ("spec", "tools", i, "knowledge"), "KnowledgeBase", tool.knowledge
    elif kind == "Team":
        yield ("spec", "manager"), "Agent", spec.manager
        for i, member in enumerate(spec.members):
            field = "agent" if member.agent is not None else "team"
            yield ("spec", "members", i, field), member.kind, member.ref
        if spec.workspace is not None:
            yield ("spec", "workspace"), "Workspace", spec.workspace
    elif kind == "Pipeline":
        if spec.workspace is not None:
            yield ("spec", "workspace"), "Workspace", spec.workspace
        for i, stage in enumerate(spec.stages):
            for field, target in (("agent", "Agent"), ("team", "Team"), ("pipeline", "Pipeline")):
                ref = getattr(stage, field)
                if ref is not None:
                    yield ("spec", "stages", i, field), target, ref
            if stage.tool is not None:
                yield ("spec", "stages", i, "tool", "toolServer"), "ToolServer", stage.tool.tool_server
        for i, hook in enumerate(spec.notify):
            if hook.secret is not None:
                yield from _secret_refs(hook.secret, ("spec", "notify", i, "secret"))


def ref_path(m: LoadedManifest, path: tuple) -> tuple:
    """The path of the name inside a reference (``{name, namespace}`` or a bare name)."""
    node: Any = m.raw
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return path
    return path + ("name",) if isinstance(node, dict) else path


def _a(kind: str) -> str:
    return ("an " if kind[0] in "AEIOU" else "a ") + kind


def check_references(ms: ManifestSet) -> list[Diagnostic]:
    """Every reference resolves within its namespace to a resource of the right kind."""
    by_namespace: dict[tuple[str, str], list[str]] = {}
    for key in ms.claimed:
        by_namespace.setdefault((key.kind, key.namespace), []).append(key.name)
    out = []
    for m in ms.manifests:
        for path, kind, ref in refs_of(m):
            namespace, name = ref.resolve(m.namespace)
            if (kind, namespace, name) in ms.claimed:
                continue
            where = ref_path(m, path)
            others = [k for k in ms.claimed if k.namespace == namespace and k.name == name]
            if others:
                out.append(m.diag(f"'{name}' is {_a(others[0].kind)}, not {_a(kind)}", *where))
                continue
            hint = did_you_mean(name, by_namespace.get((kind, namespace), []))
            out.append(m.diag(f"unknown {kind} '{name}' in namespace '{namespace}'{hint}", *where))
    return out
