"""Incremental indexing of a knowledge base, and its state.

What is in a knowledge base's Qdrant collection is described by ``state.json`` beside it
(``<home>/knowledge/<namespace>/<name>/``): per document its sha256 and chunk count, the
embedding model, dimension and chunk settings, the revision that indexed it. ``index``
compares the documents on disk with it: only new or changed documents are chunked and
embedded, their old points and those of deleted documents are removed, and the state is
written last (atomically), so an interrupted index is redone from the previous state. A
change of model, dimension, chunk settings or store rebuilds the collection. When the state
is missing (a fresh engine home, another host), everything is indexed again: that is how the
process that executes a run makes sure the embedded Qdrant exists (``ensure``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentform.engine.errors import KnowledgeError
from agentform.engine.redaction import redact_text

from .qdrant import QdrantTarget

STATE_VERSION = 1
EMBEDDED_COLLECTION = "chunks"


@dataclass(frozen=True)
class KnowledgeTarget:
    """One knowledge base as the engine indexes and searches it (from a Desired or a graph)."""

    namespace: str
    name: str
    spec: Any                             # specs.knowledge.KnowledgeBaseSpec
    folder: Path                          # the manifest's folder: sources are relative to it
    root: Path                            # the applied folder: sources stay inside it
    home: Path
    documents: dict[str, str] = field(default_factory=dict)   # pinned at plan: path -> sha256
    embedding_key: str | None = None      # resolved secret values, when the spec names them
    qdrant_key: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def folder_on_disk(self) -> Path:
        return Path(self.home) / "knowledge" / self.namespace / self.name

    @property
    def qdrant(self) -> QdrantTarget:
        server = self.spec.store.qdrant
        if isinstance(server, str):  # "embedded"
            return QdrantTarget(EMBEDDED_COLLECTION, path=self.folder_on_disk / "qdrant")
        return QdrantTarget(f"agentform-{self.namespace}-{self.name}", url=server.url, api_key=self.qdrant_key)

    def settings(self) -> dict[str, Any]:
        """What the collection's vectors depend on: a change rebuilds it."""
        server = self.spec.store.qdrant
        return {"version": STATE_VERSION, "model": self.spec.embedding.model,
                "baseUrl": self.spec.embedding.base_url,
                "chunk": [self.spec.chunk.size, self.spec.chunk.overlap],
                "store": server if isinstance(server, str) else server.url}


@dataclass
class IndexState:
    settings: dict[str, Any] = field(default_factory=dict)
    dim: int = 0
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)   # path -> {sha256, chunks}
    revision: int | None = None
    indexed_at: float = 0.0

    @property
    def chunks(self) -> int:
        return sum(int(d.get("chunks", 0)) for d in self.documents.values())

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "dim": self.dim, "documents": self.documents,
                "revision": self.revision, "indexedAt": self.indexed_at}


@dataclass
class IndexReport:
    """What one ``index`` did, and what the knowledge base holds after it."""

    documents: int
    chunks: int
    revision: int | None
    embedded_documents: list[str] = field(default_factory=list)
    embedded_chunks: int = 0
    removed_documents: list[str] = field(default_factory=list)
    rebuilt: bool = False
    embed_seconds: float = 0.0
    upsert_seconds: float = 0.0

    def message(self) -> str:
        at = f" at revision {self.revision}" if self.revision is not None else ""
        work = (f"{len(self.embedded_documents)} embedded ({self.embedded_chunks} chunks), "
                f"{len(self.removed_documents)} removed") if self.embedded_documents or self.removed_documents \
            else "nothing changed"
        return f"{self.documents} documents, {self.chunks} chunks indexed{at} ({work})"


