"""Handoff mode on real processes and the real-model path: the whole conversation moves to the
next agent; a run killed mid-chain resumes from its stream (no activation runs twice, each
handoff recorded once) and sends the next agent the conversation an uninterrupted run sends."""

from __future__ import annotations

import signal
import subprocess

from agentform.engine.store import open_store
from tests.runtime.helpers import agent, apply, manifest, of, project, write_tree
from tests.runtime.test_cli import CLI, _env, af, wait_for
from tests.runtime.test_resume import _check_stream, _has, _kill, _run_of, _start
from tests.runtime.test_resume_litellm import GatedStub

KEY = "sk-test-handoff-key-4242"


def _to(name, reason):
    return {"toolCalls": [{"name": f"transfer_to_{name}", "arguments": {"reason": reason}}]}


def test_resume_after_kill_in_the_middle_of_a_handoff_cycle(store, store_url, tmp_path):
    script = {"agents": {"triage": [_to("billing", "charged twice"), {"content": "All sorted"}],
                         "billing": [_to("refunds", "duplicate")],
                         "refunds": [{**_to("triage", "refunded"), "latency": "2s"}]}}
    spec = {"manager": "triage", "mode": "handoff",
            "members": [{"agent": "billing", "handoffs": ["refunds"]}, {"agent": "refunds", "handoffs": ["triage"]}]}
    root = project(tmp_path / "m", script, [agent("triage"), agent("billing"), agent("refunds"),
                                             manifest("Team", "desk", spec)])
    apply(store, root, tmp_path)
    proc = _start(tmp_path, store_url, "run", "team/desk")
    run = wait_for(lambda: _run_of(store))
    wait_for(lambda: _has(store, run.id, "agent.started", "desk/refunds"))
    _kill(proc)
    before = store.read_events(run.id)

    resumed = af(tmp_path, store_url, "resume", run.id)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "All sorted"
    events = store.read_events(run.id)
    _check_stream(events)
    assert events[: len(before)] == before
    assert [(e.path, e.data["to"]) for e in of(events, "handoff")] == [
        ("desk", "billing"), ("desk/billing", "refunds"), ("desk/refunds", "triage")]
    after = events[len(before):]
    assert [e.path for e in after if e.type == "message.completed"] == ["desk/refunds", "desk/triage#2"]
    fresh = af(tmp_path, store_url, "run", "team/desk")
    assert fresh.returncode == 0 and fresh.stdout == resumed.stdout


def _manifests(url: str) -> dict[str, str]:
    head = "apiVersion: agentform.dev/v1alpha1\n"
    names = ("triage", "billing", "refunds")
    models = "\n---\n".join(
        f"{head}kind: Model\nmetadata: {{name: {n}-model}}\nspec:\n  model: openai/{n}-model\n  baseUrl: {url}\n"
        f"  apiKey: {{secretRef: stub-key}}\n  retries: 0" for n in names)
    agents = "\n---\n".join(
        f"{head}kind: Agent\nmetadata: {{name: {n}}}\nspec: {{model: {n}-model, instructions: 'You are {n}.'}}"
        for n in names)
    team = (f"{head}kind: Team\nmetadata: {{name: desk}}\nspec:\n  manager: triage\n  mode: handoff\n"
            "  members:\n    - {agent: billing, handoffs: [refunds]}\n    - {agent: refunds, handoffs: [triage]}\n")
    return {"all.yaml": f"{head}kind: Secret\nmetadata: {{name: stub-key}}\nspec: {{fromEnv: STUB_KEY}}\n---\n"
            f"{models}\n---\n{agents}\n---\n{team}"}


def _replies(stub):
    stub.replies["triage-model"] = [
        {"content": "Let me get billing.", "tool_calls": [("transfer_to_billing", {"reason": "charged twice"})]}]
    stub.replies["billing-model"] = [
        {"tool_calls": [("transfer_to_refunds", {})]},            # a bad call: a tool error it reads
        {"tool_calls": [("transfer_to_refunds", {"reason": "duplicate of 12.40"})]}]
    stub.replies["refunds-model"] = [{"content": "lost with the process", "gate": True},
                                     {"content": "Refunded 12.40."}]


def test_the_whole_conversation_moves_and_a_resume_sends_the_same(store_url, tmp_path, monkeypatch):
    monkeypatch.setenv("STUB_KEY", KEY)
    with GatedStub() as stub:
        write_tree(tmp_path / "m", _manifests(stub.url))
        store = open_store(store_url)
        try:
            apply(store, tmp_path / "m", tmp_path)
            _replies(stub)
            proc = subprocess.Popen([*CLI, "--home", str(tmp_path), "--store", store_url, "run", "team/desk",
                                     "-i", "I was charged twice"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=_env(STUB_KEY=KEY))
            try:
                stub.held.wait(60)
                run = wait_for(lambda: store.list_runs()[0] if store.list_runs() else None)
                wait_for(lambda: _has(store, run.id, "agent.started", "desk/refunds"))   # the past is durable
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
            finally:
                stub.gate.set()
            models = [r["model"] for r in stub.requests]
            assert models == ["triage-model", "billing-model", "billing-model", "refunds-model"]
            handed = stub.requests[3]["messages"]
            # refunds: its own instructions, then everything before: the user's message, triage's
            # words (not its transferring turn), billing's failed call and its error, and the notes.
            assert handed[0] == {"role": "system", "content": "You are refunds."}
            assert handed[1] == {"role": "user", "content": "I was charged twice"}
            assert handed[2] == {"role": "user", "content": "(handed over to you by triage: charged twice)"}
            assert handed[3]["role"] == "assistant" and handed[3]["tool_calls"][0]["function"]["name"] == \
                "transfer_to_refunds"
            assert handed[4]["role"] == "tool" and handed[4]["content"].startswith("Error: transfer_to_refunds needs")
            assert handed[5] == {"role": "user", "content": "(handed over to you by billing: duplicate of 12.40)"}
            assert len(handed) == 6
            assert stub.requests[1]["messages"][0] == {"role": "system", "content": "You are billing."}

            resumed = subprocess.run([*CLI, "--home", str(tmp_path), "--store", store_url, "resume", run.id],
                                     capture_output=True, text=True, timeout=120, env=_env(STUB_KEY=KEY))
            assert resumed.returncode == 0, resumed.stderr
            assert resumed.stdout.strip() == "Refunded 12.40."
            # Only the call in flight is sent again, with the conversation rebuilt from the stream.
            assert [r["model"] for r in stub.requests[4:]] == ["refunds-model"]
            assert stub.requests[4]["messages"] == handed
            events = store.read_events(run.id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert [e.path for e in of(events, "agent.completed")] == ["desk", "desk/billing", "desk/refunds"]
        finally:
            store.close()
