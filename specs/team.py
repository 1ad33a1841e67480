"""Team: a manager agent over members it orchestrates (ask_*), delegates to (transfer_to_*), or,
in handoff mode, that hand the conversation among themselves (transfer_to_*)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from .common import Budget, Name, RefField, SpecModel, exactly_one

Mode = Literal["orchestrate", "delegate"]
TeamMode = Literal["orchestrate", "delegate", "handoff"]

MAX_VARS = 256
VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_VAR_NAME_RE = re.compile(VAR_NAME)


def _check_vars(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_VARS:
        raise ValueError(f"at most {MAX_VARS} vars (got {len(value)})")
    for name in value:
        if not _VAR_NAME_RE.match(name):
            raise ValueError(f"var name '{name}' must be an identifier (letters, digits, '_'; "
                             "at most 64 characters) so that templates can read it as vars.NAME")
    return value


# ``vars:`` of a Team or Pipeline: values every agent inside reads as ``{{ vars.NAME }}``.
Vars = Annotated[
    dict[str, Any],
    AfterValidator(_check_vars),
    WithJsonSchema({"type": "object", "maxProperties": MAX_VARS, "propertyNames": {"pattern": VAR_NAME}}),
]


class Member(SpecModel):
    agent: RefField | None = None
    team: RefField | None = None
    mode: Mode | None = None
    handoffs: list[Name] | None = Field(default=None, max_length=256, description=(
        "handoff mode: the team agents (members or the manager) this member may hand the "
        "conversation to with transfer_to_<name>"))

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
    mode: TeamMode = "orchestrate"
    members: list[Member] = Field(min_length=1)
    handoffs: list[Name] | None = Field(default=None, max_length=256, description=(
        "handoff mode: whom the manager (the entry agent) may hand to; default: every member"))
    finishers: list[Name] | None = Field(default=None, max_length=256, description=(
        "handoff mode: the agents whose reply without a tool call may end the team; "
        "default: every agent of the team"))
    vars: Vars | None = None
    workspace: RefField | None = None
    max_parallel: int = Field(strict=True, default=4, ge=1, le=1024)
    budget: Budget | None = None

    @model_validator(mode="after")
    def _handoff_fields(self) -> TeamSpec:
        if self.mode != "handoff":
            if self.handoffs is not None or self.finishers is not None:
                raise ValueError("'handoffs' and 'finishers' apply to a team with mode: handoff")
            if any(m.handoffs is not None for m in self.members):
                raise ValueError("a member's 'handoffs' applies to a team with mode: handoff")
        elif any(m.mode is not None for m in self.members):
            raise ValueError("in mode: handoff every member hands off; a member takes no 'mode'")
        return self
