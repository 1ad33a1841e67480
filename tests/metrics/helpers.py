"""Reading the Prometheus text format back in tests, and a small project with every kind of run."""

from __future__ import annotations

import re
from pathlib import Path

from tests.pipeline.helpers import HEADER, write_project

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")
PRICING = {"inputPerMTok": 2.0, "outputPerMTok": 10.0}   # USD per million tokens
SCRIPT = {
    "worker": [{"content": "hi", "usage": {"input": 100, "output": 20}}],
    "mute": [],   # no turn: its runs fail
    "boss": [{"toolCalls": [{"name": "ask_worker", "arguments": {"task": "say hi"}}], "latency": "200ms",
              "usage": {"input": 50, "output": 5}},
             {"content": "done", "usage": {"input": 70, "output": 7}}],
}
PIPE = {"stages": [{"name": "prep", "agent": "worker", "input": "x"},
                   {"name": "ship", "needs": ["prep"], "approval": {"message": "Ship?"}}]}
TEAM = HEADER + "kind: Team\nmetadata: {name: crew}\nspec: {manager: boss, members: [{agent: worker}]}\n"


def parse(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line (labels exactly as written)."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            match = _LINE.match(line)
            assert match, f"not a Prometheus sample line: {line!r}"
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def project(folder: Path) -> Path:
    return write_project(folder, script=SCRIPT, agents=["worker", "boss", "mute"], pipelines={"p": PIPE},
                         extra=[TEAM], pricing=PRICING)
