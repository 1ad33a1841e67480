"""Team: a manager agent over members it orchestrates (ask_*) or delegates to (transfer_to_*)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .common import Budget, RefField, SpecModel, exactly_one

Mode = Literal["orchestrate", "delegate"]


class Member(SpecModel):
    agent: RefField | None = None
    team: RefField | None = None
    mode: Mode | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Member:
        exactly_one(self, ("agent", "team"), "a team member")
        return self

    @property
    def ref(self):
        return self.agent or self.team

    @property
    def kind(self) -> str:
        return "Agent" if self.agent is not None else "Team"


class TeamSpec(SpecModel):
    manager: RefField
    mode: Mode = "orchestrate"
    members: list[Member] = Field(min_length=1)
    workspace: RefField | None = None
    max_parallel: int = Field(strict=True, default=4, ge=1, le=1024)
    budget: Budget | None = None
