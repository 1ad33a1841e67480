"""Helpers for the validate tests: write small manifest trees and validate them."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

HEADER = "apiVersion: agentform.dev/v1alpha1\n"
MODEL = HEADER + "kind: Model\nmetadata: {name: fast}\nspec: {model: openai/gpt-4o-mini}\n"
AGENT = HEADER + "kind: Agent\nmetadata: {name: helper}\nspec: {model: fast}\n"
AGENTFORM = [str(Path(sys.executable).with_name("agentform"))]


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text, dedented) under ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write files under tmp_path (the current directory) and return their diagnostics as text."""
    monkeypatch.chdir(tmp_path)

    def validate(files: dict[str, str]) -> list[str]:
        from agentform.engine.validation import validate_path

        write_tree(tmp_path, files)
        return [str(d) for d in validate_path(Path("."), max_file_bytes=1 << 20).diagnostics]

    return validate
