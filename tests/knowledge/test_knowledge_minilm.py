"""Knowledge bases with ``local/minilm`` (all-MiniLM-L6-v2, int8 ONNX, in process): the
relevant chunk is found by meaning (no shared keywords needed) and cited with the right lines;
a re-apply embeds only the changed document (counted at the embedder); a run on a fresh engine
home builds the missing index itself.
"""

from __future__ import annotations

import shutil

import pytest
from runtime.helpers import apply

from agentform.engine.api import Engine
from agentform.engine.errors import KnowledgeError
from knowledge.helpers import BILLING, HEATING, cited_lines, handbook, line_of, ready


class _Counting:
    """Wraps the shared MiniLM embedder and counts the texts it embeds."""

    def __init__(self, monkeypatch):
        from agentform.engine.knowledge import embedding

        self.texts: list[str] = []
        real = embedding.MiniLMEmbedder.shared()
        original = type(real).embed

        def embed(this, texts):
            self.texts.extend(texts)
            return original(this, texts)

        monkeypatch.setattr(embedding.MiniLMEmbedder, "embed", embed)


def test_found_by_meaning_and_cited(store, tmp_path):
    root = handbook(tmp_path / "repo", {"model": "local/minilm"})
    apply(store, root, tmp_path / "home")
    assert ready(store).status == "True", ready(store).message
    engine = Engine(home=tmp_path / "home", store=store)
    # the query shares almost no words with the answer: found by meaning
    found = engine.search_knowledge("handbook", "how do I get my money back?", top_k=2)
    top = found.hits[0]
    assert top.path == "docs/billing.md"
    assert top.start_line <= line_of(BILLING, "A refund is paid back") <= top.end_line
    assert "refund is paid back" in cited_lines(root, top)
    maintenance = engine.search_knowledge("handbook", "yearly maintenance of the outside unit", top_k=1).hits[0]
    assert maintenance.path == "docs/heating.md"
    assert maintenance.start_line <= line_of(HEATING, "once a year") <= maintenance.end_line
    assert 0 < maintenance.score <= 1


def test_reapply_embeds_only_the_changed_document(store, tmp_path, monkeypatch):
    counting = _Counting(monkeypatch)
    root = handbook(tmp_path / "repo", {"model": "local/minilm"})
    home = tmp_path / "home"
    apply(store, root, home)
    assert any("argon2id" in t for t in counting.texts)
    counting.texts.clear()
    (root / "docs/heating.md").write_text(HEATING + "\n## Noise\n\nNight mode lowers the fan speed after 22:00.\n")
    apply(store, root, home)
    assert counting.texts and all(t in (root / "docs/heating.md").read_text() for t in counting.texts)
    assert any("Night mode" in t for t in counting.texts)
    assert "(1 embedded (" in ready(store).message
    hit = Engine(home=home, store=store).search_knowledge("handbook", "quiet operation at night", top_k=1).hits[0]
    assert hit.path == "docs/heating.md" and "Night mode" in hit.text


def test_a_fresh_engine_home_builds_the_index_it_lacks(store, tmp_path):
    root = handbook(tmp_path / "repo", {"model": "local/minilm"})
    home = tmp_path / "home"
    apply(store, root, home)
    shutil.rmtree(home / "knowledge")          # another host, or a wiped home: only the store is shared
    found = Engine(home=home, store=store).search_knowledge("handbook", "argon2id hashing of passwords", top_k=1)
    assert found.hits[0].path == "docs/security/passwords.md"
    assert (home / "knowledge/default/handbook/state.json").is_file()


def test_another_host_without_the_index_or_the_sources_is_told_why(store, tmp_path):
    root = handbook(tmp_path / "repo", {"model": "local/minilm"})
    apply(store, root, tmp_path / "home")
    shutil.rmtree(root)                        # the sources are not on this host ...
    elsewhere = Engine(home=tmp_path / "other-home", store=store)   # ... nor an index
    with pytest.raises(KnowledgeError) as caught:
        elsewhere.search_knowledge("handbook", "refunds")
    assert "no index on this host" in str(caught.value) and "Qdrant server" in str(caught.value)


def test_pdf_text_is_indexed_page_by_page(store, tmp_path):
    from knowledge.helpers import tiny_pdf

    root = handbook(tmp_path / "repo", {"model": "local/minilm"}, sources=("docs/**/*.md", "docs/warranty.pdf"))
    (root / "docs/warranty.pdf").write_bytes(tiny_pdf(["Warranty covers the compressor for ten years.",
                                                       "Shipping is free within the European Union."]))
    apply(store, root, tmp_path / "home")
    assert ready(store).message.startswith("4 documents, ")
    hit = Engine(home=tmp_path / "home", store=store).search_knowledge(
        "handbook", "how long is the compressor guaranteed", top_k=1, path="docs/*.pdf").hits[0]
    assert hit.path == "docs/warranty.pdf" and "ten years" in hit.text
    assert hit.start_line == 1      # page 1 is the first line of the extracted text


def test_the_loaded_index_ranks_as_qdrant_does(store, tmp_path):
    """The run's float32 scan (qdrant.MemoryIndex) returns what Qdrant's own query returns."""
    import numpy as np
    from qdrant_client import QdrantClient

    from agentform.engine.knowledge import qdrant
    from agentform.engine.knowledge.embedding import MiniLMEmbedder

    root = handbook(tmp_path / "repo", {"model": "local/minilm"}, chunk={"size": 100, "overlap": 20})
    apply(store, root, tmp_path / "home")
    target = qdrant.QdrantTarget("chunks", path=tmp_path / "home/knowledge/default/handbook/qdrant")
    memory = qdrant.load_memory(target)
    client = QdrantClient(path=str(target.path))
    try:
        for query in ("refunds for annual plans", "outdoor unit", "signing keys", "invoices by email"):
            vector = MiniLMEmbedder.shared().embed([query])[0]
            for paths in (None, ["docs/heating.md", "docs/billing.md"]):
                ours = qdrant.search(memory, "chunks", vector, 4, paths)
                theirs = qdrant.search(client, "chunks", vector, 4, paths)
                assert [h.id for h in ours] == [h.id for h in theirs]
                assert np.allclose([h.score for h in ours], [h.score for h in theirs], atol=1e-5)
                assert paths is None or {h.payload["path"] for h in ours} <= set(paths)
    finally:
        client.close()
