"""agentform: a declarative GitOps engine for teams of LLM agents.

The public Python API. Heavy parts import lazily so that ``import agentform`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Engine", "RunResult", "__version__"]

if TYPE_CHECKING:
    from agentform.engine.api import Engine, RunResult


def __getattr__(name: str) -> Any:
    if name in ("Engine", "RunResult"):
        from agentform.engine import api

        return getattr(api, name)
    raise AttributeError(f"module 'agentform' has no attribute {name!r}")
