"""The scripted model's script file (CONTRACT section 5): turns per agent, played in order."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from .common import DurationStr, SpecModel


class ScriptedToolCall(SpecModel):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class ScriptedUsage(SpecModel):
    input: int = Field(strict=True, default=0, ge=0)
    output: int = Field(strict=True, default=0, ge=0)


class Turn(SpecModel):
    content: str | dict[str, Any] | list[Any] | None = None
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    latency: DurationStr | None = None
    usage: ScriptedUsage | None = None
    stream: Literal["words"] | None = None
    error: str | None = Field(default=None, description="raise this provider error instead")

    @model_validator(mode="after")
    def _says_something(self) -> Turn:
        if self.content is None and not self.tool_calls and self.error is None:
            raise ValueError("a turn needs 'content', 'toolCalls' or 'error'")
        return self


class Script(SpecModel):
    """Keys are agent names or path suffixes such as ``summarize[2]/summarizer``; ``worker#2``
    addresses only the second call of ``worker`` within one parent, ``worker`` every call."""

    agents: dict[str, list[Turn]]

    @staticmethod
    def agent_of(key: str) -> str:
        """The agent name a script key addresses (the last path segment, without a ``#n`` visit)."""
        return key.rsplit("/", 1)[-1].split("#", 1)[0]
