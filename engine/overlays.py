"""Overlays: a folder that loads other folders' manifests and patches them (kustomize-like).

A folder whose ``agentform.yaml`` holds ``kind: Overlay`` (specs/overlay.py) is loaded as
its ``spec.resources`` (folders or files, relative to the overlay; another overlay folder
nests, up to ``MAX_DEPTH``) with ``spec.patches`` applied, in order, to what those
resources hold; nothing else in the overlay's folder is read. A recursive walk of a folder
above it (``validate .``) skips an overlay folder, whose bases it loads anyway.

Paths stay confined (CONTRACT section 8): a resource folder must lie inside the git work
tree that holds the overlay (or inside the overlay's folder when there is none), symlinks
resolved; each manifest keeps its own folder as its root, so a base's ``script`` stays in
the base, and a path a patch writes (``script``, ``sources``, ``seed``, ``fromFile``,
``instructionsFile``) is relative to, and confined to, the overlay's folder. Errors in a
patch (unknown kind, no target, a field the kind refuses, a path outside) are located in
the overlay's file (engine/overlay_patch.py: the merge and the patched manifests).
``watched_roots`` lists every folder loading a path reads (``watch``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentform.engine.errors import Diagnostic

if TYPE_CHECKING:
    from agentform.engine.loader import ManifestSet
    from agentform.engine.yamlsafe import Document

OVERLAY_FILES = ("agentform.yaml", "agentform.yml")
MAX_DEPTH = 8


# ---------------------------------------------------------------- finding overlays


def overlay_file(folder: Path) -> Path | None:
    """``folder``'s agentform.yaml when it declares ``kind: Overlay`` (read only when the word is in it)."""
    from agentform.engine.validation.paths import is_inside

    for name in OVERLAY_FILES:
        file = Path(folder) / name
        try:
            if not file.is_file() or file.stat().st_size > 1 << 20:
                continue
            if not is_inside(os.path.realpath(file), os.path.realpath(folder)):
                continue   # a link to outside is no overlay: the loader refuses it unread
            raw = file.read_bytes()
        except OSError:
            continue
        if b"Overlay" in raw and _declares_overlay(file, raw):
            return file
    return None


def _declares_overlay(file: Path, raw: bytes) -> bool:
    from agentform.engine.yamlsafe import decode, parse_yaml

    text, problem = decode(raw, str(file))
    if problem is not None:
        return False
    parsed = parse_yaml(text, str(file))
    return any(isinstance(d.data, dict) and d.data.get("kind") == "Overlay" for d in parsed.documents)


def overlay_name(path: Path) -> str | None:
    """The ``metadata.name`` of the overlay at ``path`` (a folder), or None: the default app of an apply."""
    path = Path(path)
    file = overlay_file(path) if path.is_dir() else None
    if file is None:
        return None
    read = _read_overlay(file)
    return read[0].metadata.name if read is not None and read[0] is not None else None


def watched_roots(path: Path | str) -> list[Path]:
    """Every folder that loading ``path`` reads: ``path`` itself and, for an overlay, each folder
    its resources name (nested overlays followed; a file resource gives its folder), absolute,
    without repeats. Entries that do not resolve, or that the load refuses as outside the git work
    tree, are left out (validate reports them)."""
    from agentform.engine.validation.paths import is_inside

    root = Path(path).absolute()
    out: list[Path] = []

    def visit(folder: Path, depth: int) -> None:
        if folder in out:
            return
        out.append(folder)
        file = overlay_file(folder) if folder.is_dir() else None
        read = _read_overlay(file) if file is not None and depth < MAX_DEPTH else None
        if read is None or read[0] is None:
            return
        bound = work_tree(folder) or os.path.realpath(folder)
        for entry in read[0].spec.resources:
            target = Path(os.path.normpath(folder / entry))
            if os.path.isabs(entry) or not is_inside(os.path.realpath(target), bound):
                continue   # refused by the load too
            if target.is_dir():
                visit(target, depth + 1)
            elif target.exists() and target.parent not in out:
                out.append(target.parent)

    visit(root, 0)
    return out


def _read_overlay(file: Path) -> tuple[Any, Document | None] | None:
    """(the Overlay or None when invalid, its document); None when the file cannot be read."""
    from pydantic import ValidationError

    from agentform.engine.loader import MAX_FILE_BYTES, display_path, read_yaml_file
    from agentform.specs.overlay import Overlay

    documents, fatal = read_yaml_file(file, display_path(file), MAX_FILE_BYTES)
    docs = [d for d in documents if d.data is not None or d.errors]
    if fatal or len(docs) != 1:
        return None
    try:
        return Overlay.model_validate(docs[0].data), docs[0]
    except ValidationError:
        return None, docs[0]


# ---------------------------------------------------------------- loading


