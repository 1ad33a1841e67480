"""Paths a manifest names in its repository stay inside their root (CONTRACT section 8).

A Model's ``script``, a KnowledgeBase's ``sources``, a Workspace's ``seed`` and an Agent's
``instructionsFile`` name files of the repository. Each must be relative (to the manifest's
folder) and, after every symlink is resolved, stay inside the manifest's root: the applied folder (the PATH given to validate,
plan or apply). So a pull request cannot make ``validate`` or ``plan`` in CI read
``/etc/passwd``, ``../../secrets.yaml`` or a symlink to either. The root is a property of
each manifest (``LoadedManifest.root``) so that overlays can later give each base folder its
own. A Secret's ``fromFile`` is not a repository path: it names a file on the engine's
machine by design, and validate and plan never read it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from agentform.engine.errors import Diagnostic

if TYPE_CHECKING:
    from agentform.engine.loader import LoadedManifest

_GLOB = frozenset("*?[")


def is_inside(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or below it (both absolute and normalised)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def confine(value: str, base_dir: Path, root: Path, *, glob: bool = False,
            real_root: str | None = None) -> tuple[Path | None, str]:
    """``(resolved path, "")`` when ``value`` names a place inside ``root``; ``(None, why)`` otherwise.

    ``value`` is relative to ``base_dir``. A glob is checked up to its first wildcard (each
    match must be checked again when the glob is expanded: use ``confine`` on the match).
    Only metadata is touched (``realpath`` reads links), never a file's content. ``real_root``
    is ``root`` already resolved, when the caller has it.
    """
    if "\0" in value:
        return None, "holds a NUL character"
    if os.path.isabs(value):
        return None, "is an absolute path"
    root_text = os.path.normpath(str(root))
    joined = os.path.normpath(os.path.join(str(base_dir), value))
    if not is_inside(joined, root_text):
        return None, "leads outside the applied folder through '..'"
    static = joined
    if glob:
        parts = Path(joined).parts
        cut = next((i for i, p in enumerate(parts) if _GLOB & set(p)), len(parts))
        static = str(Path(*parts[:cut])) if cut else root_text
    real = os.path.realpath(static)
    if not is_inside(real, real_root or os.path.realpath(root_text)):
        return None, f"resolves through a symlink to {real}, outside the applied folder"
    return Path(joined if glob else real), ""


def repo_paths(m: LoadedManifest) -> Iterator[tuple[tuple, str, bool]]:
    """(data path, value, is a glob) of every repository path ``m`` names."""
    spec = m.resource.spec  # type: ignore[attr-defined]
    if m.kind == "Model" and spec.script:
        yield ("spec", "script"), spec.script, False
    elif m.kind == "KnowledgeBase":
        for i, source in enumerate(spec.sources):
            yield ("spec", "sources", i, "path"), source.path, True
    elif m.kind == "Workspace" and spec.seed:
        yield ("spec", "seed"), spec.seed, False
    elif m.kind == "Agent" and spec.instructions_file:
        yield ("spec", "instructionsFile"), spec.instructions_file, False


def check_paths(m: LoadedManifest) -> list[Diagnostic]:
    """A located error for each path of ``m`` that is absolute or leads outside its root."""
    from agentform.engine.loader import display_path

    out = []
    real_root = None
    for data_path, value, glob in repo_paths(m):
        real_root = real_root or os.path.realpath(m.root)
        _, why = confine(value, m.base_dir, m.root, glob=glob, real_root=real_root)
        if why:
            field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in data_path).replace(".[", "[")
            out.append(m.diag(
                f"{field} '{value}' {why}; a path in a manifest is relative to the manifest's folder "
                f"and stays inside the applied folder ({display_path(m.root)}): copy the file into it",
                *data_path))
    return out
