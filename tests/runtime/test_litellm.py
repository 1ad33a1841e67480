"""Real agents through litellm against a local OpenAI-compatible server (no network)."""

from __future__ import annotations

import pytest

from agentform.engine.runtime import runner
from agentform.engine.store import open_store

from .helpers import apply, write_tree
from .openai_stub import OpenAIStub

KEY = "sk-test-very-secret-123"


def manifests(url: str) -> dict[str, str]:
    head = "apiVersion: agentform.dev/v1alpha1\n"
    return {"models.yaml": f"""
        {head}kind: Secret
        metadata: {{name: stub-key}}
        spec: {{fromEnv: STUB_KEY}}
        ---
        {head}kind: Model
        metadata: {{name: main}}
        spec:
          model: openai/stub-main
          baseUrl: {url}
          apiKey: {{secretRef: stub-key}}
          retries: 2
          pricing: {{inputPerMTok: 1.0, outputPerMTok: 2.0}}
        ---
        {head}kind: Model
        metadata: {{name: broken}}
        spec:
          model: openai/stub-broken
          baseUrl: {url}
          apiKey: {{secretRef: stub-key}}
          retries: 1
          fallbacks: [backup]
        ---
        {head}kind: Model
        metadata: {{name: backup}}
        spec:
          model: openai/stub-backup
          baseUrl: {url}
          apiKey: {{secretRef: stub-key}}
          retries: 0
        ---
        {head}kind: Model
        metadata: {{name: denied}}
        spec:
          model: openai/stub-denied
          baseUrl: {url}
          apiKey: {{secretRef: stub-key}}
        """.replace("\n        ", "\n"),
        "agents.yaml": f"""
        {head}kind: Agent
        metadata: {{name: boss}}
        spec: {{model: main, instructions: "You are {{{{ agent.name }}}}, run {{{{ run.id }}}}."}}
        ---
        {head}kind: Agent
        metadata: {{name: helper}}
        spec: {{model: main, description: Helps}}
        ---
        {head}kind: Team
        metadata: {{name: crew}}
        spec: {{manager: boss, members: [{{agent: helper}}]}}
        ---
        {head}kind: Agent
        metadata: {{name: fragile}}
        spec: {{model: broken}}
        ---
        {head}kind: Agent
        metadata: {{name: locked}}
        spec: {{model: denied}}
        """.replace("\n        ", "\n"),
    }


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_KEY", KEY)
    monkeypatch.setattr("agentform.engine.runtime.models.litellm_model.RETRY_BASE_S", 0.01)
    with OpenAIStub() as stub:
        write_tree(tmp_path / "m", manifests(stub.url))
        store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
        apply(store, tmp_path / "m", tmp_path)
        yield stub, store, tmp_path
        store.close()


def test_streaming_tool_calls_retry_usage_and_cost(env):
    stub, store, home = env
    stub.replies["stub-main"] = [
        {"tool_calls": [("ask_helper", {"task": "say hi"})], "usage": (100, 20)},
        {"status": 429, "message": "slow down"},
        {"content": "helper says hi", "usage": (50, 10)},
        {"content": "the final answer", "usage": (200, 30)},
    ]
    result = runner.start_run(store, "team/crew", input="go", home=home)
    assert result.status == "succeeded", result.error
    assert result.output == "the final answer"
    assert (result.tokens_in, result.tokens_out) == (350, 60)
    assert result.cost_usd == pytest.approx((350 * 1.0 + 60 * 2.0) / 1e6)
    events = store.read_events(result.id)
    deltas = [e.data["text"] for e in events if e.type == "message.delta" and e.path == "crew/helper"]
    # streamed; with the API key registered, chunks shorter than the redactor's hold-back
    # (engine/redaction.py DeltaHold) are released together when the message completes
    assert "".join(deltas) == "helper says hi" and deltas
    call = next(e for e in events if e.type == "tool.call")
    assert call.data["name"] == "ask_helper" and call.data["arguments"] == {"task": "say hi"}
    usage = [e.data for e in events if e.type == "usage"]
    assert sum(u["cost_usd"] for u in usage) == pytest.approx(result.cost_usd)
    assert len(stub.requests) == 4  # one 429, retried by us
    system = stub.requests[0]["messages"][0]
    assert system == {"role": "system", "content": f"You are boss, run {result.id}."}
    assert [t["function"]["name"] for t in stub.requests[0]["tools"]] == ["ask_helper"]
    last = stub.requests[3]["messages"]
    assert last[-1]["role"] == "tool" and last[-1]["content"] == "helper says hi"
    assert last[-1]["tool_call_id"] == "call_stub_0"
    assert all(h.get("authorization") == f"Bearer {KEY}" for h in stub.headers)
    record = store.get_run(result.id)
    assert (record.tokens_in, record.tokens_out, record.status) == (350, 60, "succeeded")


def test_fallback_after_retries(env):
    stub, store, home = env
    stub.replies["stub-broken"] = [{"status": 500}, {"status": 503}]
    stub.replies["stub-backup"] = [{"content": "from the backup"}]
    result = runner.start_run(store, "agent/fragile", input="go", home=home)
    assert result.status == "succeeded", result.error
    assert result.output == "from the backup"
    models = [r["model"] for r in stub.requests]
    assert models == ["stub-broken", "stub-broken", "stub-backup"]
    completed = next(e for e in store.read_events(result.id) if e.type == "message.completed")
    assert completed.data["model"] == "openai/stub-backup"


def test_provider_error_fails_the_run_without_the_key(env):
    stub, store, home = env
    stub.replies["stub-denied"] = [{"status": 401, "message": f"invalid key {KEY}"}]
    result = runner.start_run(store, "agent/locked", input="go", home=home)
    assert result.status == "failed" and result.exit_code == 1
    assert "401" in result.error and KEY not in result.error
    for event in store.read_events(result.id):
        assert KEY not in str(event.data)
    assert len(stub.requests) == 1  # 401 is not retried
