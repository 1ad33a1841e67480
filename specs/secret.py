"""Secret: where a value comes from (sealed, env or file); the value itself is never stored."""

from __future__ import annotations

from pydantic import Field, model_validator

from .common import SpecModel, exactly_one

# afs2:<key-id>:... is what `agentform secret seal` writes; afs1:... keeps decrypting (engine/sealing.py).
SEALED_PATTERN = r"^afs(1|2):"


class SecretSpec(SpecModel):
    sealed: str | None = Field(default=None, pattern=SEALED_PATTERN, description="agentform secret seal")
    from_env: str | None = Field(default=None, min_length=1)
    from_file: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> SecretSpec:
        exactly_one(self, ("sealed", "from_env", "from_file"), "a Secret")
        return self
