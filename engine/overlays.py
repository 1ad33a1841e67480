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
the overlay's file. ``watched_roots`` lists every folder loading a path reads (``watch``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentform.engine.errors import Diagnostic

if TYPE_CHECKING:
    from agentform.engine.loader import LoadedManifest, Location, ManifestSet
    from agentform.engine.yamlsafe import Document

OVERLAY_FILES = ("agentform.yaml", "agentform.yml")
MAX_DEPTH = 8
PATH_FIELDS = frozenset({"script", "sources", "seed", "fromFile", "instructionsFile"})
_PATCHABLE_METADATA = frozenset({"labels", "annotations"})


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


# ---------------------------------------------------------------- manifests a patch changed


@dataclass(frozen=True)
class AppliedPatch:
    """One patch as applied to a manifest: its data and where it is written."""

    patch: dict[str, Any]
    doc: Document = field(repr=False)
    prefix: tuple                      # the patch's data path inside the overlay document
    display: str                       # the overlay file, as shown
    folder: Path                       # the overlay's folder


def _patched_class():
    from agentform.engine.loader import LoadedManifest, Location, locate_in

    @dataclass
    class PatchedManifest(LoadedManifest):
        """A manifest of a base with an overlay's patches applied: a value a patch wrote is
        located in the overlay's file, and a repository path it wrote is the overlay's."""

        patches: tuple[AppliedPatch, ...] = ()
        patch_dir: Path | None = None

        @property
        def base_dir(self) -> Path:
            return self.patch_dir or self.file.parent

        def locate(self, *data_path: Any, key: bool = False) -> Location:
            for applied in reversed(self.patches):
                inner = patch_path(applied.patch, self.raw, data_path)
                if inner is not None:
                    line, col = locate_in(applied.doc, (*applied.prefix, *inner), key)
                    return Location(applied.display, line, col)
            return super().locate(*data_path, key=key)

        def text_origin(self, *data_path: Any) -> tuple[str, Document, tuple]:
            for applied in reversed(self.patches):
                inner = patch_path(applied.patch, self.raw, data_path)
                if inner is not None:
                    return applied.display, applied.doc, (*applied.prefix, *inner)
            return super().text_origin(*data_path)

    return PatchedManifest


_PATCHED: type | None = None


def patched_manifest(**fields: Any) -> LoadedManifest:
    global _PATCHED
    if _PATCHED is None:
        _PATCHED = _patched_class()
    return _PATCHED(**fields)


def patch_path(patch: Any, merged: Any, data_path: tuple) -> tuple | None:
    """The path inside ``patch`` that wrote the value at ``data_path`` of the merged data, or
    None when that value came from the base."""
    out: list[Any] = []
    for segment in data_path:
        if isinstance(patch, dict):
            if segment not in patch:
                return None
            patch, merged = patch[segment], merged.get(segment) if isinstance(merged, dict) else None
        elif isinstance(patch, list):
            if _by_name(patch) and isinstance(merged, list) and isinstance(segment, int) and segment < len(merged):
                name = merged[segment].get("name") if isinstance(merged[segment], dict) else None
                index = next((i for i, item in enumerate(patch) if item.get("name") == name), None)
                if index is None:
                    return None
                segment, patch, merged = index, patch[index], merged[segment]
            elif isinstance(segment, int) and segment < len(patch):
                patch, merged = patch[segment], merged[segment] if isinstance(merged, list) and segment < len(merged) else None
            else:
                return tuple(out)
        else:
            return tuple(out)   # a scalar the patch wrote covers what is under it
        out.append(segment)
    return tuple(out)


# ---------------------------------------------------------------- the merge


def merge(base: Any, patch: Any) -> Any:
    """``patch`` applied to ``base``: mappings merge key by key (null removes a key), lists of
    mappings that all carry ``name`` merge by name (``$patch: delete`` removes an item, a new
    name is appended), anything else replaces."""
    if isinstance(patch, dict):
        out = dict(base) if isinstance(base, dict) else {}
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(out.get(key), value)
        return out
    if isinstance(patch, list) and isinstance(base, list) and _by_name(patch) and _by_name(base):
        out_list = [dict(item) for item in base]
        for item in patch:
            index = next((i for i, b in enumerate(out_list) if b["name"] == item["name"]), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    out_list.pop(index)
                continue
            if index is None:
                out_list.append(merge({}, item))
            else:
                out_list[index] = merge(out_list[index], item)
        return out_list
    return patch


def _by_name(items: list) -> bool:
    return bool(items) and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items)


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
    _apply_patches(overlay, folder, doc, display, at, result, start, display not in result.failed_files)


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


