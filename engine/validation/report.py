"""What ``Engine.validate`` returns: every problem of a manifest tree, as data for the faces.

Kept apart from engine/views.py so that ``validate`` loads no more than the checks need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentform.engine.errors import Diagnostic


@dataclass
class ValidationReport:
    """Every problem of a manifest tree (``validate``); ``ok`` when none is an error."""

    ok: bool
    diagnostics: list[Diagnostic]
    manifests: int                  # valid manifests
    files: int                      # manifest files read
    documents: int                  # manifest documents seen, valid or not
    skipped: list[str] = field(default_factory=list)   # YAML files that are not manifests

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def to_dict(self) -> dict[str, Any]:
        """What ``validate -o json`` prints."""
        return {"ok": self.ok, "diagnostics": [d.to_dict() for d in self.diagnostics],
                "manifests": self.manifests, "files": self.files, "skipped": self.skipped}


def validation_report(path: str | Path, *, max_file_bytes: int = 1 << 20) -> ValidationReport:
    from agentform.engine.validation import validate_path

    result = validate_path(Path(path), max_file_bytes=max_file_bytes)
    return ValidationReport(ok=result.ok, diagnostics=list(result.diagnostics), manifests=len(result.manifests),
                            files=result.manifest_files, documents=result.documents, skipped=list(result.skipped))
