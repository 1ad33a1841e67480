"""Mutated examples never crash validate: every problem comes back as a located diagnostic."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from agentform.engine.validation import validate_path

EXAMPLES = Path(__file__).parents[2] / "examples"
VALUES = ["[1]", "{}", "null", "5", "true", "{a: 1}", "[a, b]", '""', "-1", "0.5", '"{{ x }"', "*nope", "!!binary x"]
CHARS = ["{", "}", ":", "-", " ", "[", '"', "'", "*", "&", "!", "#", "x", "\t", "|", ">", "%"]


def _mutate(lines: list[str], rng: random.Random) -> list[str]:
    i = rng.randrange(len(lines))
    op = rng.choice(["delete", "duplicate", "char", "truncate", "value", "value", "value", "half"])
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[rng.randrange(len(lines))])
    elif op == "char" and lines[i]:
        j = rng.randrange(len(lines[i]))
        lines[i] = lines[i][:j] + rng.choice(CHARS) + lines[i][j + 1:]
    elif op == "truncate":
        lines = lines[:i]
    elif op == "value" and ": " in lines[i]:
        lines[i] = lines[i].split(": ")[0] + ": " + rng.choice(VALUES)
    elif op == "half":
        lines[i] = lines[i][: len(lines[i]) // 2]
    return lines


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="examples/ not present")
def test_mutated_examples_give_diagnostics_not_crashes(tmp_path):
    rng = random.Random(20260101)
    files = sorted(EXAMPLES.rglob("*.yaml"))
    assert files
    for n in range(150):
        root = tmp_path / f"m{n}"
        shutil.copytree(EXAMPLES, root)
        target = root / rng.choice(files).relative_to(EXAMPLES)
        lines = target.read_text().split("\n")
        for _ in range(rng.randint(1, 3)):
            lines = _mutate(lines, rng) or ["x: 1"]
        target.write_text("\n".join(lines))
        result = validate_path(root)  # must not raise
        for d in result.diagnostics:
            assert d.file and d.message and d.line >= 0 and d.col >= 0, d
        shutil.rmtree(root)
