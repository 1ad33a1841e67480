"""A KnowledgeBase's documents: its ``sources`` globbed relative to the manifest, confined, hashed.

Globs are expanded from the manifest's folder (``**`` crosses folders); every match is checked
again with validation/paths.py's ``confine`` after its symlinks are resolved, so a link inside
the repository cannot pull in a file outside the applied folder. A glob takes the formats the
engine can read as text (Markdown, text, reStructuredText; PDF text through pypdf); a file
named without a wildcard is read whatever its extension. ``pin`` is what ``plan`` records of
them (path -> sha256): an edited document is a change in ``plan``, and the index is rebuilt for
that file only at ``apply``. Bounded: files, bytes per file and in total.
"""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentform.engine.errors import KnowledgeError

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".mdx", ".txt", ".text", ".rst"})
PDF_SUFFIX = ".pdf"
MAX_FILES = 10_000
MAX_FILE_BYTES = 20 * 2**20
MAX_TOTAL_BYTES = 512 * 2**20
_WILDCARDS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One document: its path relative to the manifest's folder (what citations show), its hash."""

    rel: str
    path: Path
    sha256: str
    size: int


class SourceProblem(KnowledgeError):
    """A source that cannot be used; ``index`` is its position in ``sources`` (for a location)."""

    def __init__(self, index: int, message: str):
        self.index = index
        super().__init__(message)


def collect(patterns: list[str], folder: Path, root: Path) -> list[SourceFile]:
    """The documents ``patterns`` name under ``folder``, sorted by path, each once."""
    from agentform.engine.validation.paths import confine

    real_root = os.path.realpath(root)
    found: dict[str, SourceFile] = {}
    total = 0
    for i, pattern in enumerate(patterns):
        wild = bool(_WILDCARDS & set(pattern))
        _, why = confine(pattern, folder, root, glob=wild, real_root=real_root)
        if why:
            raise SourceProblem(i, f"source '{pattern}' {why}")
        matches = sorted(glob.glob(pattern, root_dir=folder, recursive=True)) if wild else [pattern]
        matched = 0
        for rel in matches:
            full = folder / rel
            if wild and (not _readable_suffix(rel) or not full.is_file()):
                continue
            resolved, why = confine(rel, folder, root, real_root=real_root)
            if resolved is None:
                raise SourceProblem(i, f"source '{pattern}': {rel} {why}")
            if not resolved.is_file():
                raise SourceProblem(i, f"source '{pattern}': {rel} is not a file")
            matched += 1
            rel = Path(rel).as_posix()
            if rel in found:
                continue
            size = resolved.stat().st_size
            if size > MAX_FILE_BYTES:
                raise SourceProblem(i, f"source '{pattern}': {rel} is {size} bytes, over the "
                                       f"{MAX_FILE_BYTES // 2**20} MiB a document may have")
            total += size
            if total > MAX_TOTAL_BYTES or len(found) >= MAX_FILES:
                raise SourceProblem(i, f"source '{pattern}': a knowledge base holds at most {MAX_FILES} "
                                       f"files and {MAX_TOTAL_BYTES // 2**20} MiB; split it or narrow the globs")
            found[rel] = SourceFile(rel, resolved, _sha256(resolved), size)
        if not matched:
            kinds = ", ".join(sorted(TEXT_SUFFIXES | {PDF_SUFFIX}))
            raise SourceProblem(i, f"source '{pattern}' matches no document under {folder} "
                                   f"(a glob takes {kinds})")
    return [found[k] for k in sorted(found)]


def pin(patterns: list[str], folder: Path, root: Path) -> dict[str, Any]:
    """What the desired state records of a KnowledgeBase: its folders and each document's hash."""
    files = collect(patterns, folder, root)
    return {"folder": str(Path(folder).resolve()), "root": str(Path(root).resolve()),
            "documents": {f.rel: f.sha256 for f in files}}


def pin_manifest(manifest: Any) -> dict[str, Any]:
    """``pin`` for a loaded manifest; a source problem is a ManifestError at that source's path."""
    from agentform.engine.errors import ManifestError

    patterns = [s.path for s in manifest.resource.spec.sources]
    try:
        return pin(patterns, manifest.base_dir, manifest.root)
    except SourceProblem as exc:
        raise ManifestError([manifest.diag(str(exc), "spec", "sources", exc.index, "path")]) from None


def read_text(source: SourceFile) -> str:
    """The document's text: UTF-8 (invalid bytes replaced), or a PDF's extracted text."""
    data = source.path.read_bytes()
    if source.path.suffix.lower() == PDF_SUFFIX:
        return _pdf_text(source, data)
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def _pdf_text(source: SourceFile, data: bytes) -> str:
    try:
        import io

        from pypdf import PdfReader
    except ImportError as exc:
        raise KnowledgeError(f"{source.rel}: reading PDF needs pypdf (pip install 'agentform[knowledge]')") from exc
    try:
        reader = PdfReader(io.BytesIO(data))
        # One page per block: a page's lines are its line range in citations.
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types for a broken file
        raise KnowledgeError(f"{source.rel}: not a readable PDF ({type(exc).__name__}: {exc})") from exc


def _readable_suffix(rel: str) -> bool:
    suffix = os.path.splitext(rel)[1].lower()
    return suffix in TEXT_SUFFIXES or suffix == PDF_SUFFIX


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
