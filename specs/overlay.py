"""Overlay: a folder that takes other folders' manifests and changes some fields (kustomize-like).

An overlay is a folder whose ``agentform.yaml`` holds one ``kind: Overlay`` document:
``spec.resources`` names the folders (or files) it loads, relative to the overlay's folder;
``spec.patches`` changes the resources they hold, each patch selecting its targets by kind
and, optionally, name and namespace. An Overlay is not a resource: nothing is applied for it,
and its ``metadata.name`` is the default app of an apply. Pure data: engine/overlays.py loads it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import Name, SpecModel
from .kinds import Resource

MAX_RESOURCES = 32
MAX_PATCHES = 256


class PatchTarget(SpecModel):
    """Which resources a patch changes: every one of ``kind``, narrowed by name and namespace."""

    kind: str = Field(description="the kind of the resources to patch (Model, Agent, ...)")
    name: Name | None = Field(None, description="only the resource of this name (default: every one)")
    namespace: Name | None = Field(None, description="only resources of this namespace (default: any)")


class Patch(SpecModel):
    """A merge patch: mappings merge key by key, null removes a key, a list of mappings that all
    have a ``name`` merges item by item by name (``$patch: delete`` removes one), other lists
    and values replace what the resource has."""

    target: PatchTarget
    patch: dict[str, Any] = Field(description="fields to set, under 'spec' and 'metadata' (labels, annotations)")


class OverlaySpec(SpecModel):
    resources: list[str] = Field(min_length=1, max_length=MAX_RESOURCES, description=(
        "folders (or files) of manifests, relative to the overlay's folder, e.g. ../../base"))
    patches: list[Patch] = Field(default_factory=list, max_length=MAX_PATCHES)


class Overlay(Resource):
    kind: Literal["Overlay"]
    spec: OverlaySpec
