"""The expression side of pipelines: template context, status functions, native values.

Templates themselves (sandbox, caps, errors) are ``agentform.engine.templates``; this
module only decides what a pipeline's templates see and how their values are used.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2 import Undefined

from agentform.engine import templates
from agentform.engine.templates import render

__all__ = ["as_text", "evaluate", "render", "render_value", "status_functions", "truthy",
           "uses_status_function"]

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


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """``templates.evaluate``, except that an undefined result is an error here, not a value.

    A compiled expression returns StrictUndefined for ``text.missing`` instead of raising;
    used later (``when``, an event's data) it would fail outside any error handling.
    """
    value = templates.evaluate(expression, context)
    if isinstance(value, Undefined):
        raise templates.TemplateError(
            f"expression error in '{expression}': undefined name: {value._undefined_message}")
    return value


def render_value(source: str, context: dict[str, Any]) -> Any:
    """A lone ``{{ expr }}`` gives its native value (data stays data); else rendered text."""
    match = _SINGLE_EXPRESSION.match(source)
    if match and "{{" not in match["body"] and "{%" not in source and "{#" not in source:
        return evaluate(source, context)
    return render(source, context)


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
