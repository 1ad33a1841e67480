"""The desired state: validated manifests turned into canonical documents with their hashes.

A desired document is the manifest's canonical data plus what it pulls in from disk that
must be pinned in the revision (``resolved``): a scripted Model's script content and the
absolute path of a Secret's relative ``fromFile``, an Agent's ``instructionsFile`` text. So a
script or prompt-file edit is a change in ``plan``
and a run never reads the current files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentform.engine.hashing import digest, resource_document
from agentform.specs import KINDS, Resource, ResourceKey
from agentform.specs.model import SCRIPTED

if TYPE_CHECKING:
    from agentform.engine.loader import LoadedManifest, ManifestSet

RESOLVED = "resolved"


@dataclass(frozen=True)
class Desired:
    """One resource as the manifests want it."""

    key: ResourceKey
    resource: Resource
    document: dict[str, Any]          # canonical data + ``resolved``; what the store keeps as spec
    spec_hash: str
    source: str = ""                  # "file:line" for messages and describe
    file: str = ""
    line: int = 0
    col: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def resolved(self) -> dict[str, Any]:
        return self.document.get(RESOLVED, {})


def resolve_extras(resource: Resource, base_dir: Path | None) -> dict[str, Any]:
    """What a manifest pulls in from disk and must be pinned: script content, absolute fromFile."""
    from agentform.engine.loader import load_script

    spec = resource.spec  # type: ignore[attr-defined]
    extras: dict[str, Any] = {}
    if resource.kind == "Model" and spec.model == SCRIPTED and spec.script:
        path = Path(spec.script)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        extras["script"] = _script_data(path, load_script)
    elif resource.kind == "Secret" and spec.from_file:
        path = Path(spec.from_file)
        if not path.is_absolute() and base_dir is not None:
            path = (base_dir / path).resolve()
        extras["fromFile"] = str(path)
    elif resource.kind == "Agent" and spec.instructions_file:
        path = Path(spec.instructions_file)
        extras["instructions"] = read_instructions_file(base_dir / path if base_dir is not None else path)
    elif resource.kind == "ToolServer" and spec.transport == "stdio" and base_dir is not None:
        # A stdio server runs in its manifest's folder, whatever the current directory of the run.
        extras["folder"] = str(base_dir.resolve())
    elif resource.kind == "Workspace" and spec.seed and base_dir is not None:
        # Copied in at a workspace's first provision, which may be a run's (engine/workspaces/).
        extras["seed"] = str((base_dir / spec.seed).resolve())
    return extras


MAX_INSTRUCTIONS_FILE = 1 << 20


def read_instructions_file(path: Path) -> str:
    """An Agent's ``instructionsFile`` as text (UTF-8, at most 1 MiB); a located error otherwise."""
    from agentform.engine.errors import Diagnostic, ManifestError

    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_INSTRUCTIONS_FILE + 1)
        if len(data) > MAX_INSTRUCTIONS_FILE:
            raise ValueError(f"is larger than {MAX_INSTRUCTIONS_FILE} bytes")
        return data.decode("utf-8")
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ManifestError([Diagnostic(str(path), 1, 1, f"instructionsFile: {why}")]) from None


_SCRIPTS: dict[tuple[str, str], dict[str, Any]] = {}


def _script_data(path: Path, load_script) -> dict[str, Any]:
    """A script's plain data, parsed once per process per content (many Models share one file)."""
    import hashlib

    try:
        key = (str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest())
    except OSError:
        return load_script(path)[1]  # raises the loader's located error
    if key not in _SCRIPTS:
        _SCRIPTS[key] = load_script(path)[1]
    return _SCRIPTS[key]


def make_desired(resource: Resource, *, extras: dict[str, Any] | None = None, source: str = "",
                 file: str = "", line: int = 0, col: int = 0) -> Desired:
    """A Desired from a typed resource and its already-resolved extras."""
    document = resource_document(resource)
    if extras:
        document[RESOLVED] = extras
    return Desired(
        key=resource.key, resource=resource, document=document, spec_hash=digest(document),
        source=source, file=file, line=line, col=col,
        labels=dict(resource.metadata.labels),
    )


def from_manifest(manifest: LoadedManifest) -> Desired:
    """The desired state of one loaded manifest (reads a scripted Model's script file)."""
    from agentform.engine.errors import ManifestError
    from agentform.engine.validation.paths import check_paths

    # Checked again where the file is read: a path may have changed (a symlink swapped) since load.
    refused = check_paths(manifest)
    if refused:
        raise ManifestError(refused)
    resource = manifest.resource
    loc = manifest.locate("metadata", "name")
    extras = resolve_extras(resource, manifest.base_dir)
    if resource.kind == "KnowledgeBase":  # documents by hash: an edited document is a change in plan
        from agentform.engine.knowledge.sources import pin_manifest

        extras.update(pin_manifest(manifest))
    return make_desired(
        resource, extras=extras,
        source=f"{manifest.display}:{loc.line}", file=manifest.display, line=loc.line, col=loc.col,
    )


def from_manifest_set(manifests: ManifestSet) -> list[Desired]:
    """Every manifest of the set as Desired, in dependency order (KINDS), then by key."""
    return sort_desired(from_manifest(m) for m in manifests.manifests)


def from_document(document: dict[str, Any], source: str = "") -> Desired:
    """A Desired read back from a saved plan's document (the extras are already inside)."""
    data = {k: v for k, v in document.items() if k != RESOLVED}
    resource = KINDS[data["kind"]].model_validate(data)
    return make_desired(resource, extras=document.get(RESOLVED), source=source,
                        file=source.rsplit(":", 1)[0])


_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}


def kind_order(key: ResourceKey) -> tuple[int, str, str]:
    return (_KIND_ORDER.get(key.kind, len(_KIND_ORDER)), key.namespace, key.name)


def sort_desired(items) -> list[Desired]:
    return sorted(items, key=lambda d: kind_order(d.key))
