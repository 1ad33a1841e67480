"""Manifests from files: discovery, safe YAML, envelope and schema (CONTRACT sections 1, 7).

``load_manifests`` finds the manifest files under a path, reads every document safely
(engine/yamlsafe.py), checks the envelope and validates each document against its kind's
pydantic model. Every problem becomes a located Diagnostic; nothing raises on bad input.
Semantic checks across manifests live in engine/validation.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentform.engine.errors import Diagnostic, ManifestError
from agentform.engine.yamlsafe import Document, decode, parse_yaml
from agentform.specs import API_GROUP, API_VERSION, KINDS, Resource, ResourceKey, Script

from .validation.paths import check_paths, is_inside
from .validation.schema import schema_diagnostics
from .validation.suggest import did_you_mean

MAX_FILE_BYTES = 1 << 20
YAML_SUFFIXES = (".yaml", ".yml")
IGNORE_FILE = ".agentformignore"


@dataclass(frozen=True)
class Location:
    """A place in a file (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def display_path(path: Path) -> str:
    """``path`` relative to the current directory when under it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def locate_in(doc: Document, path: tuple, key: bool = False) -> tuple[int, int]:
    """(line, col) of the node at ``path`` (its key when ``key``), else the nearest parent."""
    probe = tuple(path)
    while True:
        loc = doc.locs.get(probe)
        if loc is not None:
            if key and probe == tuple(path) and probe:
                return loc[0], loc[1]
            return loc[2], loc[3]
        if not probe:
            return doc.line, doc.col
        probe = probe[:-1]


@dataclass
class LoadedManifest:
    """One document that passed the envelope and schema checks."""

    resource: Resource
    file: Path
    display: str
    doc_index: int
    raw: dict
    doc: Document = field(repr=False)
    # The folder its paths must stay in (engine/validation/paths.py): the applied folder today;
    # overlays will give each base folder its own.
    root: Path | None = None

    def __post_init__(self) -> None:
        if self.root is None:
            self.root = self.file.parent

    @property
    def base_dir(self) -> Path:
        return self.file.parent

    @property
    def key(self) -> ResourceKey:
        return self.resource.key

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def name(self) -> str:
        return self.resource.metadata.name

    @property
    def namespace(self) -> str:
        return self.resource.metadata.namespace

    def locate(self, *data_path: Any, key: bool = False) -> Location:
        """Where the value (or with ``key=True`` the key) at ``data_path`` is written."""
        line, col = locate_in(self.doc, data_path, key)
        return Location(self.display, line, col)

    def text_start(self, *data_path: Any) -> tuple[int, int]:
        """(line, col) where the text of a string value starts (a block scalar's next line)."""
        start = self.doc.text_starts.get(tuple(data_path))
        return start[:2] if start is not None else locate_in(self.doc, data_path)

    def text_origin(self, *data_path: Any) -> tuple[str, Document, tuple]:
        """(file as shown, its document, the path in it) of the string at ``data_path``: this
        manifest's, unless an overlay's patch wrote it (engine/overlays.py)."""
        return self.display, self.doc, tuple(data_path)

    def diag(self, message: str, *data_path: Any, key: bool = False, severity: str = "error") -> Diagnostic:
        """A diagnostic at ``data_path`` of this manifest."""
        where = self.locate(*data_path, key=key)
        return Diagnostic(where.file, where.line, where.col, message, severity)  # type: ignore[arg-type]


@dataclass
class ManifestSet:
    """What a path holds: the valid manifests and every problem found (sorted)."""

    root: Path
    manifests: list[LoadedManifest] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed_files: list[str] = field(default_factory=list)
    manifest_files: int = 0
    documents: int = 0  # manifest documents seen, valid or not
    # Keys of every document whose envelope could be read, valid or not (no cascades).
    claimed: dict[ResourceKey, Location] = field(default_factory=dict)
    _index: dict[ResourceKey, LoadedManifest] = field(default_factory=dict, repr=False)

    def get(self, kind: str, namespace: str, name: str) -> LoadedManifest | None:
        return self._index.get(ResourceKey(kind, namespace, name))

    def of_kind(self, kind: str) -> list[LoadedManifest]:
        return [m for m in self.manifests if m.kind == kind]

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def add(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    def finish(self) -> None:
        self.diagnostics = sorted(set(self.diagnostics), key=_sort_key)

    def raise_for_errors(self) -> None:
        if not self.ok:
            raise ManifestError([d for d in self.diagnostics if d.severity == "error"])


def _sort_key(d: Diagnostic) -> tuple:
    return (d.file, d.line, d.col, d.message)


# ---------------------------------------------------------------- discovery


def discover(root: Path, overlays: list[str] | None = None) -> list[Path]:
    """YAML files under ``root`` (hidden folders, hidden files, .agentform/ and ignored paths skipped;
    so are overlay folders below ``root``, appended to ``overlays``: engine/overlays.py)."""
    if root.is_file():
        return [root]
    spec = _ignore_spec(root)
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        rel_folder = "" if rel_folder == "." else rel_folder.replace(os.sep, "/") + "/"
        if rel_folder and ("agentform.yaml" in files or "agentform.yml" in files) and _is_overlay(folder):
            dirs[:] = []   # it loads its bases itself: validate, plan or apply it by its own path
            if overlays is not None:
                overlays.append(display_path(Path(folder)) + "/")
            continue
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and not (spec and spec.match_file(rel_folder + d + "/"))
        )
        for name in files:
            if name.startswith(".") or not name.endswith(YAML_SUFFIXES):
                continue
            if spec and spec.match_file(rel_folder + name):
                continue
            found.append(Path(folder) / name)
    return sorted(found)


def _is_overlay(folder: str) -> bool:
    from .overlays import overlay_file

    return overlay_file(Path(folder)) is not None


def _ignore_spec(root: Path):
    ignore = root / IGNORE_FILE
    if not ignore.is_file() or not is_inside(os.path.realpath(ignore), os.path.realpath(root)):
        return None  # one that leads outside the folder is refused by load_manifests, unread
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(ignore.read_text(encoding="utf-8", errors="replace").splitlines())


# ---------------------------------------------------------------- loading


def load_manifests(path: Path, *, max_file_bytes: int = MAX_FILE_BYTES) -> ManifestSet:
    """Every manifest under ``path`` (a file or a folder), with envelope and schema checked."""
    root = Path(path).absolute()
    result = ManifestSet(root=root)
    if not root.exists():
        result.add(Diagnostic(display_path(root), 0, 0, "no such file or directory"))
        result.failed_files.append(display_path(root))
        result.finish()
        return result
    overlay = _overlay_of(root)
    if overlay is not None:
        from .overlays import load_overlay

        load_overlay(root, overlay, result, max_file_bytes)
    else:
        load_into(root, result, max_file_bytes)
    result.finish()
    return result


def _overlay_of(root: Path) -> Path | None:
    if not root.is_dir() or not any((root / n).is_file() for n in ("agentform.yaml", "agentform.yml")):
        return None
    from .overlays import overlay_file

    return overlay_file(root)


def load_into(root: Path, result: ManifestSet, max_file_bytes: int = MAX_FILE_BYTES) -> None:
    """Add the manifests under ``root`` (a file or a folder, its own root for paths) to ``result``."""
    folder = root if root.is_dir() else root.parent
    real_folder = os.path.realpath(folder)
    if root.is_dir() and os.path.lexists(root / IGNORE_FILE):
        _outside(root / IGNORE_FILE, folder, real_folder, result)  # discover() skips it then
    overlays: list[str] = []
    for file in discover(root, overlays):
        if _outside(file, folder, real_folder, result):
            continue
        _load_file(file, result, max_file_bytes, folder)
    result.skipped.extend(f"{o} (an overlay folder: validate, plan or apply it by its own path)" for o in overlays)


def _outside(file: Path, folder: Path, real_folder: str, result: ManifestSet) -> bool:
    """A manifest file that is a symlink to outside the applied folder is refused, never read."""
    real = os.path.realpath(file)
    if is_inside(real, real_folder):
        return False
    display = display_path(file)
    result.add(Diagnostic(display, 1, 1, f"this file is a symlink to {real}, outside the applied folder "
                          f"({display_path(folder)}); it is not read: copy the file into the folder instead"))
    result.failed_files.append(display)
    return True


def read_yaml_file(file: Path, display: str, max_file_bytes: int) -> tuple[list[Document], list[Diagnostic]]:
    """The documents of a YAML file and any fatal problem (too large, binary, unparseable)."""
    try:
        info = file.stat()
        if not stat.S_ISREG(info.st_mode):
            # A FIFO or device would block or never end: refuse it before opening it.
            return [], [Diagnostic(display, 1, 1, "not a regular file (a FIFO, device or socket); "
                                   "manifests and scripts must be plain files")]
        size = info.st_size
        if size > max_file_bytes:
            return [], [Diagnostic(display, 1, 1, f"file too large ({size} bytes; the limit is "
                                   f"{max_file_bytes}, see --max-file-size)")]
        with open(file, "rb") as handle:
            raw = handle.read(max_file_bytes + 1)
    except OSError as exc:
        return [], [Diagnostic(display, 1, 1, f"cannot read file: {exc.strerror or exc}")]
    if len(raw) > max_file_bytes:
        return [], [Diagnostic(display, 1, 1, f"file too large (over {max_file_bytes} bytes)")]
    text, problem = decode(raw, display)
    if problem is not None:
        return [], [problem]
    parsed = parse_yaml(text, display)
    return parsed.documents, parsed.fatal


def _is_ours(data: Any) -> bool:
    """Whether a document is meant as an agentform manifest (CONTRACT section 7)."""
    if not isinstance(data, dict):
        return False
    api, kind = data.get("apiVersion"), data.get("kind")
    kind = kind if isinstance(kind, str) else None
    ours_api = isinstance(api, str) and api.split("/", 1)[0] == API_GROUP
    if "apiVersion" in data and "kind" in data:
        # A foreign group (a Kubernetes file, say) is not ours unless the kind is.
        return ours_api or kind in KINDS
    return ours_api or (kind in KINDS and "metadata" in data)


def _load_file(file: Path, result: ManifestSet, max_file_bytes: int, folder: Path) -> None:
    display = display_path(file)
    documents, fatal = read_yaml_file(file, display, max_file_bytes)
    ours = any(_is_ours(d.data) for d in documents)
    if fatal:
        result.failed_files.append(display)
        for d in fatal:
            result.add(d)
        if ours:
            for doc in documents:
                for d in doc.errors:
                    result.add(d)
        return
    if not ours:
        result.skipped.append(display)
        return
    result.manifest_files += 1
    for doc in documents:
        if doc.data is None and not doc.errors:
            continue  # an empty document (a trailing ---)
        result.documents += 1
        _load_document(file, display, doc, result, folder)


def _load_document(file: Path, display: str, doc: Document, result: ManifestSet, folder: Path) -> None:
    data = doc.data

    def at(message: str, *path: Any, key: bool = False) -> None:
        line, col = locate_in(doc, path, key)
        result.add(Diagnostic(display, line, col, message))

    for problem in doc.errors:
        result.add(problem)
    if not isinstance(data, dict):
        what = "a list" if isinstance(data, list) else "a scalar"
        at(f"document {doc.index + 1} is {what}, not a mapping: every document of a manifest file "
           "must be a manifest (apiVersion, kind, metadata, spec)")
        return
    kind = data.get("kind")
    if kind == "Overlay":
        at("kind: Overlay is read only as the agentform.yaml of an overlay folder, when that folder is "
           "validated, planned or applied by its own path (engine/overlays.py)", "kind")
        return
    cls = _envelope(data, at)
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and isinstance(kind, str) and kind in KINDS and isinstance(metadata.get("name"), str):
        namespace = metadata.get("namespace", "default")
        if isinstance(namespace, str):
            key = ResourceKey(kind, namespace, metadata["name"])
            where = Location(display, *locate_in(doc, ("metadata", "name")))
            first = result.claimed.get(key)
            if first is not None and cls is not None:
                at(f"duplicate {kind} '{key.name}' in namespace '{key.namespace}' "
                   f"(also defined at {first})", "metadata", "name")
                return
            result.claimed.setdefault(key, where)
    if cls is None or doc.errors:
        return
    try:
        resource = cls.model_validate(data)
    except ValidationError as exc:
        for d in schema_diagnostics(exc, cls, kind, data, display, lambda p, k: locate_in(doc, p, k)):
            result.add(d)
        return
    manifest = LoadedManifest(resource, file, display, doc.index, data, doc, root=folder)
    refused = check_paths(manifest)
    if refused:
        # Kept out of the set, so no later check or plan reads what it names (its key stays claimed).
        for d in refused:
            result.add(d)
        return
    result.manifests.append(manifest)
    result._index[resource.key] = manifest


def _envelope(data: dict, at) -> type[Resource] | None:
    """The kind's model when apiVersion and kind are right; reports what is wrong otherwise."""
    ok = True
    api = data.get("apiVersion")
    if "apiVersion" not in data:
        at(f"missing apiVersion (expected '{API_VERSION}')")
        ok = False
    elif api != API_VERSION:
        if isinstance(api, str) and api.split("/", 1)[0] == API_GROUP:
            at(f"unknown apiVersion '{api}': this agentform reads '{API_VERSION}'", "apiVersion")
        else:
            hint = did_you_mean(api, [API_VERSION]) or f" (expected '{API_VERSION}')"
            at(f"apiVersion '{api}' is not an agentform apiVersion{hint}", "apiVersion")
        ok = False
    kind = data.get("kind")
    if "kind" not in data:
        at(f"missing kind (one of: {', '.join(KINDS)})")
        return None
    if not isinstance(kind, str):
        at(f"kind must be a string, one of: {', '.join(KINDS)}", "kind")
        return None
    if kind not in KINDS:
        hint = did_you_mean(kind, KINDS) or f" (one of: {', '.join(KINDS)})"
        at(f"unknown kind '{kind}'{hint}", "kind")
        return None
    return KINDS[kind] if ok else None


def load_script(path: Path, *, display: str | None = None) -> tuple[Script, dict]:
    """A scripted model's script file, parsed and validated; ManifestError with locations."""
    script, doc = load_script_document(path, display=display)
    return script, doc.data


def load_script_document(path: Path, *, display: str | None = None) -> tuple[Script, Document]:
    """Like ``load_script``, with the parsed document (to locate keys inside the script)."""
    shown = display or display_path(path)
    if not path.is_file():
        raise ManifestError([Diagnostic(shown, 0, 0, "script file not found")])
    documents, fatal = read_yaml_file(path, shown, MAX_FILE_BYTES)
    if fatal:
        raise ManifestError(fatal)
    real = [d for d in documents if d.data is not None or d.errors]
    if len(real) != 1:
        raise ManifestError([Diagnostic(shown, 1, 1, "a script file holds exactly one YAML document")])
    doc = real[0]
    if doc.errors:
        raise ManifestError(doc.errors)
    if not isinstance(doc.data, dict):
        raise ManifestError([Diagnostic(shown, doc.line, doc.col, "a script must be a mapping with 'agents'")])
    try:
        script = Script.model_validate(doc.data)
    except ValidationError as exc:
        raise ManifestError(
            schema_diagnostics(exc, Script, "script", doc.data, shown, lambda p, k: locate_in(doc, p, k))
        ) from exc
    return script, doc
