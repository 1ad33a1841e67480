"""Agent: a model with instructions, tools, an optional output schema and a budget."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from .common import Budget, RefField, SpecModel, exactly_one
from .hosts import MAX_HOSTS, FetchHost

BUILTIN_TOOLS = ("workspace", "team-control", "think", "todo", "memory", "fetch")


class ToolUse(SpecModel):
    """One entry of ``tools``: exactly one of toolServer, builtin, knowledge."""

    tool_server: RefField | None = None
    builtin: Literal["workspace", "team-control", "think", "todo", "memory", "fetch"] | None = None
    knowledge: RefField | None = None
    allow: list[str] | None = None
    deny: list[str] | None = None
    # {builtin: fetch}: the only hosts it may reach (specs/hosts.py)
    hosts: list[FetchHost] | None = Field(None, min_length=1, max_length=MAX_HOSTS)

    @model_validator(mode="after")
    def _one_kind(self) -> ToolUse:
        exactly_one(self, ("tool_server", "builtin", "knowledge"), "a tool entry")
        if (self.hosts is None) != (self.builtin != "fetch"):
            raise ValueError("{builtin: fetch} needs 'hosts' (the hosts it may reach), and only it takes 'hosts'")
        if (self.allow is not None or self.deny is not None) and self.tool_server is None:
            raise ValueError("'allow' and 'deny' only apply to a toolServer entry")
        if self.allow is not None and self.deny is not None:
            raise ValueError("a tool entry takes 'allow' or 'deny', not both")
        return self


class Output(SpecModel):
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema of the final answer")


class AgentSpec(SpecModel):
    model: RefField
    description: str = ""
    instructions: str = ""
    instructions_file: str | None = Field(default=None, min_length=1, max_length=4096, description=(
        "a file of the repository (relative to the manifest's folder) holding the instructions "
        "template; its content is pinned at apply, and replaces 'instructions'"))
    tools: list[ToolUse] = Field(default_factory=list)
    output: Output | None = None
    budget: Budget | None = None

    @model_validator(mode="after")
    def _one_instructions(self) -> AgentSpec:
        if self.instructions and self.instructions_file is not None:
            raise ValueError("an agent takes 'instructions' or 'instructionsFile', not both")
        return self
