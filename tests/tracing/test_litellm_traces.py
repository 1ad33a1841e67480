"""Model-call spans of real agents through litellm (a local OpenAI-compatible server): the
model as litellm names it, its provider, tokens and cost from the provider's usage, time to
first chunk of a streamed reply, the fallback model that answered, and the API key nowhere."""

from __future__ import annotations

import json

import pytest

from agentform.engine import tracing
from agentform.engine.runtime import runner
from agentform.engine.store import open_store
from tests.runtime.helpers import apply, write_tree
from tests.runtime.openai_stub import OpenAIStub
from tests.runtime.test_litellm import KEY, manifests

from .receiver import Receiver
from .test_traces import _finished, _named, _tree_checks


@pytest.fixture
def stubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_KEY", KEY)
    monkeypatch.setenv(tracing.CAPTURE_VARIABLE, "true")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setattr("agentform.engine.runtime.models.litellm_model.RETRY_BASE_S", 0.01)
    with OpenAIStub() as stub, Receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        write_tree(tmp_path / "m", manifests(stub.url))
        store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
        apply(store, tmp_path / "m", tmp_path)
        yield stub, receiver, store, tmp_path
        tracing.flush()
        store.close()


def test_litellm_model_calls_as_genai_spans(stubbed):
    stub, receiver, store, home = stubbed
    stub.replies["stub-main"] = [
        {"tool_calls": [("ask_helper", {"task": "say hi"})], "usage": (100, 20)},
        {"content": "helper says hi", "usage": (50, 10)},
        {"content": f"the final answer, and the key {KEY}", "usage": (200, 30)},
    ]
    result = runner.start_run(store, "team/crew", input="go", home=home)
    assert result.status == "succeeded", result.error
    spans = receiver.wait_for(_finished("run team/default/crew"))
    _tree_checks(spans, result.id)
    chats = sorted((s for s in spans if s.name == "chat openai/stub-main"), key=lambda s: s.end_ns)
    assert [(c.attributes["gen_ai.usage.input_tokens"], c.attributes["gen_ai.usage.output_tokens"]) for c in chats] \
        == [(100, 20), (50, 10), (200, 30)]
    for chat in chats:
        assert chat.attributes["gen_ai.request.model"] == "openai/stub-main"
        assert chat.attributes["gen_ai.provider.name"] == "openai"
        assert chat.attributes["agentform.cost_usd"] == pytest.approx(
            (chat.attributes["gen_ai.usage.input_tokens"] * 1.0 + chat.attributes["gen_ai.usage.output_tokens"] * 2.0) / 1e6)
    assert chats[0].attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert chats[2].attributes["gen_ai.response.finish_reasons"] == ["stop"]
    helper = chats[1]
    assert helper.attributes["agentform.path"] == "crew/helper"
    assert 0 <= helper.attributes["gen_ai.response.time_to_first_chunk"] <= (helper.end_ns - helper.start_ns) / 1e9
    final = json.loads(chats[2].attributes["gen_ai.output.messages"])[0]["parts"][0]["content"]
    assert final == "the final answer, and the key ***"
    assert _named(spans, "run team/default/crew").attributes["agentform.cost_usd"] == pytest.approx(result.cost_usd)
    assert KEY.encode() not in b"".join(receiver.bodies)


def test_the_fallback_that_answered_is_the_spans_model(stubbed):
    stub, receiver, store, home = stubbed
    stub.replies["stub-broken"] = [{"status": 500}, {"status": 503}]
    stub.replies["stub-backup"] = [{"content": "from the backup"}]
    result = runner.start_run(store, "agent/fragile", input="go", home=home)
    assert result.status == "succeeded", result.error
    spans = receiver.wait_for(_finished("run agent/default/fragile"))
    chat = _named(spans, "chat openai/stub-backup")
    assert chat.attributes["gen_ai.request.model"] == "openai/stub-backup"


def test_a_provider_error_fails_the_agent_and_run_spans(stubbed):
    stub, receiver, store, home = stubbed
    stub.replies["stub-denied"] = [{"status": 401, "message": f"invalid key {KEY}"}]   # the key echoed back
    result = runner.start_run(store, "agent/locked", input="go", home=home)
    assert result.status == "failed"
    spans = receiver.wait_for(_finished("run agent/default/locked"))
    _tree_checks(spans, result.id)
    agent = _named(spans, "invoke_agent locked")
    run = _named(spans, "run agent/default/locked")
    assert agent.status == run.status == 2 and run.message == result.error and "401" in run.message
    assert run.attributes["agentform.run.status"] == "failed"
    assert KEY.encode() not in b"".join(receiver.bodies)
