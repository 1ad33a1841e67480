"""Model: an LLM reached through litellm, or the offline ``scripted`` model."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from .common import RefField, SecretRef, SpecModel

SCRIPTED = "scripted"


class Pricing(SpecModel):
    input_per_m_tok: float = Field(ge=0)
    output_per_m_tok: float = Field(ge=0)


class ModelSpec(SpecModel):
    model: str = Field(min_length=1, description="any litellm model string, or 'scripted'")
    script: str | None = Field(default=None, description="scripted only: path relative to this file")
    params: dict[str, Any] = Field(default_factory=dict)
    base_url: str | None = None
    api_key: SecretRef | None = None
    fallbacks: list[RefField] = Field(default_factory=list)
    pricing: Pricing | None = None
    retries: int = Field(strict=True, default=2, ge=0, le=10)

    @model_validator(mode="after")
    def _script_iff_scripted(self) -> ModelSpec:
        if self.model == SCRIPTED and not self.script:
            raise ValueError("a scripted Model needs 'script' (a path relative to this file)")
        if self.model != SCRIPTED and self.script:
            raise ValueError("'script' is only for model: scripted")
        return self
