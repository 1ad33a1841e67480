"""Hostile input is refused with a located error, quickly and with bounded memory.

Each case runs `agentform validate` in a child process under an address-space limit;
the timeout is a safety net (a hang fails the test), not a speed assertion.
"""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

import pytest
from validate_helpers import AGENTFORM, HEADER

MEMORY_LIMIT = 1 << 30  # 1 GiB of address space for the child


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _billion_laughs() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return HEADER + "kind: Model\nmetadata: {name: m}\nspec:\n  model: x\n  params:\n" + "".join(
        "    " + line + "\n" for line in lines
    )


def _deep(depth: int) -> str:
    return HEADER + "kind: Model\nmetadata: {name: m}\nspec:\n  model: x\n  params: " + "[" * depth + "]" * depth + "\n"


HOSTILE: dict[str, tuple[bytes, str]] = {
    "alias_bomb": (
        _billion_laughs().encode(),
        "document too large: more than 200000 nodes (counting alias expansions)",
    ),
    "deep_nesting": (_deep(5000).encode(), "a.yaml:6:109: nesting deeper than 100 levels"),
    "deep_mapping_nesting": (
        (HEADER + "kind: Model\nmetadata: {name: m}\nspec:\n  model: x\n  params: "
         + "{a: " * 3000 + "1" + "}" * 3000 + "\n").encode(),
        "nesting deeper than 100 levels",
    ),
    "oversized_file": (
        (HEADER + "kind: Model\nmetadata: {name: m}\nspec:\n  model: x\n  description: |\n"
         + "    padding padding padding padding padding padding\n" * 30000).encode(),
        "a.yaml:1:1: file too large",
    ),
    "binary_file": (b"apiVersion: agentform.dev/v1alpha1\nkind: Model\n\x00\x01\x02\xff", "a.yaml:3:1: binary file"),
    "non_utf8": (
        HEADER.encode() + b"kind: Model\nmetadata: {name: m}\nspec: {model: caf\xe9}\n",
        "a.yaml:4:18: not UTF-8 text (invalid byte 0xe9)",
    ),
    "python_tag": (
        (HEADER + "kind: Model\nmetadata: {name: m}\nspec:\n  model: x\n"
         "  params: !!python/object/apply:os.system [echo pwned]\n").encode(),
        "a.yaml:6:11: tag '!!python/object/apply:os.system' is not allowed",
    ),
    "local_tag": (
        (HEADER + "kind: Model\nmetadata: {name: m}\nspec:\n  model: !env MODEL\n").encode(),
        "a.yaml:5:10: tag '!env' is not allowed",
    ),
    "duplicate_keys": (
        (HEADER + "kind: Model\nmetadata: {name: m}\nspec:\n  model: x\n  model: y\n").encode(),
        "a.yaml:6:3: duplicate key 'model' (first at line 5)",
    ),
    "non_mapping_document": (
        (HEADER + "kind: Model\nmetadata: {name: m}\nspec: {model: x}\n---\njust a string\n").encode(),
        "a.yaml:6:1: document 2 is a scalar, not a mapping",
    ),
    "control_character": (
        (HEADER + "kind: Model\nmetadata: {name: m}\nspec: {model: \x07}\n").encode(),
        "a.yaml:4:15: invalid YAML: control characters are not allowed",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_is_refused(tmp_path: Path, name: str):
    content, expected = HOSTILE[name]
    (tmp_path / "a.yaml").write_bytes(content)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        AGENTFORM + ["validate", "a.yaml"], cwd=tmp_path, capture_output=True, text=True,
        timeout=30, preexec_fn=_limit,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert expected in proc.stdout, proc.stdout
    assert proc.stdout.splitlines()[0].startswith("a.yaml:")
    # ru_maxrss is the largest child so far (KiB): this child stayed small if it rose little.
    assert after < 300 * 1024 or after == before, f"child peak RSS {after} KiB"


def test_alias_within_budget_is_fine(tree):
    text = (HEADER + "kind: Model\nmetadata: {name: m}\nspec:\n  model: x\n"
            "  params:\n    base: &b {temperature: 0.2}\n    copy: *b\n")
    assert tree({"a.yaml": text}) == []


def test_merge_key_keeps_explicit_values(tmp_path: Path):
    from agentform.engine.yamlsafe import parse_yaml

    parsed = parse_yaml("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert parsed.fatal == []
    assert parsed.documents[0].data["other"] == {"x": 1, "y": 3}
