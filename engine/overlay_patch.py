"""Overlay patches: the merge, the manifests it yields, and where each of their values is written.

A patch is a merge patch (RFC 7386 with one strategic-merge rule): mappings merge key by key,
``null`` removes a key, a list of mappings that all carry ``name`` (stages, ...) merges item by
item by name (``$patch: delete`` removes one), anything else replaces. A patched manifest
(``PatchedManifest``) remembers its patches, so that a value a patch wrote is located in the
overlay's file (``locate``, ``text_origin``) and a repository path it wrote (``PATH_FIELDS``)
is the overlay folder's, confined to it. engine/overlays.py loads the resources and calls
``apply_patches``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentform.engine.errors import Diagnostic
from agentform.engine.loader import LoadedManifest, Location, locate_in

if TYPE_CHECKING:
    from agentform.engine.loader import ManifestSet
    from agentform.engine.yamlsafe import Document

PATH_FIELDS = frozenset({"script", "sources", "seed", "fromFile", "instructionsFile"})
_PATCHABLE_METADATA = frozenset({"labels", "annotations"})


@dataclass(frozen=True)
class AppliedPatch:
    """One patch as applied to a manifest: its data and where it is written."""

    patch: dict[str, Any]
    doc: Document = field(repr=False)
    prefix: tuple                      # the patch's data path inside the overlay document
    display: str                       # the overlay file, as shown
    folder: Path                       # the overlay's folder


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


def apply_patches(overlay: Any, folder: Path, doc: Document, display: str, at: Callable[..., None],
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
    patched = PatchedManifest(resource=resource, file=m.file, display=m.display, doc_index=m.doc_index,
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
