"""Workspace: a persistent, sandboxed room owned by one Team or Pipeline."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .common import DurationStr, QuantityStr, SpecModel


class Limits(SpecModel):
    cpus: float | None = Field(default=None, gt=0)
    memory: QuantityStr | None = None
    pids: int | None = Field(strict=True, default=None, ge=1)
    timeout: DurationStr | None = None


class WorkspaceSpec(SpecModel):
    backend: Literal["local", "docker"] = "local"
    image: str | None = None
    network: Literal["none", "egress"] = "none"
    limits: Limits = Field(default_factory=Limits)
    seed: str | None = None
    sandbox: Literal["bubblewrap", "none"] = "bubblewrap"

    @model_validator(mode="after")
    def _backend_fields(self) -> WorkspaceSpec:
        if self.backend == "docker" and not self.image:
            raise ValueError("a docker Workspace needs 'image'")
        if self.backend == "local" and self.image:
            raise ValueError("'image' is only for backend: docker")
        return self
