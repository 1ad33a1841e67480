"""JSON Schema of the manifests, generated from ``agentform.specs`` (what ``schemas/`` holds).

The files are generated, committed and never hand-edited: ``agentform schema --out schemas``
(``make schemas``) rewrites them, and a test fails when the committed ones are stale.
Editors use them through a ``# yaml-language-server: $schema=...`` line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from agentform.specs import KINDS, AnyResource, Script

DIALECT = "https://json-schema.org/draft/2020-12/schema"
MANIFEST = "manifest"
SCRIPT = "script"
OVERLAY = "overlay"    # not a resource kind: the agentform.yaml of an overlay folder


def kind_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one kind (``Agent``), with keys as users write them (camelCase)."""
    schema = KINDS[kind].model_json_schema(by_alias=True)
    return _framed(schema, f"agentform {kind}", f"An agentform.dev/v1alpha1 {kind} manifest.")


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of any manifest: the union of every kind, told apart by ``kind``."""
    schema = TypeAdapter(AnyResource).json_schema(by_alias=True)
    return _framed(
        schema, "agentform manifest", "Any agentform.dev/v1alpha1 manifest (one YAML document)."
    )


def script_schema() -> dict[str, Any]:
    """The JSON Schema of a scripted-model script file (CONTRACT section 5)."""
    schema = Script.model_json_schema(by_alias=True)
    return _framed(schema, "agentform script", "Turns of the offline `scripted` model, per agent.")


def _framed(schema: dict[str, Any], title: str, description: str) -> dict[str, Any]:
    # $schema/title/description first, so the files read well; the rest as pydantic made it.
    return {"$schema": DIALECT, "title": title, "description": description, **{
        k: v for k, v in schema.items() if k not in ("title", "description")
    }}


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema for everything ``schemas/`` holds (``agent.json``, ``manifest.json``...)."""
    files = {f"{kind.lower()}.json": kind_schema(kind) for kind in KINDS}
    files[f"{MANIFEST}.json"] = manifest_schema()
    files[f"{SCRIPT}.json"] = script_schema()
    files[f"{OVERLAY}.json"] = overlay_schema()
    return files


def overlay_schema() -> dict[str, Any]:
    """The JSON Schema of an overlay folder's agentform.yaml (engine/overlays.py)."""
    from agentform.specs.overlay import Overlay

    schema = Overlay.model_json_schema(by_alias=True)
    return _framed(schema, "agentform Overlay", "An overlay folder's agentform.yaml: resources and patches.")


def dumps(schema: dict[str, Any]) -> str:
    """The text a schema file holds: stable key order from the specs, 2-space indent, final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(out_dir: Path) -> list[Path]:
    """Write every schema file into ``out_dir``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = out_dir / name
        path.write_text(dumps(schema), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(out_dir: Path) -> list[str]:
    """Names of the files in ``out_dir`` that are missing or differ from what the specs generate."""
    stale = []
    for name, schema in all_schemas().items():
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != dumps(schema):
            stale.append(name)
    return stale


def file_of(word: str) -> str:
    """The schema file a user meant by ``agent``, ``Agents``, ``manifest`` or ``script``."""
    from agentform.engine.errors import UsageError
    from agentform.specs import KINDS, kind_from_word

    if word.lower() in (MANIFEST, SCRIPT, OVERLAY):
        return f"{word.lower()}.json"
    kind = kind_from_word(word)
    if kind is None:
        choices = ", ".join([*KINDS, MANIFEST, SCRIPT])
        raise UsageError(f"unknown kind '{word}': choose one of {choices}")
    return f"{kind.lower()}.json"
