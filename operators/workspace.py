"""Workspace operator: records the spec; provisioning rooms comes with the workspaces issue."""

from __future__ import annotations

from agentform.operators.base import BaseOperator, OperatorContext, register, unknown


class WorkspaceOperator(BaseOperator):
    kind = "Workspace"

    def provision(self, ctx: OperatorContext, desired):
        return unknown("NotProvisioned", "spec recorded; this engine does not provision Workspaces yet")


register(WorkspaceOperator())
