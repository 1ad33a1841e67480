"""A small team for the worker tests: a lead that asks three members one after the other."""

from __future__ import annotations

import json
from pathlib import Path

TARGET = "team/crew"
ANSWER = "Crew report: a, b and c done."


def crew(root: Path, latency_ms: int = 50) -> Path:
    lat = f"{latency_ms}ms"
    script = {"agents": {
        "lead": [
            {"toolCalls": [{"name": "ask_a", "arguments": {"task": "part a"}}]},
            {"toolCalls": [{"name": "ask_b", "arguments": {"task": "part b"}}]},
            {"toolCalls": [{"name": "ask_c", "arguments": {"task": "part c"}}]},
            {"content": ANSWER},
        ],
        "a": [{"content": "a done", "latency": lat}],
        "b": [{"content": "b done", "latency": lat}],
        "c": [{"content": "c done", "latency": lat}],
    }}
    docs = [agent("lead", instructions="Lead."), agent("a", instructions="A."), agent("b", instructions="B."),
            agent("c", instructions="C."),
            team("crew", "lead", [{"agent": "a"}, {"agent": "b"}, {"agent": "c"}])]
    return project(root, script, docs)


def _doc(kind: str, name: str, spec: dict) -> str:
    return (f"apiVersion: agentform.dev/v1alpha1\nkind: {kind}\nmetadata: {json.dumps({'name': name})}\n"
            f"spec: {json.dumps(spec)}\n")


def agent(name: str, **spec) -> str:
    return _doc("Agent", name, {"model": "m", **spec})


def team(name: str, manager: str, members: list[dict], **spec) -> str:
    return _doc("Team", name, {"manager": manager, "members": members, **spec})


def project(root: Path, script: dict, docs: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "script.yaml").write_text(json.dumps(script))
    model = _doc("Model", "m", {"model": "scripted", "script": "script.yaml"})
    (root / "all.yaml").write_text("---\n".join([model, *docs]))
    return root


def gated(root: Path, timeout: str = "2s") -> Path:
    """A pipeline of one agent stage and then an approval that expires after ``timeout``."""
    script = {"agents": {"a": [{"content": "prepared"}]}}
    pipe = {"stages": [{"name": "prep", "agent": "a", "input": "prepare"},
                       {"name": "ship", "needs": ["prep"], "approval": {"message": "Ship?", "timeout": timeout}}],
            "output": "{{ stages.prep.output }}"}
    return project(root, script, [agent("a", instructions="A."), _doc("Pipeline", "gated", pipe)])
