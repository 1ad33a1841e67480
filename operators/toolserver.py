"""ToolServer operator: records the spec; probing servers comes with the tools issue."""

from __future__ import annotations

from agentform.operators.base import BaseOperator, OperatorContext, register, unknown


class ToolServerOperator(BaseOperator):
    kind = "ToolServer"

    def provision(self, ctx: OperatorContext, desired):
        return unknown("NotProvisioned", "spec recorded; this engine does not provision ToolServers yet")


register(ToolServerOperator())
