"""KnowledgeBase operator: records the spec; indexing comes with the knowledge issue."""

from __future__ import annotations

from agentform.operators.base import BaseOperator, OperatorContext, register, unknown


class KnowledgeBaseOperator(BaseOperator):
    kind = "KnowledgeBase"

    def provision(self, ctx: OperatorContext, desired):
        return unknown("NotProvisioned", "spec recorded; this engine does not provision KnowledgeBases yet")


register(KnowledgeBaseOperator())
