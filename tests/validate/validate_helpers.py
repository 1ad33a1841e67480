"""Shared helpers of the validate tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

HEADER = "apiVersion: agentform.dev/v1alpha1\n"
AGENTFORM = [str(Path(sys.executable).with_name("agentform"))]


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write ``files`` (relative path -> text or bytes) under ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text))
    return root