def work_tree(folder: Path) -> str | None:
    """The real path of the git work tree holding ``folder`` (a ``.git`` above it), or None."""
    probe = Path(os.path.realpath(folder))
    for candidate in (probe, *probe.parents):
        if (candidate / ".git").exists():
            return str(candidate)
    return None


def load_overlay(folder: Path, file: Path, result: ManifestSet, max_file_bytes: int,
                 chain: tuple[str, ...] = ()) -> None:
    """The manifests the overlay at ``folder`` yields, added to ``result`` (problems as diagnostics)."""
    from pydantic import ValidationError

    from agentform.engine.loader import display_path, read_yaml_file
    from agentform.engine.validation.schema import schema_diagnostics
    from agentform.specs import API_VERSION
    from agentform.specs.overlay import Overlay

    display = display_path(file)
    documents, fatal = read_yaml_file(file, display, max_file_bytes)
    if fatal:
        result.failed_files.append(display)
        for d in fatal:
            result.add(d)
        return
    docs = [d for d in documents if d.data is not None or d.errors]
    result.manifest_files += 1
    result.documents += len(docs)
    if len(docs) != 1:
        doc = docs[1] if len(docs) > 1 else None
        result.add(Diagnostic(display, doc.line if doc else 1, doc.col if doc else 1,
                              "an overlay's agentform.yaml holds the Overlay document only; put other "
                              "manifests in a folder its spec.resources names"))
        result.failed_files.append(display)
        return
    doc = docs[0]
    for problem in doc.errors:
        result.add(problem)
    at = _at(doc, display, result)
    data = doc.data
    if doc.errors or not isinstance(data, dict):
        result.failed_files.append(display)
        return
    if data.get("apiVersion") != API_VERSION:
        at(f"an Overlay's apiVersion is '{API_VERSION}'", "apiVersion")
        result.failed_files.append(display)
        return
    try:
        overlay = Overlay.model_validate(data)
    except ValidationError as exc:
        from agentform.engine.loader import locate_in

        for d in schema_diagnostics(exc, Overlay, "Overlay", data, display, lambda p, k: locate_in(doc, p, k)):
            result.add(d)
        result.failed_files.append(display)
        return
    real_folder = os.path.realpath(folder)
    chain = (*chain, real_folder)
    start = len(result.manifests)
    if not _load_resources(overlay, folder, real_folder, chain, at, result, max_file_bytes):
        result.failed_files.append(display)   # what it would load looks deleted: prune refuses
    from .overlay_patch import apply_patches

    apply_patches(overlay, folder, doc, display, at, result, start, display not in result.failed_files)


def _at(doc: Document, display: str, result: ManifestSet) -> Callable[..., None]:
    from agentform.engine.loader import locate_in

    def at(message: str, *path: Any, key: bool = False) -> None:
        line, col = locate_in(doc, path, key)
        result.add(Diagnostic(display, line, col, message))

    at.display = display  # type: ignore[attr-defined]
    return at


def _load_resources(overlay: Any, folder: Path, real_folder: str, chain: tuple[str, ...], at: Callable[..., None],
                    result: ManifestSet, max_file_bytes: int) -> bool:
    """Load each entry of spec.resources; False when one was refused."""
    from agentform.engine.loader import display_path, load_into
    from agentform.engine.validation.paths import is_inside

    tree = work_tree(folder)
    seen: set[str] = set()
    problems = len(result.diagnostics)
    for i, entry in enumerate(overlay.spec.resources):
        where = ("spec", "resources", i)
        if "\0" in entry or os.path.isabs(entry):
            at(f"resources entry '{entry}' must be a path relative to the overlay's folder", *where)
            continue
        target = Path(os.path.normpath(folder / entry))
        real = os.path.realpath(target)
        if tree is None and not is_inside(real, real_folder):
            at(f"resources entry '{entry}' leads outside the overlay's folder, and the overlay is in no git "
               "work tree (no .git above it), which would bound it: keep the overlay and its bases in one "
               "git repository", *where)
            continue
        if tree is not None and not is_inside(real, tree):
            at(f"resources entry '{entry}' resolves to {real}, outside the git work tree {tree}: an overlay "
               "loads folders of its own repository only", *where)
            continue
        if not os.path.exists(real):
            at(f"resources entry '{entry}': no such folder or file ({display_path(target)})", *where)
            continue
        if real in chain:
            at(f"resources entry '{entry}' is an overlay that includes itself (through {display_path(target)})",
               *where)
            continue
        if real in seen:
            at(f"resources entry '{entry}' is listed twice", *where)
            continue
        seen.add(real)
        nested = overlay_file(target) if target.is_dir() else None
        if nested is not None:
            if len(chain) >= MAX_DEPTH:
                at(f"resources entry '{entry}': overlays nest at most {MAX_DEPTH} deep", *where)
                continue
            load_overlay(target, nested, result, max_file_bytes, chain)
        else:
            load_into(target, result, max_file_bytes)
    return not any(d.file == at.display for d in result.diagnostics[problems:])
