"""Pipeline: a DAG of stages with needs, conditions, bounded loops, fan-out and approvals."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from .agent import Output
from .common import Budget, DurationStr, Name, RefField, SecretRef, SpecModel, exactly_one
from .team import Vars

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
    on_exhausted: Literal["fail", "continue"] | None = Field(default=None, description=(
        "when maxVisits runs out: fail the stage (the default) or keep its last output and go on"))
    output: Output | None = Field(default=None, description=(
        "an agent stage: the JSON Schema of the answer, instead of the agent's own output.schema"))
    instructions: str | None = Field(default=None, max_length=65536, description=(
        "an agent stage: a template (the stage's context) appended to the agent's instructions"))

    @model_validator(mode="after")
    def _one_target(self) -> Stage:
        exactly_one(self, STAGE_TARGETS, f"stage '{self.name}'")
        if (self.output is not None or self.instructions is not None) and self.agent is None:
            raise ValueError(f"stage '{self.name}': 'output' and 'instructions' apply to an agent stage")
        if self.on_exhausted is not None and self.max_visits is None:
            raise ValueError(f"stage '{self.name}': onExhausted applies with maxVisits")
        return self

    @property
    def target_kind(self) -> str:
        return next(t for t in STAGE_TARGETS if getattr(self, t) is not None)


NOTIFY_EVENTS = ("approval.requested", "run.waiting", "run.completed", "run.failed", "run.cancelled")
NotifyEvent = Literal["approval.requested", "run.waiting", "run.completed", "run.failed", "run.cancelled"]


class Webhook(SpecModel):
    """A webhook the engine POSTs to on these events of the pipeline's runs (engine/notify.py)."""

    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2048)
    events: list[NotifyEvent] | None = Field(default=None, max_length=len(NOTIFY_EVENTS), description=(
        "default: approval.requested, run.completed, run.failed, run.cancelled"))
    secret: SecretRef | None = Field(default=None, description=(
        "the HMAC-SHA256 key of the X-Agentform-Signature-256 header"))


class PipelineSpec(SpecModel):
    params: dict[str, Param] = Field(default_factory=dict)
    vars: Vars | None = None
    workspace: RefField | None = None
    max_parallel: int = Field(strict=True, default=8, ge=1, le=1024)
    stages: list[Stage] = Field(min_length=1)
    output: str | None = None
    budget: Budget | None = None
    notify: list[Webhook] = Field(default_factory=list, max_length=10, description=(
        "webhooks on approval requests and run ends, besides notify: in <home>/config.yaml"))
