"""Shared helpers of the runtime tests: apply manifests into a store, write manifest trees."""

from __future__ import annotations

import time
from pathlib import Path
from textwrap import dedent

from agentform.engine.store.base import RevisionRecord

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def apply(store, path: Path | str, home: Path) -> int:
    """Apply the manifests under ``path``; returns the revision number.

    Uses reconcile's ``apply_path``; while validation is not complete in this tree, it falls
    back to loading and compiling the manifests directly (the same compile step apply uses).
    """
    try:
        from agentform.engine.reconcile import apply_path

        result = apply_path(store, Path(path), home=home)
        assert result.exit_code == 0, result.failed
        return result.revision.number if result.revision else store.latest_revision().number
    except ModuleNotFoundError:
        pass
    from agentform.engine.compile import Index, compile_graph
    from agentform.engine.loader import load_manifests

    manifests = load_manifests(Path(path))
    assert manifests.ok, manifests.diagnostics
    index = Index.of_manifests(manifests)
    graphs = {}
    for m in manifests.manifests:
        if m.resource.kind in ("Agent", "Team", "Pipeline"):
            graph = compile_graph(m, index)
            graphs[m.resource.key] = graph.model_dump(mode="json", by_alias=True)
    rev = store.commit_revision(RevisionRecord(0, f"h{time.time()}", "test", "test", time.time()),
                                [], [], graphs)
    return rev.number


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text, dedented) under ``root``."""
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dedent(text).lstrip())
    return root
