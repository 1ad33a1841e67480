"""Semantic checks over loaded manifests: references, graphs, templates, scripts.

``validate_path`` is what ``validate``, ``plan`` and ``apply`` call: the loader (envelope
and schema) followed by every check across manifests.
"""

from __future__ import annotations

from pathlib import Path


def validate_path(path: Path, *, max_file_bytes: int = 1 << 20):
    """Load ``path`` and run every check; returns the ManifestSet with sorted diagnostics."""
    from agentform.engine.loader import load_manifests

    from .checks import run_checks

    result = load_manifests(Path(path), max_file_bytes=max_file_bytes)
    run_checks(result)
    result.finish()
    return result


__all__ = ["validate_path"]
