"""A Model's prices: its ``pricing`` override, else litellm's bundled price table.

The table is read as a JSON file from litellm's installed folder, without importing
litellm (which takes seconds and reaches the network on import).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from agentform.specs.model import SCRIPTED, ModelSpec

TABLE_FILE = "model_prices_and_context_window_backup.json"


@dataclass(frozen=True)
class Price:
    """USD per million tokens, and where the figure came from (``pricing``, ``litellm``, ``scripted``)."""

    input_per_m_tok: float
    output_per_m_tok: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"inputPerMTok": self.input_per_m_tok, "outputPerMTok": self.output_per_m_tok,
                "source": self.source}

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_per_m_tok + tokens_out * self.output_per_m_tok) / 1e6


def price_of(spec: ModelSpec) -> Price | None:
    """The model's price, or None when neither ``pricing`` nor litellm's table knows it."""
    if spec.pricing is not None:
        return Price(spec.pricing.input_per_m_tok, spec.pricing.output_per_m_tok, "pricing")
    if spec.model == SCRIPTED:  # CONTRACT 7: a scripted model without pricing costs 0
        return Price(0.0, 0.0, "scripted")
    entry = lookup(spec.model)
    if entry is None:
        return None
    return Price(entry["input_cost_per_token"] * 1e6, entry["output_cost_per_token"] * 1e6, "litellm")


def lookup(model: str) -> dict[str, Any] | None:
    """The table entry for a litellm model string (``openai/gpt-4o-mini`` or ``gpt-4o-mini``)."""
    table = price_table()
    candidates = [model]
    if "/" in model:
        candidates.append(model.split("/", 1)[1])
    for name in candidates:
        entry = table.get(name)
        if isinstance(entry, dict) and "input_cost_per_token" in entry and "output_cost_per_token" in entry:
            return entry
    return None


def table_path() -> Path | None:
    """Where litellm's bundled price table is, or None when litellm is not installed."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / TABLE_FILE
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=1)
def price_table() -> dict[str, Any]:
    """litellm's price table (empty when litellm or the file is missing)."""
    path = table_path()
    if path is None:
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
