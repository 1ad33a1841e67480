"""Searching knowledge bases: the query embedded with the base's model, the nearest chunks, cited.

A search names one or more knowledge bases (an agent's ``tools: [{knowledge: ...}]``); each
is made sure to exist on this machine first (index.ensure: the process executing a run
builds a missing embedded index), then searched, and the hits are merged by score. An
embedded index is read once per process and index state into a float32 matrix
(qdrant.MemoryIndex: the scan local mode does, without its per-query float64 copy), so a
search holds no lock and scans 5,000 chunks in under a millisecond; a server is queried
directly. ``path`` narrows a search to documents matching a glob (``guides/*.md``), resolved
against the indexed documents into an exact filter (a Qdrant ``MatchAny`` on a server).
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentform.engine.errors import KnowledgeError

from .index import IndexState, KnowledgeTarget, ensure, load_state

MAX_TOP_K = 50
MAX_QUERY_CHARS = 4000


@dataclass(frozen=True, slots=True)
class KnowledgeHit:
    """One chunk found: where it is (to cite as ``path:startLine-endLine``) and what it says."""

    knowledge_base: str
    path: str
    start_line: int
    end_line: int
    heading: str
    score: float
    text: str

    @property
    def citation(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"

    def to_dict(self) -> dict[str, Any]:
        return {"knowledgeBase": self.knowledge_base, "path": self.path, "startLine": self.start_line,
                "endLine": self.end_line, "citation": self.citation, "heading": self.heading,
                "score": round(self.score, 4), "text": self.text}


@dataclass(frozen=True, slots=True)
class KnowledgeHits:
    query: str
    hits: list[KnowledgeHit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "results": [h.to_dict() for h in self.hits]}


def make_target(namespace: str, name: str, spec: Any, resolved: dict[str, Any], *, home: Path,
                secrets: dict[str, dict[str, Any]]) -> KnowledgeTarget:
    """A KnowledgeTarget from a spec and what apply pinned of it, its API keys resolved now."""
    from agentform.engine.redaction import register
    from agentform.engine.secrets import resolve_ref

    if not resolved.get("folder"):
        raise KnowledgeError(f"knowledge base {namespace}/{name} has no pinned sources: apply it again")

    def value(ref: Any) -> str | None:
        if ref is None:
            return None
        secret = resolve_ref(ref, namespace=namespace, secrets=secrets, home=home)
        register(secret)
        return secret

    server = spec.store.qdrant
    return KnowledgeTarget(namespace, name, spec, Path(resolved["folder"]), Path(resolved.get("root") or resolved["folder"]),
                           Path(home), dict(resolved.get("documents") or {}), value(spec.embedding.api_key),
                           None if isinstance(server, str) else value(server.api_key))


@dataclass
class _Loaded:
    fingerprint: tuple
    client: Any
    state: IndexState


_loaded: dict[tuple[str, str], _Loaded] = {}
_lock = threading.Lock()


def search(targets: list[KnowledgeTarget], query: str, top_k: int = 5, path: str | None = None) -> KnowledgeHits:
    """The ``top_k`` chunks nearest ``query`` across ``targets`` (documents matching ``path`` only)."""
    from . import qdrant
    from .embedding import embedder_for

    if not isinstance(query, str) or not query.strip():
        raise KnowledgeError("query is empty: say what to look for")
    if len(query) > MAX_QUERY_CHARS:
        raise KnowledgeError(f"query is {len(query)} characters; at most {MAX_QUERY_CHARS}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise KnowledgeError(f"top_k must be a whole number from 1 to {MAX_TOP_K} (got {top_k!r})")
    hits: list[KnowledgeHit] = []
    for target in targets:
        loaded = _load(target)
        paths = None
        if path:
            paths = [p for p in loaded.state.documents if fnmatch.fnmatchcase(p, path)]
            if not paths:
                continue
        vector = embedder_for(target.spec.embedding, target.embedding_key).embed([query])[0]
        for point in qdrant.search(loaded.client, target.qdrant.collection, vector, top_k, paths):
            p = point.payload or {}
            hits.append(KnowledgeHit(target.name if target.namespace == "default" else target.key,
                                     str(p.get("path")), int(p.get("startLine", 0)), int(p.get("endLine", 0)),
                                     str(p.get("heading", "")), float(point.score), str(p.get("text", ""))))
    hits.sort(key=lambda h: -h.score)
    return KnowledgeHits(query, hits[:top_k])


def _load(target: KnowledgeTarget) -> _Loaded:
    """The target's searchable index in this process, (re)loaded when its state changed."""
    from . import qdrant

    with _lock:
        cached = _loaded.get((str(target.home), target.key))
        state = load_state(target)
        if cached is not None and state is not None and cached.fingerprint == _fingerprint(target, state):
            return cached
        state = ensure(target)
        fingerprint = _fingerprint(target, state)
        if cached is not None and target.qdrant.path is None:
            cached.client.close()   # a server's client; an embedded index is a MemoryIndex
        if target.qdrant.path is not None:
            client = qdrant.load_memory(target.qdrant)
        else:
            from qdrant_client import QdrantClient

            client = QdrantClient(url=target.qdrant.url, api_key=target.qdrant.api_key, timeout=60)
        loaded = _loaded[(str(target.home), target.key)] = _Loaded(fingerprint, client, state)
        return loaded


def _fingerprint(target: KnowledgeTarget, state: IndexState) -> tuple:
    return (state.indexed_at, state.dim, repr(target.settings()), target.qdrant)


def search_applied(store: Any, home: Path, name: str, query: str, top_k: int = 5, *,
                   namespace: str = "default", path: str | None = None) -> KnowledgeHits:
    """Search one applied KnowledgeBase as the store holds it (``Engine.search_knowledge``)."""
    from agentform.engine.errors import NotFound
    from agentform.specs import ResourceKey

    applied = store.get_resource(ResourceKey("KnowledgeBase", namespace, name))
    if applied is None:
        raise NotFound(f"KnowledgeBase {namespace}/{name} is not applied; apply it first")
    # The parsed spec is kept per spec hash; secret values are resolved at every search (a rotated
    # value is used at once), as a run resolves them.
    cache_key = (namespace, name, applied.spec_hash)
    if cache_key not in _applied_specs:
        _applied_specs[cache_key] = _applied_spec(store, namespace, applied)
    spec, secrets = _applied_specs[cache_key]
    target = make_target(namespace, name, spec, applied.spec.get("resolved") or {}, home=home, secrets=secrets)
    return search([target], query, top_k, path)


_applied_specs: dict[tuple, tuple[Any, dict[str, dict[str, Any]]]] = {}


def _applied_spec(store: Any, namespace: str, applied: Any) -> tuple[Any, dict[str, dict[str, Any]]]:
    from agentform.engine.graph import node_key
    from agentform.engine.secrets import SecretSource
    from agentform.specs import KINDS, ResourceKey

    document = {k: v for k, v in applied.spec.items() if k != "resolved"}
    spec = KINDS["KnowledgeBase"].model_validate(document).spec
    secrets: dict[str, dict[str, Any]] = {}
    server = spec.store.qdrant
    for ref in (spec.embedding.api_key, None if isinstance(server, str) else server.api_key):
        if ref is not None:
            sns, sname = ref.secret_ref.resolve(namespace)
            secret = store.get_resource(ResourceKey("Secret", sns, sname))
            if secret is not None:
                secrets[node_key(sns, sname)] = SecretSource.from_document(secret.spec).to_dict()
    return spec, secrets
