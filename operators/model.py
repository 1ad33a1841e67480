"""Model operator: pins the scripted model's script (in the desired document) and checks prices.

A Model without a known price that a ``maxCostUsd`` budget must count is marked
``PricingUnknown`` (still Ready: only runs with such a budget refuse it).
"""

from __future__ import annotations

from agentform.engine.prices import price_of
from agentform.operators.base import BaseOperator, OperatorContext, ready, register
from agentform.specs.model import SCRIPTED


class ModelOperator(BaseOperator):
    kind = "Model"

    def provision(self, ctx: OperatorContext, desired):
        spec = desired.resource.spec
        key = f"{desired.key.namespace}/{desired.key.name}"  # a graph key
        if key in ctx.priced_models and price_of(spec) is None:
            return ready("PricingUnknown",
                         f"no price known for '{spec.model}' and a maxCostUsd budget depends on it; "
                         "set spec.pricing (runs with such a budget refuse to start)")
        if spec.model == SCRIPTED:
            turns = sum(len(t) for t in desired.resolved.get("script", {}).get("agents", {}).values())
            return ready("ScriptLoaded", f"scripted model with {turns} turns pinned in this revision")
        return ready("Configured", f"litellm model {spec.model}")


register(ModelOperator())
