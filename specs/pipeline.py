"""Pipeline: a DAG of stages with needs, conditions, bounded loops, fan-out and approvals."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from .common import Budget, DurationStr, Name, RefField, SpecModel, exactly_one

ParamType = Literal["string", "integer", "number", "boolean", "object", "array"]
STAGE_TARGETS = ("agent", "team", "pipeline", "tool", "approval")


class Param(SpecModel):
    type: ParamType = "string"
    description: str = ""
    default: Any = None
    enum: list[Any] | None = None


class ToolCall(SpecModel):
    tool_server: RefField
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class Approval(SpecModel):
    message: str = "Continue?"
    timeout: DurationStr = "72h"  # type: ignore[assignment]


class Route(SpecModel):
    when: str = Field(min_length=1)
    goto: Name


class Stage(SpecModel):
    name: Name
    agent: RefField | None = None
    team: RefField | None = None
    pipeline: RefField | None = None
    tool: ToolCall | None = None
    approval: Approval | None = None
    input: str | None = None
    needs: list[Name] = Field(default_factory=list)
    when: str | None = None
    routes: list[Route] = Field(default_factory=list)
    max_visits: int | None = Field(strict=True, default=None, ge=1)
    for_each: str | None = None
    max_parallel: int | None = Field(strict=True, default=None, ge=1, le=1024)
    continue_on_error: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> Stage:
        exactly_one(self, STAGE_TARGETS, f"stage '{self.name}'")
        return self

    @property
    def target_kind(self) -> str:
        return next(t for t in STAGE_TARGETS if getattr(self, t) is not None)


class PipelineSpec(SpecModel):
    params: dict[str, Param] = Field(default_factory=dict)
    workspace: RefField | None = None
    max_parallel: int = Field(strict=True, default=8, ge=1, le=1024)
    stages: list[Stage] = Field(min_length=1)
    output: str | None = None
    budget: Budget | None = None
