"""Canonical hashing of manifests and graphs: the same data gives the same hash.

Data is hashed as canonical JSON (sorted keys, no whitespace, UTF-8), so reformatting a
manifest, reordering its keys, or moving it to another file or document changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel


def canonical_json(data: Any) -> str:
    """``data`` as canonical JSON text: sorted keys, compact separators, no ASCII escaping."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(data: Any) -> str:
    """A SHA-256 hex digest of ``data``'s canonical JSON, prefixed ``sha256:``."""
    return "sha256:" + hashlib.sha256(canonical_json(data).encode()).hexdigest()


def resource_document(resource: BaseModel) -> dict[str, Any]:
    """The canonical plain data of a manifest: by alias, defaults filled in, ``None`` dropped.

    Defaults are included so that writing a default explicitly and leaving it out are the
    same manifest.
    """
    return resource.model_dump(mode="json", by_alias=True, exclude_none=True)


def set_hash(entries: Iterable[tuple[str, str]]) -> str:
    """An order-independent hash of (identity, hash) pairs, e.g. every resource of a revision."""
    return digest(sorted(entries))
