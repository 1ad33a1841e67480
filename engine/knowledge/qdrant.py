"""Qdrant for knowledge bases: embedded (qdrant-client's local mode under the engine home) or a server.

Local mode keeps every point in memory and persists each one to SQLite with its own commit;
``upsert`` here writes a whole batch in one transaction instead (``_one_commit``), which is
what makes indexing thousands of chunks take a second rather than minutes. Local mode also
takes an exclusive lock on its folder: one client per folder per machine. So a client is
opened for as long as a job needs it (an apply's upsert, a run's load) and closed; an
opener that finds the folder busy waits for it, within ``wait`` seconds. A run searches a
float32 copy of the collection (``load_memory``, ``MemoryIndex``) and holds no lock; a Qdrant
server is queried directly. qdrant_client is imported here only.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentform.engine.errors import KnowledgeError

UPSERT_BATCH = 2048
_ID_NAMESPACE = uuid.UUID("6f1d2c53-0f5e-4b44-9a53-6a0c4f7e2b10")
_process_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


@dataclass(frozen=True, slots=True)
class QdrantTarget:
    """Where a knowledge base's points live: a local folder, or a server URL (and its API key)."""

    collection: str
    path: Path | None = None
    url: str | None = None
    api_key: str | None = None

    def describe(self) -> str:
        return f"embedded Qdrant at {self.path}" if self.path is not None else f"Qdrant at {self.url}"


