"""Shared helpers of the runtime tests: apply manifests into a store, write manifest trees."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def apply(store, path: Path | str, home: Path) -> int:
    """Apply the manifests under ``path`` (as ``agentform apply``); returns the revision number."""
    from agentform.engine.reconcile import apply_path

    result = apply_path(store, Path(path), home=home)
    # exit 1 may only mean a resource is not Ready (e.g. PricingUnknown): the graphs still apply
    latest = result.revision or store.latest_revision()
    assert latest is not None, (result.exit_code, result.failed)
    return latest.number


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text, dedented) under ``root``."""
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dedent(text).lstrip())
    return root


HEAD = "apiVersion: agentform.dev/v1alpha1\n"


def manifest(kind: str, name: str, spec: dict, namespace: str | None = None) -> str:
    """One manifest document as YAML text (spec given as data)."""
    import json

    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return f"{HEAD}kind: {kind}\nmetadata: {json.dumps(meta)}\nspec: {json.dumps(spec)}\n"


def project(root: Path, script: dict, docs: list[str], model_spec: dict | None = None) -> Path:
    """A manifest folder: a scripted Model ``m`` playing ``script``, plus ``docs``."""
    import json

    spec = {"model": "scripted", "script": "script.yaml", **(model_spec or {})}
    (root).mkdir(parents=True, exist_ok=True)
    (root / "script.yaml").write_text(json.dumps(script))
    (root / "all.yaml").write_text("---\n".join([manifest("Model", "m", spec), *docs]))
    return root


def agent(name: str, **spec) -> str:
    return manifest("Agent", name, {"model": "m", **spec})


def team(name: str, manager: str, members: list[dict], **spec) -> str:
    return manifest("Team", name, {"manager": manager, "members": members, **spec})


def run(store, home: Path, root: Path, target: str, input: str = "go", **kw):
    """Apply ``root`` and run ``target``; returns (RunResult, events)."""
    from agentform.engine.runtime import runner

    apply(store, root, home)
    result = runner.start_run(store, target, input=input, home=home, **kw)
    return result, store.read_events(result.id)


def of(events, type_: str, path: str | None = None):
    return [e for e in events if e.type == type_ and (path is None or e.path == path)]
