"""Resume on the real-model path: litellm against the tests' local OpenAI-compatible server.

A team run (manager and members on litellm) is killed with SIGKILL after one member's call
finished and while the other's is in flight; ``resume`` continues it. The server's request
log shows that no finished call is sent again, that the call in flight is issued again, and
that the manager's next request carries the conversation rebuilt from the stream: its own
tool calls and both members' results.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from agentform.engine.store import open_store

from .helpers import apply, write_tree
from .openai_stub import OpenAIStub
from .test_cli import CLI, _env, af, wait_for

KEY = "sk-test-resume-key-4242"


class GatedStub(OpenAIStub):
    """Holds back a reply marked ``gate`` until the test opens the gate (a call in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.held = threading.Event()

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        reply = super()._next(body, headers)
        if reply.get("gate"):
            self.held.set()
            self.gate.wait(60)
        return reply


def manifests(url: str) -> dict[str, str]:
    head = "apiVersion: agentform.dev/v1alpha1\n"
    models = "\n---\n".join(
        f"{head}kind: Model\nmetadata: {{name: {name}}}\nspec:\n  model: openai/{name}\n  baseUrl: {url}\n"
        f"  apiKey: {{secretRef: stub-key}}\n  retries: 0" for name in ("boss-model", "w1-model", "w2-model"))
    agents = "\n---\n".join(
        f"{head}kind: Agent\nmetadata: {{name: {name}}}\nspec: {{model: {name}-model, description: {name}, "
        f"instructions: 'You are {name}.'}}" for name in ("boss", "w1", "w2"))
    return {"all.yaml": f"{head}kind: Secret\nmetadata: {{name: stub-key}}\nspec: {{fromEnv: STUB_KEY}}\n---\n"
            f"{models}\n---\n{agents}\n---\n{head}kind: Team\nmetadata: {{name: crew}}\n"
            "spec: {manager: boss, members: [{agent: w1}, {agent: w2}]}\n"}


def test_resume_of_a_killed_team_on_litellm_sends_no_finished_call_again(store_url, tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setenv("STUB_KEY", KEY)
    with GatedStub() as stub:
        write_tree(tmp_path / "m", manifests(stub.url))
        store = open_store(store_url)
        try:
            apply(store, tmp_path / "m", tmp_path)
            stub.replies["boss-model"] = [
                {"tool_calls": [("ask_w1", {"task": "first half"}), ("ask_w2", {"task": "second half"})]},
                {"content": "both halves done"}]
            stub.replies["w1-model"] = [{"content": "w1 result"}]
            stub.replies["w2-model"] = [{"content": "lost with the process", "gate": True},
                                        {"content": "w2 result"}]
            proc = subprocess.Popen([*CLI, "--home", str(tmp_path), "--store", store_url, "run", "team/crew",
                                     "-i", "split the work"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=_env(STUB_KEY=KEY))
            try:
                stub.held.wait(60)
                run = wait_for(lambda: store.list_runs()[0] if store.list_runs() else None)
                wait_for(lambda: any(e.type == "agent.completed" and e.path == "crew/w1"
                                     for e in store.read_events(run.id)))
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
            finally:
                stub.gate.set()   # the held call's connection is gone with its process
            assert [r["model"] for r in stub.requests] == ["boss-model", "w1-model", "w2-model"] or \
                [r["model"] for r in stub.requests] == ["boss-model", "w2-model", "w1-model"]

            resumed = subprocess.run([*CLI, "--home", str(tmp_path), "--store", store_url, "resume", run.id],
                                     capture_output=True, text=True, timeout=120, env=_env(STUB_KEY=KEY))
            assert resumed.returncode == 0, resumed.stderr
            assert resumed.stdout.strip() == "both halves done"
            # After the resume: the call in flight (w2) again, then the manager's next turn. The
            # manager's first turn and w1's call, finished before the kill, are not sent again.
            after = stub.requests[3:]
            assert [r["model"] for r in after] == ["w2-model", "boss-model"]
            assert after[0]["messages"] == stub.requests[[r["model"] for r in stub.requests].index("w2-model")][
                "messages"]
            sent = after[1]["messages"]
            assert sent[0] == {"role": "system", "content": "You are boss."}
            assert sent[1] == {"role": "user", "content": "split the work"}
            assert sent[2]["role"] == "assistant" and [c["function"]["name"] for c in sent[2]["tool_calls"]] == \
                ["ask_w1", "ask_w2"]
            assert [(m["role"], m["tool_call_id"], m["content"]) for m in sent[3:]] == [
                ("tool", "call_stub_0", "w1 result"), ("tool", "call_stub_1", "w2 result")]
            events = store.read_events(run.id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert [e.path for e in events if e.type == "agent.started"] == ["crew", "crew/w1", "crew/w2"] or \
                [e.path for e in events if e.type == "agent.started"] == ["crew", "crew/w2", "crew/w1"]
            assert [e.path for e in events if e.type == "agent.completed"].count("crew/w1") == 1
            listed = af(tmp_path, store_url, "runs", "-o", "json")
            assert '"succeeded"' in listed.stdout
        finally:
            store.close()
