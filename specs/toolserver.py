"""ToolServer: an MCP server reached over stdio, streamable HTTP or SSE."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .common import DurationStr, SecretRef, SpecModel


class ToolFilter(SpecModel):
    allow: list[str] | None = None
    deny: list[str] | None = None

    @model_validator(mode="after")
    def _not_both(self) -> ToolFilter:
        if self.allow is not None and self.deny is not None:
            raise ValueError("a tool filter takes 'allow' or 'deny', not both")
        return self


class ToolServerSpec(SpecModel):
    transport: Literal["stdio", "http", "sse"] = "stdio"
    command: list[str] | None = Field(default=None, min_length=1)
    env: dict[str, str | SecretRef] = Field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str | SecretRef] = Field(default_factory=dict)
    tools: ToolFilter | None = None
    timeout: DurationStr = "30s"  # type: ignore[assignment]
    startup: Literal["lazy", "eager"] = "lazy"

    @model_validator(mode="after")
    def _transport_fields(self) -> ToolServerSpec:
        if self.transport == "stdio" and not self.command:
            raise ValueError("a stdio ToolServer needs 'command' (the server's argv)")
        if self.transport in ("http", "sse") and not self.url:
            raise ValueError(f"an {self.transport} ToolServer needs 'url'")
        return self