def _apply_patches(overlay: Any, folder: Path, doc: Document, display: str, at: Callable[..., None],
                   result: ManifestSet, start: int, complete: bool) -> None:
    """Apply the patches in order to the manifests from ``start`` on (this overlay's); a patch that
    matches nothing is an error only when every resource entry loaded (``complete``)."""
    from agentform.specs import KINDS

    from .validation.suggest import did_you_mean

    for j, patch in enumerate(overlay.spec.patches):
        where = ("spec", "patches", j)
        target = patch.target
        if target.kind not in KINDS:
            hint = did_you_mean(target.kind, list(KINDS)) or f" (one of: {', '.join(KINDS)})"
            at(f"patch target kind '{target.kind}' is not a kind{hint}", *where, "target", "kind")
            continue
        if _refuse_identity(patch.patch, where, at):
            continue
        hits = [i for i in range(start, len(result.manifests))
                if result.manifests[i] is not None and _matches(result.manifests[i], target)]
        if not hits and complete:
            named = "".join(f" {w} '{v}'" for w, v in (("named", target.name), ("in namespace", target.namespace)) if v)
            at(f"patch target matches no {target.kind}{named} among the overlay's resources", *where, "target")
            continue
        for i in hits:
            result.manifests[i] = _patched(result, result.manifests[i], patch.patch, AppliedPatch(
                patch.patch, doc, (*where, "patch"), display, folder))
    kept = [m for m in result.manifests if m is not None]
    result.manifests[:] = kept


def _refuse_identity(patch: dict[str, Any], where: tuple, at: Callable[..., None]) -> bool:
    refused = False
    for key, value in patch.items():
        if key == "metadata" and isinstance(value, dict):
            for meta in value:
                if meta not in _PATCHABLE_METADATA:
                    at(f"a patch cannot change metadata.{meta}: it names which resource the patch targets "
                       "(patchable: labels, annotations)", *where, "patch", "metadata", meta, key=True)
                    refused = True
        elif key != "spec":
            at(f"a patch sets 'spec' and 'metadata' (labels, annotations) only, not '{key}'",
               *where, "patch", key, key=True)
            refused = True
    return refused


def _matches(m: LoadedManifest, target: Any) -> bool:
    return (m.kind == target.kind and (target.name is None or m.name == target.name)
            and (target.namespace is None or m.namespace == target.namespace))


def _patched(result: ManifestSet, m: LoadedManifest, patch: dict[str, Any], applied: AppliedPatch) -> Any:
    """``m`` with ``patch`` applied, or None (its key stays claimed) when the result is invalid."""
    from pydantic import ValidationError

    from agentform.engine.loader import locate_in
    from agentform.engine.validation.paths import check_paths
    from agentform.engine.validation.schema import schema_diagnostics
    from agentform.specs import KINDS

    merged = merge(m.raw, patch)
    patches = (*getattr(m, "patches", ()), applied)
    spec_patch = patch.get("spec") if isinstance(patch.get("spec"), dict) else {}
    patch_dir = applied.folder if PATH_FIELDS & set(spec_patch) else getattr(m, "patch_dir", None)
    cls = KINDS[m.kind]
    try:
        resource = cls.model_validate(merged)
    except ValidationError as exc:
        def locate(path: tuple, key: bool) -> tuple[int, int]:
            inner = patch_path(patch, merged, path)
            return locate_in(applied.doc, (*applied.prefix, *(inner or ())), key and inner is not None)

        for d in schema_diagnostics(exc, cls, m.kind, merged, applied.display, locate):
            result.add(Diagnostic(d.file, d.line, d.col, f"{m.kind} '{m.name}' after this patch: {d.message}",
                                  d.severity))
        result._index.pop(m.key, None)
        return None
    patched = patched_manifest(resource=resource, file=m.file, display=m.display, doc_index=m.doc_index,
                               raw=merged, doc=m.doc, root=patch_dir or m.root,
                               patches=patches, patch_dir=patch_dir)
    refused = check_paths(patched)
    if refused:
        for d in refused:
            result.add(d)
        result._index.pop(m.key, None)
        return None
    result._index[resource.key] = patched
    return patched