def point_id(rel: str, index: int) -> str:
    """A chunk's point id: stable for (document, position), so a re-index overwrites in place."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{rel}\n{index}"))


@contextlib.contextmanager
def open_client(target: QdrantTarget, *, wait: float = 120.0) -> Iterator[Any]:
    """A client for ``target``, closed on exit; waits for a local folder another client holds."""
    try:
        from qdrant_client import QdrantClient
    except ImportError as exc:
        raise KnowledgeError(f"knowledge bases need qdrant-client (pip install 'agentform[knowledge]'): {exc}") from None
    if target.path is None:
        client = QdrantClient(url=target.url, api_key=target.api_key, timeout=60)
        try:
            yield client
        finally:
            client.close()
        return
    target.path.mkdir(parents=True, exist_ok=True)
    with _guard:
        local = _process_locks.setdefault(str(target.path), threading.Lock())
    if not local.acquire(timeout=wait):
        raise KnowledgeError(f"{target.describe()} stayed busy in this process for {wait:g}s")
    try:
        client = _open_local(QdrantClient, target, wait)
        try:
            yield client
        finally:
            client.close()
    finally:
        local.release()


def _open_local(factory: Any, target: QdrantTarget, wait: float) -> Any:
    deadline, pause = time.monotonic() + wait, 0.02
    while True:
        try:
            return factory(path=str(target.path))
        except RuntimeError as exc:
            if "already accessed" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise KnowledgeError(
                    f"{target.describe()} is held by another process (an apply indexing it, or a run "
                    f"loading it) for more than {wait:g}s; retry when it is done") from None
        time.sleep(pause)   # the other holder's job is short; poll its lock with backoff
        pause = min(pause * 2, 0.5)


def ensure_collection(client: Any, collection: str, dim: int, *, recreate: bool = False) -> bool:
    """Create the collection (cosine, ``dim``) when missing or asked; True when it was (re)created."""
    from qdrant_client import models

    exists = client.collection_exists(collection)
    if exists and not recreate:
        return False
    if exists:
        client.delete_collection(collection)
    client.create_collection(collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE))
    return True


def delete_paths(client: Any, collection: str, paths: list[str]) -> None:
    """Remove every point of these documents."""
    if not paths:
        return
    from qdrant_client import models

    selector = models.FilterSelector(filter=_paths_filter(paths))
    with _one_commit(client, collection):
        client.delete(collection, points_selector=selector, wait=True)


def upsert(client: Any, collection: str, ids: list[str], vectors: Any, payloads: list[dict[str, Any]]) -> None:
    """Write the points in batches of ``UPSERT_BATCH``, each batch one transaction in local mode."""
    from qdrant_client import models

    for start in range(0, len(ids), UPSERT_BATCH):
        stop = start + UPSERT_BATCH
        batch = models.Batch(ids=ids[start:stop], vectors=vectors[start:stop].tolist(), payloads=payloads[start:stop])
        with _one_commit(client, collection):
            client.upsert(collection, points=batch, wait=True)


def search(client: Any, collection: str, vector: Any, limit: int, paths: list[str] | None = None) -> list[Hit]:
    """The ``limit`` nearest points (with payloads), among ``paths`` when given; ``client`` is a
    Qdrant client (a server) or a MemoryIndex (an embedded collection loaded by this process)."""
    if isinstance(client, MemoryIndex):
        return client.search(vector, limit, paths)
    response = client.query_points(collection, query=vector.tolist(), limit=limit, with_payload=True,
                                   query_filter=_paths_filter(paths) if paths is not None else None)
    return [Hit(p.id, float(p.score), p.payload or {}) for p in response.points]


@dataclass(frozen=True, slots=True)
class Hit:
    id: Any
    score: float
    payload: dict[str, Any]


class MemoryIndex:
    """A copy of an embedded collection as one float32 matrix, scanned exactly as local mode does.

    Local mode scans all points in numpy too, but turns each query into float64 (which copies the
    whole matrix per query: 8 ms at 5,000 points here); the same scan in float32 takes 0.7 ms.
    Scores are the collection's cosine (the vectors are unit length), top ``limit`` by score.
    """

    def __init__(self, ids: list[Any], vectors: Any, payloads: list[dict[str, Any]]):
        import numpy as np

        self.ids, self.payloads = ids, payloads
        self.vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1) if ids else None
        self.paths = np.array([str(p.get("path", "")) for p in payloads], dtype=object)

    def search(self, vector: Any, limit: int, paths: list[str] | None = None) -> list[Hit]:
        import numpy as np

        if self.vectors is None:
            return []
        # einsum, not BLAS: OpenBLAS's threads spin against the engine's own (13 ms vs 0.3 ms here).
        scores = np.einsum("ij,j->i", self.vectors, np.asarray(vector, dtype=np.float32))
        if paths is not None:
            scores = np.where(np.isin(self.paths, paths), scores, -np.inf)
        limit = min(limit, len(scores))
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(self.ids[i], float(scores[i]), self.payloads[i]) for i in top if np.isfinite(scores[i])]


def load_memory(target: QdrantTarget) -> MemoryIndex:
    """The embedded collection read once into a MemoryIndex (no lock held afterwards)."""
    ids: list[Any] = []
    vectors: list[Any] = []
    payloads: list[dict[str, Any]] = []
    with open_client(target) as client:
        if not client.collection_exists(target.collection):
            return MemoryIndex([], None, [])
        offset = None
        while True:
            points, offset = client.scroll(target.collection, limit=4096, offset=offset,
                                           with_payload=True, with_vectors=True)
            for p in points:
                ids.append(p.id)
                vectors.append(p.vector)
                payloads.append(p.payload or {})
            if offset is None:
                return MemoryIndex(ids, vectors, payloads)


def _paths_filter(paths: list[str]) -> Any:
    from qdrant_client import models

    return models.Filter(must=[models.FieldCondition(key="path", match=models.MatchAny(any=list(paths)))])


class _NoCommit:
    """The SQLite connection of a local collection, with ``with conn:`` made a no-op (no commit)."""

    def __init__(self, conn: Any):
        self._conn = conn

    def __enter__(self) -> Any:
        return self._conn

    def __exit__(self, *exc: Any) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@contextlib.contextmanager
def _one_commit(client: Any, collection: str) -> Iterator[None]:
    """In local mode, the points written inside commit once at the end (rolled back on error).

    qdrant-client persists each point in ``with connection:`` (a commit per point: 1-12 s per
    1,000 points on these disks). Its persistence object is reached through private attributes;
    when they are not there (another qdrant-client, server mode), writes go through unchanged.
    """
    local = getattr(client, "_client", None)
    collection_obj = getattr(local, "collections", {}).get(collection) if local is not None else None
    persistence = getattr(collection_obj, "storage", None)
    conn = getattr(persistence, "storage", None)
    if conn is None or not hasattr(conn, "commit"):
        yield
        return
    persistence.storage = _NoCommit(conn)
    try:
        yield
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        persistence.storage = conn
