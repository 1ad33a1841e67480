"""The expression side of pipelines: template context, status functions, native values.

Templates themselves (sandbox, caps, errors) are ``agentform.engine.templates``; this
module only decides what a pipeline's templates see and how their values are used.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentform.engine import templates

# GitHub Actions: a `when` that calls one of these decides for itself whether the stage
# runs after a failed or skipped need; any other `when` implies success().
_STATUS_FUNCTION = re.compile(r"\b(always|success|failure)\s*\(")
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<body>.*?)\}\}\s*$", re.S)


def uses_status_function(expression: str | None) -> bool:
    """Whether ``expression`` calls always(), success() or failure()."""
    return bool(expression) and _STATUS_FUNCTION.search(expression) is not None


def status_functions(need_statuses: list[str]) -> dict[str, Any]:
    """always/success/failure bound to the statuses of one stage's needs."""
    return {
        "always": lambda: True,
        "success": lambda: all(s == "succeeded" for s in need_statuses),
        "failure": lambda: any(s == "failed" for s in need_statuses),
    }


def render_value(source: str, context: dict[str, Any]) -> Any:
    """A lone ``{{ expr }}`` gives its native value (data stays data); else rendered text."""
    match = _SINGLE_EXPRESSION.match(source)
    if match and "{{" not in match["body"] and "{%" not in source and "{#" not in source:
        return templates.evaluate(source, context)
    return templates.render(source, context)


def as_text(value: Any) -> str:
    """A value as a task or message text: strings as they are, data as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=str)


def truthy(value: Any) -> bool:
    """A condition's result: Python truth, except that the text 'false' (any case) is false."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "none", "null")
    return bool(value)
