"""What a finished (or parked) run returns to its caller: the CLI, the Python API, approvals."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

EXIT_CODES = {"succeeded": 0, "failed": 1, "waiting": 3, "cancelled": 4}


@dataclass
class RunResult:
    """A run's id, status and output, with its totals; ``exit_code`` is what ``run`` exits with."""

    id: str
    status: str
    output: Any = None
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    exit_code: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
