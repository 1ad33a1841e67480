"""An agent calls ``search_knowledge`` in a run (scripted model): the tool result carries the
chunks with their path and line range, the model reads them, and the agent's answer can cite
them; a filter naming another base, or a bad ``top_k``, is a tool error the model reads.
"""

from __future__ import annotations

from runtime.helpers import agent, manifest, of, project, run

from knowledge.helpers import BILLING, DOCS, line_of


def _repo(tmp_path, turns):
    root = tmp_path / "repo"
    for rel, text in DOCS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    kb = manifest("KnowledgeBase", "handbook", {"sources": [{"path": "docs/**/*.md"}],
                                                "embedding": {"model": "local/minilm"},
                                                "chunk": {"size": 200, "overlap": 40}})
    return project(root, {"agents": {"clerk": turns}}, [kb, agent("clerk", tools=[{"knowledge": "handbook"}])])


def test_an_agent_searches_and_cites(store, tmp_path):
    call = {"name": "search_knowledge", "arguments": {"query": "how long does a refund take?", "top_k": 2}}
    bad = {"name": "search_knowledge", "arguments": {"query": "refunds", "filter": {"knowledgeBase": "wiki"}}}
    root = _repo(tmp_path, [{"toolCalls": [call]}, {"toolCalls": [bad]},
                            {"content": "Refunds take fourteen days (docs/billing.md)."}])
    result, events = run(store, tmp_path / "home", root, "agent/clerk", input="refund time?")
    assert result.status == "succeeded", result.error
    results = [e.data for e in of(events, "tool.result") if e.data.get("name") == "search_knowledge"]
    assert len(results) == 2
    found = results[0]["output"]["results"]
    assert len(found) == 2 and found[0]["path"] == "docs/billing.md"
    refund = line_of(BILLING, "within fourteen days")
    assert found[0]["startLine"] <= refund <= found[0]["endLine"]
    assert found[0]["citation"] == f"docs/billing.md:{found[0]['startLine']}-{found[0]['endLine']}"
    assert "no knowledge base 'wiki'" in results[1]["error"] and "handbook" in results[1]["error"]
    assert result.output == "Refunds take fourteen days (docs/billing.md)."


def test_replay_serves_the_search_from_the_stream(store, tmp_path):
    import asyncio
    import shutil

    from agentform.engine.api import Engine

    call = {"name": "search_knowledge", "arguments": {"query": "refunds", "top_k": 1}}
    root = _repo(tmp_path, [{"toolCalls": [call]}, {"content": "fourteen days"}])
    home = tmp_path / "home"
    result, events = run(store, home, root, "agent/clerk")
    assert result.status == "succeeded", result.error
    shutil.rmtree(home / "knowledge")   # no index and no documents: a replay must not need them
    shutil.rmtree(root / "docs")
    report = asyncio.run(Engine(home=home, store=store).replay(result.id))
    assert report.same, report.divergence
    assert not (home / "knowledge").exists()
