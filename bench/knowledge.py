"""Benchmark: a knowledge base of 5,000 chunks with ``local/minilm`` (int8 ONNX, one thread).

Run as ``python bench/knowledge.py`` (by ``make bench``). It writes Markdown documents (the
project's docs, reworded per copy) that chunk into 5,000 chunks of ``CHUNK`` characters, then:

1. indexes them with ``engine/knowledge/index.py``'s ``index`` (what ``apply`` runs for a
   KnowledgeBase) and prints chunks/s for the embedding, for the Qdrant upsert (embedded,
   one commit per batch), and for the whole index (reading, chunking, hashing included);
2. applies the folder with ``Engine.apply`` on the same home: the index is up to date, so
   nothing is embedded again (the time is apply's own);
3. upserts 1,000 of the points into a fresh embedded collection as qdrant-client does by itself
   (a commit per point), for comparison with 1;
4. embeds a sample of 300 chunks of the default size (800 characters) to show what a
   default KnowledgeBase costs per chunk;
5. runs 300 different queries through ``Engine.search_knowledge`` (query embedding + Qdrant
   search + citations) and prints p50/p99.

Targets (issue 13): embedding >= 200 chunks/s on one core, indexing >= 150 chunks/s, p99 query
< 20 ms. The embedding figures depend on tokens per chunk, not characters: the script prints
tokens/s too. ``BENCH_KNOWLEDGE_CHUNKS`` and ``BENCH_KNOWLEDGE_CHUNK`` override the sizes.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHUNKS = int(os.environ.get("BENCH_KNOWLEDGE_CHUNKS", "5000"))
CHUNK = int(os.environ.get("BENCH_KNOWLEDGE_CHUNK", "200"))
QUERIES = 300
TARGETS = {"embed": 200, "index": 150, "p99_ms": 20}


def corpus(folder: Path, chunks: int, size: int) -> int:
    """Documents under ``folder/docs`` that chunk into about ``chunks`` chunks; returns their count."""
    from agentform.engine.knowledge.chunking import chunk_text

    paragraphs = [p.strip() for name in ("README.md", "ARCHITECTURE.md")
                  for p in (ROOT / name).read_text().split("\n\n") if len(p.strip()) > 40]
    docs, made, copy = folder / "docs", 0, 0
    docs.mkdir(parents=True)
    while made < chunks:
        # A copy per round, each paragraph tagged so that no two chunks are the same text.
        body = "\n\n".join(f"## Part {copy}.{i}\n\n{p} (copy {copy})" for i, p in enumerate(paragraphs))
        text = f"# Handbook volume {copy}\n\n{body}\n"
        found = chunk_text(text, size, size // 8)
        if made + len(found) > chunks:
            keep = chunks - made
            cut = found[keep - 1].end_line
            text = "\n".join(text.split("\n")[:cut]) + "\n"
            found = chunk_text(text, size, size // 8)
        (docs / f"volume-{copy:03}.md").write_text(text)
        made += len(found)
        copy += 1
    return made


def manifest(folder: Path, size: int) -> None:
    (folder / "kb.yaml").write_text(
        "apiVersion: agentform.dev/v1alpha1\nkind: KnowledgeBase\nmetadata: {name: handbook}\n"
        f"spec:\n  sources: [{{path: 'docs/*.md'}}]\n  embedding: {{model: local/minilm}}\n"
        f"  chunk: {{size: {size}, overlap: {size // 8}}}\n")


def tokens_of(texts: list[str]) -> int:
    from agentform.engine.knowledge.embedding import MiniLMEmbedder

    return sum(len(e.ids) for e in MiniLMEmbedder.shared()._tokenizer.encode_batch(texts))


class _Timed:
    """The embedder, with the CPU time of its calls summed (index() reports wall time)."""

    def __init__(self, embedder):
        self.embedder, self.model, self.cpu = embedder, embedder.model, 0.0

    def embed(self, texts):
        cpu = time.process_time()
        try:
            return self.embedder.embed(texts)
        finally:
            self.cpu += time.process_time() - cpu


def _pct(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return statistics.median(ordered) if q == 50 else ordered[max(0, int(len(ordered) * q / 100) - 1)]


def main() -> int:
    from agentform import Engine
    from agentform.engine.knowledge import qdrant
    from agentform.engine.knowledge.embedding import MiniLMEmbedder
    from agentform.engine.knowledge.index import index
    from agentform.engine.knowledge.search import make_target
    from agentform.engine.knowledge.sources import pin
    from agentform.specs import KINDS

    os.environ.setdefault("AGENTFORM_EMBEDDING_THREADS", "1")
    embedder = MiniLMEmbedder.shared()
    embedder.embed(["warm up the session"])
    with tempfile.TemporaryDirectory(prefix="af-bench-knowledge-") as tmp:
        folder, home = Path(tmp) / "repo", Path(tmp) / "home"
        count = corpus(folder, CHUNKS, CHUNK)
        manifest(folder, CHUNK)
        spec = KINDS["KnowledgeBase"].model_validate({
            "apiVersion": "agentform.dev/v1alpha1", "kind": "KnowledgeBase", "metadata": {"name": "handbook"},
            "spec": {"sources": [{"path": "docs/*.md"}], "embedding": {"model": "local/minilm"},
                     "chunk": {"size": CHUNK, "overlap": CHUNK // 8}}}).spec
        target = make_target("default", "handbook", spec, pin(["docs/*.md"], folder, folder), home=home, secrets={})

        timed = _Timed(embedder)
        started, cpu = time.perf_counter(), time.process_time()
        report = index(target, embedder=timed)
        total, total_cpu = time.perf_counter() - started, time.process_time() - cpu
        assert report.chunks == count, (report.chunks, count)
        from agentform.engine.knowledge.chunking import chunk_text

        texts = [c.text for f in sorted((folder / "docs").glob("*.md"))
                 for c in chunk_text(f.read_text(), CHUNK, CHUNK // 8)]
        tokens = tokens_of(texts)
        print(f"corpus: {count} chunks of <= {CHUNK} characters, {tokens / count:.0f} tokens each on average "
              f"(all-MiniLM-L6-v2 reads at most 256)")
        # Wall time, and this process's CPU time (what one core does when the machine is shared).
        print(f"embedding (local/minilm, int8 ONNX, 1 thread): {count / report.embed_seconds:7.0f} chunks/s wall, "
              f"{count / timed.cpu:.0f} per CPU-second ({tokens / timed.cpu:.0f} tokens/s)   "
              f"target >= {TARGETS['embed']}")
        print(f"qdrant upsert (embedded, one commit per batch): {count / report.upsert_seconds:7.0f} chunks/s wall")
        print(f"indexing overall (read, chunk, embed, upsert): {count / total:7.0f} chunks/s wall ({total:.1f} s), "
              f"{count / total_cpu:.0f} per CPU-second   target >= {TARGETS['index']}")

        engine = Engine(home=home)
        started = time.perf_counter()
        result = engine.apply(folder)
        print(f"apply after it (index up to date, nothing embedded): {time.perf_counter() - started:.2f} s, "
              f"exit {result.exit_code}")

        per_point = qdrant.QdrantTarget("chunks", path=Path(tmp) / "per-point")
        some = texts[:1000]
        vectors = embedder.embed(some)
        from qdrant_client import QdrantClient, models

        client = QdrantClient(path=str(per_point.path))
        client.create_collection("chunks", vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE))
        started = time.perf_counter()
        client.upsert("chunks", points=models.Batch(ids=list(range(len(some))), vectors=vectors.tolist(),
                                                    payloads=[{"text": t} for t in some]))
        print(f"qdrant upsert as qdrant-client does it (a commit per point, {len(some)} points): "
              f"{len(some) / (time.perf_counter() - started):7.0f} chunks/s")
        client.close()

        sample = [c.text for f in sorted((folder / "docs").glob("*.md"))[:4]
                  for c in chunk_text(f.read_text(), 800, 100)][:300]
        started = time.process_time()
        embedder.embed(sample)
        took = time.process_time() - started
        print(f"embedding at the default chunk size (800 characters, {tokens_of(sample) / len(sample):.0f} tokens): "
              f"{len(sample) / took:7.0f} chunks per CPU-second")

        words = sorted({w for t in texts[:400] for w in re.findall(r"[a-z]{5,}", t.lower())})
        queries = [f"how does {words[i % len(words)]} work with {words[(i * 7 + 3) % len(words)]}"
                   for i in range(QUERIES)]
        engine.search_knowledge("handbook", "warm up", top_k=5)   # loads the index into this process
        times, cpus = [], []
        for query in queries:
            started, cpu = time.perf_counter(), time.process_time()
            hits = engine.search_knowledge("handbook", query, top_k=5)
            times.append((time.perf_counter() - started) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
            assert hits.hits, query
        print(f"search_knowledge through Engine ({QUERIES} queries, top 5 of {count}): "
              f"wall p50 {_pct(times, 50):.1f} ms, p99 {_pct(times, 99):.1f} ms; "
              f"CPU p50 {_pct(cpus, 50):.1f} ms, p99 {_pct(cpus, 99):.1f} ms   target p99 < {TARGETS['p99_ms']} ms")
        print(f"machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
