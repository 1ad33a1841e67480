"""Fixtures of the validate tests: write a small manifest tree and validate it."""

from __future__ import annotations

from pathlib import Path

import pytest
from validate_helpers import write_tree


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write files under tmp_path (the current directory) and return their diagnostics as text."""
    monkeypatch.chdir(tmp_path)

    def validate(files: dict[str, str]) -> list[str]:
        from agentform.engine.validation import validate_path

        write_tree(tmp_path, files)
        return [str(d) for d in validate_path(Path("."), max_file_bytes=1 << 20).diagnostics]

    return validate
