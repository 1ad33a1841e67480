"""Manifest trees for the read-side tests: scripted models only, nothing leaves the machine."""

from __future__ import annotations

import json
from pathlib import Path

HEAD = "apiVersion: agentform.dev/v1alpha1\n"


def doc(kind: str, name: str, spec: dict, namespace: str | None = None, labels: dict | None = None) -> str:
    meta = {"name": name, **({"namespace": namespace} if namespace else {}), **({"labels": labels} if labels else {})}
    return f"{HEAD}kind: {kind}\nmetadata: {json.dumps(meta)}\nspec: {json.dumps(spec)}\n"


def write_project(root: Path, docs: list[str], script: dict | None = None) -> Path:
    """``root/all.yaml`` with a scripted Model ``m`` in default and in ``other``, plus ``docs``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "script.yaml").write_text(json.dumps(script or {"agents": {}}))
    (root / "other.yaml").write_text(json.dumps({"agents": {}}))
    models = [doc("Model", "m", {"model": "scripted", "script": "script.yaml"}),
              doc("Model", "m", {"model": "scripted", "script": "other.yaml"}, namespace="other")]
    (root / "all.yaml").write_text("---\n".join([*models, *docs]))
    return root


def agent(name: str, instructions: str = "Help.", namespace: str | None = None, labels: dict | None = None) -> str:
    return doc("Agent", name, {"model": "m", "instructions": instructions}, namespace=namespace, labels=labels)
