"""The run executor: agent loop, teams, budgets, pipelines; see runner.start_run / resume_run."""

from __future__ import annotations

from typing import Any

__all__ = ["RunResult", "RunContext", "RunWaiting"]


def __getattr__(name: str) -> Any:
    if name == "RunResult":
        from .result import RunResult

        return RunResult
    if name in ("RunContext", "RunWaiting"):
        from . import context

        return getattr(context, name)
    raise AttributeError(name)
