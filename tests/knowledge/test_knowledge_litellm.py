"""Knowledge bases with a litellm embedding model served over real HTTP by the tests' local
OpenAI-compatible server (openai_stub.py, /v1/embeddings), on SQLite and PostgreSQL: the
relevant chunk is found and cited with the right lines, a re-apply re-embeds only the changed
document (the server counts the inputs), a deleted document's points are gone from Qdrant.
"""

from __future__ import annotations

import pytest
from runtime.helpers import apply, manifest

from agentform.engine.api import Engine
from knowledge.helpers import BILLING, DOCS, cited_lines, handbook, line_of, ready
from knowledge.openai_stub import OpenAIStub

KEY = "sk-embed-stub-0123456789"


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        yield server


def _kb(tmp_path, stub):
    embedding = {"model": "openai/stub-embed", "baseUrl": stub.url, "apiKey": {"secretRef": "embed-key"}}
    return handbook(tmp_path / "repo", embedding, [manifest("Secret", "embed-key", {"fromEnv": "AF_TEST_EMBED_KEY"})])


def _embedded(stub) -> list[str]:
    return [text for request in stub.embedded for text in request]


def test_relevant_chunk_found_and_cited(store, tmp_path, stub, monkeypatch):
    monkeypatch.setenv("AF_TEST_EMBED_KEY", KEY)
    root = _kb(tmp_path, stub)
    apply(store, root, tmp_path / "home")
    status = ready(store)
    assert status.status == "True", status.message
    assert status.message.startswith("3 documents, ") and "at revision 1" in status.message
    assert all(h.get("authorization") == f"Bearer {KEY}" for h in stub.headers)

    engine = Engine(home=tmp_path / "home", store=store)
    found = engine.search_knowledge("handbook", "how many days until a refund is paid back", top_k=3)
    top = found.hits[0]
    assert top.path == "docs/billing.md"
    refund = line_of(BILLING, "within fourteen days")
    assert top.start_line <= refund <= top.end_line
    assert "within fourteen days" in cited_lines(root, top)
    assert top.citation == f"docs/billing.md:{top.start_line}-{top.end_line}"
    assert found.to_dict()["results"][0]["citation"] == top.citation
    # a path glob narrows the search to the documents it matches
    narrowed = engine.search_knowledge("handbook", "refund", top_k=5, path="docs/heating.md")
    assert narrowed.hits and {h.path for h in narrowed.hits} == {"docs/heating.md"}


def test_reapply_re_embeds_only_the_changed_document(store, tmp_path, stub, monkeypatch):
    monkeypatch.setenv("AF_TEST_EMBED_KEY", KEY)
    root = _kb(tmp_path, stub)
    home = tmp_path / "home"
    apply(store, root, home)
    first = _embedded(stub)
    assert any("fourteen days" in t for t in first) and any("argon2id" in t for t in first)

    stub.embedded.clear()
    edited = BILLING.replace("within fourteen days", "within thirty days")
    (root / "docs/billing.md").write_text(edited)
    apply(store, root, home)
    again = _embedded(stub)
    billing_chunks = [t for t in first if t in BILLING]
    # exactly the chunks of the edited file, none of the others
    assert len(again) == len(billing_chunks)
    assert all(t in edited for t in again)
    assert "(1 embedded (" in ready(store).message and "at revision 2" in ready(store).message

    stub.embedded.clear()
    apply(store, root, home)    # nothing changed: no revision, nothing embedded
    assert _embedded(stub) == []
    found = Engine(home=home, store=store).search_knowledge("handbook", "days until a refund is paid", top_k=1)
    assert "thirty days" in found.hits[0].text


def test_deleted_document_points_are_removed(store, tmp_path, stub, monkeypatch):
    monkeypatch.setenv("AF_TEST_EMBED_KEY", KEY)
    root = _kb(tmp_path, stub)
    home = tmp_path / "home"
    apply(store, root, home)
    engine = Engine(home=home, store=store)
    before = engine.search_knowledge("handbook", "argon2id password hashing", top_k=1)
    assert before.hits[0].path == "docs/security/passwords.md"

    stub.embedded.clear()
    (root / "docs/security/passwords.md").unlink()
    apply(store, root, home)
    assert _embedded(stub) == []          # removing re-embeds nothing
    assert ready(store).message.startswith("2 documents, ") and "1 removed" in ready(store).message
    after = engine.search_knowledge("handbook", "argon2id password hashing", top_k=10)
    assert after.hits and "docs/security/passwords.md" not in {h.path for h in after.hits}
    assert _points_by_path(home) == {p for p in DOCS if p != "docs/security/passwords.md"}


def _points_by_path(home) -> set[str]:
    """The documents that have points in the embedded collection, read with qdrant-client itself."""
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(home / "knowledge/default/handbook/qdrant"))
    try:
        points, _ = client.scroll("chunks", limit=10_000, with_payload=True)
        return {p.payload["path"] for p in points}
    finally:
        client.close()


def test_a_secret_in_a_document_never_reaches_the_provider_or_a_result(store, tmp_path, stub, monkeypatch):
    monkeypatch.setenv("AF_TEST_EMBED_KEY", KEY)
    root = _kb(tmp_path, stub)
    (root / "docs/leak.md").write_text(f"# Keys\n\nThe embedding key is {KEY} for the staging server.\n")
    home = tmp_path / "home"
    apply(store, root, home)
    sent = _embedded(stub)
    assert any("staging server" in t for t in sent) and not any(KEY in t for t in sent)
    hit = Engine(home=home, store=store).search_knowledge("handbook", "embedding key staging", top_k=1).hits[0]
    assert hit.path == "docs/leak.md" and KEY not in hit.text and "staging server" in hit.text
    assert KEY not in (home / "knowledge/default/handbook/state.json").read_text()
    assert not any(KEY.encode() in f.read_bytes() for f in (home / "knowledge").rglob("*") if f.is_file())
