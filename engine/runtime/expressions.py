"""The expression side of pipelines: template context, status functions, native values.

Templates themselves (sandbox, caps, errors) are ``agentform.engine.templates``; this
module only decides what a pipeline's templates see and how their values are used.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from jinja2.exceptions import TemplateError as _JinjaError

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
        return evaluate(source, context)
    return render(source, context)


# Adapter: ``templates.render``/``evaluate`` compile their source on every call, which was
# most of a pipeline's per-stage cost (bench/pipeline.py). Until they cache compiled
# templates themselves, these keep one compiled template per source and render it under
# the same sandbox, work budget, output cap and error messages.
_ERRORS = (_JinjaError, ArithmeticError, TypeError, ValueError, LookupError, AttributeError)


@functools.lru_cache(maxsize=2048)
def _template(source: str) -> Any:
    return templates.environment().from_string(source)


@functools.lru_cache(maxsize=2048)
def _expression(expression: str) -> Any:
    return templates.environment().compile_expression(
        templates.strip_wrapper(expression), undefined_to_none=False)


def render(source: str, context: dict[str, Any]) -> str:
    """``templates.render`` with the compiled template cached per source."""
    if "{" not in source:
        return source
    try:
        template = _template(source)
    except _ERRORS:
        return templates.render(source, context)  # raises the sandbox's own syntax error
    limit = templates.MAX_CHARS
    token = templates._work.set(templates._Work(templates.MAX_ITERATIONS, limit))
    try:
        parts, total = [], 0
        for chunk in template.generate(**context):
            total += len(chunk)
            if total > limit:
                raise templates.TemplateError(f"template output too large (over {limit} characters)")
            parts.append(chunk)
        return "".join(parts)
    except templates.TemplateError:
        raise
    except _ERRORS as exc:
        raise templates.TemplateError(f"template error: {templates._explain(exc)}") from exc
    finally:
        templates._work.reset(token)


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """``templates.evaluate`` with the compiled expression cached per source."""
    try:
        compiled = _expression(expression)
    except _ERRORS:
        return templates.evaluate(expression, context)
    token = templates._work.set(templates._Work(templates.MAX_ITERATIONS, templates.MAX_CHARS))
    try:
        return compiled(**context)
    except _ERRORS as exc:
        raise templates.TemplateError(
            f"expression error in '{expression}': {templates._explain(exc)}") from exc
    finally:
        templates._work.reset(token)


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
