"""Agent operator: the agent is compiled into a Graph stored with the revision; Ready when it compiled."""

from __future__ import annotations

from agentform.operators.base import CompiledOperator, register


class AgentOperator(CompiledOperator):
    kind = "Agent"


register(AgentOperator())