def load_state(target: KnowledgeTarget) -> IndexState | None:
    path = target.folder_on_disk / "state.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return IndexState(data["settings"], int(data["dim"]), dict(data["documents"]),
                          data.get("revision"), float(data.get("indexedAt", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_state(target: KnowledgeTarget, state: IndexState) -> None:
    path = target.folder_on_disk / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state.to_dict(), sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def index(target: KnowledgeTarget, *, revision: int | None = None, embedder: Any = None) -> IndexReport:
    """Bring the collection up to the documents on disk, re-embedding only what changed."""
    from . import qdrant
    from .chunking import chunk_text
    from .embedding import embedder_for
    from .sources import collect, read_text

    files = collect([s.path for s in target.spec.sources], target.folder, target.root)
    state = load_state(target)
    rebuild = state is None or state.settings != target.settings() or not _collection_exists(target)
    if rebuild:
        state = IndexState(target.settings())
    assert state is not None
    current = {f.rel: f for f in files}
    changed = [f for f in files if state.documents.get(f.rel, {}).get("sha256") != f.sha256]
    removed = sorted(set(state.documents) - set(current))
    embedder = embedder or embedder_for(target.spec.embedding, target.embedding_key)

    ids: list[str] = []
    payloads: list[dict[str, Any]] = []
    texts: list[str] = []
    counts: dict[str, int] = {}
    for source in changed:
        chunks = chunk_text(read_text(source), target.spec.chunk.size, target.spec.chunk.overlap)
        counts[source.rel] = len(chunks)
        for i, chunk in enumerate(chunks):
            # A secret value this process knows never reaches an embedding provider, Qdrant or a result.
            text = redact_text(chunk.text)
            ids.append(qdrant.point_id(source.rel, i))
            texts.append(text)
            payloads.append({"path": source.rel, "startLine": chunk.start_line, "endLine": chunk.end_line,
                             "heading": redact_text(chunk.heading), "text": text, "sha256": source.sha256})
    started = time.perf_counter()
    vectors = embedder.embed(texts) if texts else None
    embedded = time.perf_counter()
    dim = int(vectors.shape[1]) if vectors is not None else state.dim
    if not dim and (changed or removed):
        dim = int(embedder.embed(["dimension probe"]).shape[1])
    if dim:
        with qdrant.open_client(target.qdrant) as client:
            qdrant.ensure_collection(client, target.qdrant.collection, dim, recreate=rebuild)
            qdrant.delete_paths(client, target.qdrant.collection, [f.rel for f in changed if f.rel in state.documents]
                                + removed)
            if ids:
                qdrant.upsert(client, target.qdrant.collection, ids, vectors, payloads)
    for rel in removed:
        del state.documents[rel]
    for source in changed:
        state.documents[source.rel] = {"sha256": source.sha256, "chunks": counts[source.rel]}
    state.dim, state.revision, state.indexed_at = dim, revision, time.time()
    _save_state(target, state)
    return IndexReport(len(state.documents), state.chunks, revision, [f.rel for f in changed], len(ids),
                       removed, rebuild, embedded - started, time.perf_counter() - embedded)


def ensure(target: KnowledgeTarget) -> IndexState:
    """The index a run searches: as apply left it, or built now when this machine has none (or one
    made with other settings). Documents edited since apply are indexed by the next apply."""
    state = load_state(target)
    if state is not None and state.settings == target.settings() and _collection_exists(target):
        return state
    if not target.folder.is_dir():
        import socket

        raise KnowledgeError(
            f"knowledge base {target.key} has no index on this host ({socket.gethostname()}) and its sources "
            f"({target.folder}) are not here to build one: an embedded Qdrant lives on the host that applied it; "
            "run there, or give the KnowledgeBase a Qdrant server (store: {qdrant: {url: ...}})")
    try:
        index(target, revision=state.revision if state is not None else None)
    except KnowledgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - Qdrant or the model failed: the tool's caller reads why
        raise KnowledgeError(f"knowledge base {target.key} could not be indexed: {type(exc).__name__}: {exc}") from exc
    fresh = load_state(target)
    assert fresh is not None
    return fresh


def _collection_exists(target: KnowledgeTarget) -> bool:
    """Embedded: the collection's folder is on disk (no lock taken); a server: ask it."""
    q = target.qdrant
    if q.path is not None:
        return (q.path / "collection" / q.collection).is_dir()
    from .qdrant import open_client

    with open_client(q) as client:
        return bool(client.collection_exists(q.collection))
