"""Team operator: the team is compiled into a Graph stored with the revision; Ready when it compiled."""

from __future__ import annotations

from agentform.operators.base import CompiledOperator, register


class TeamOperator(CompiledOperator):
    kind = "Team"


register(TeamOperator())
