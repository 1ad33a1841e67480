"""Jinja2 templates and expressions of manifests (CONTRACT section 7), sandboxed and bounded.

One ``ImmutableSandboxedEnvironment`` with ``StrictUndefined`` renders every templated
field at run time and checks syntax at validate time. The sandbox blocks the known
escapes but not resource exhaustion, so we also bound output size, the size of strings
and lists built by operators and padding filters, and the number of loop iterations
(every ``for`` loop's iterable is wrapped at compile time). Text from a model or a tool
is never rendered as a template: callers pass it in the context only.
"""

from __future__ import annotations

import contextvars
import functools
import re
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.exceptions import TemplateError as _JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agentform.engine.errors import RunError

MAX_CHARS = 200_000
MAX_ITERATIONS = 1_000_000
_WRAPPED = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)


class TemplateError(RunError):
    """A template or expression could not be parsed or rendered; the message says why."""


class _Work:
    __slots__ = ("left", "max_chars")

    def __init__(self, iterations: int, max_chars: int):
        self.left = iterations
        self.max_chars = max_chars

    def spend(self, n: int = 1) -> None:
        self.left -= n
        if self.left < 0:
            raise SecurityError(f"template does too much work (over {MAX_ITERATIONS} loop steps)")


_work: contextvars.ContextVar[_Work | None] = contextvars.ContextVar("agentform_template_work", default=None)


def _current() -> _Work:
    work = _work.get()
    return work if work is not None else _Work(MAX_ITERATIONS, MAX_CHARS)


def _bounded_iter(iterable: Any):
    work = _current()
    for item in iterable:
        work.spend()
        yield item


def _bounded_range(*args: int):
    rng = range(*args)
    if len(rng) > MAX_ITERATIONS:
        raise SecurityError(f"range too large (over {MAX_ITERATIONS} items)")
    return _bounded_iter(rng)


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple, bytes)) else None


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(["*", "+", "%", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limit = _current().max_chars
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if _size(seq) is not None and isinstance(n, int) and _size(seq) * n > limit:
                    raise SecurityError(f"result of '*' too large (over {limit} items)")
        elif operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 1000:
                raise SecurityError("exponent too large")
        elif operator == "+":
            if _size(left) is not None and _size(right) is not None and _size(left) + _size(right) > limit:
                raise SecurityError(f"result of '+' too large (over {limit} items)")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, limit)
        return super().call_binop(context, operator, left, right)

    def _generate(self, source, name, filename, defer_init=False):  # type: ignore[override]
        # Every for loop iterates through _af_iter, which counts steps against the budget.
        if isinstance(source, nodes.Template):
            for loop in source.find_all(nodes.For):
                loop.iter = nodes.Call(nodes.Name("_af_iter", "load"), [loop.iter], [], None, None)
        return super()._generate(source, name, filename, defer_init)


def _check_format(fmt: str, limit: int) -> None:
    for width in re.findall(r"%[-#0 +]*(\d+)", fmt) + re.findall(r"\.(\d+)", fmt):
        if int(width) > limit:
            raise SecurityError("format width too large")


def _capped_filter(original):
    def wrapper(value: Any, width: Any = 80, *args: Any, **kwargs: Any) -> Any:
        if isinstance(width, int) and width > _current().max_chars:
            raise SecurityError("filter width too large")
        return original(value, width, *args, **kwargs)

    return wrapper


def _make_env() -> _Environment:
    env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals["range"] = _bounded_range
    env.globals["_af_iter"] = _bounded_iter
    for name in ("center", "indent", "wordwrap", "truncate"):
        env.filters[name] = _capped_filter(env.filters[name])
    original_format = env.filters["format"]

    def _format(value: Any, *args: Any, **kwargs: Any) -> str:
        _check_format(str(value), _current().max_chars)
        return original_format(value, *args, **kwargs)

    env.filters["format"] = _format
    return env


_ENV: _Environment | None = None


def environment() -> _Environment:
    """The shared sandboxed environment (built on first use)."""
    global _ENV
    if _ENV is None:
        _ENV = _make_env()
    return _ENV


def strip_wrapper(expression: str) -> str:
    """An expression without its optional ``{{ }}`` wrapper."""
    match = _WRAPPED.match(expression)
    return match.group(1).strip() if match and "{{" not in match.group(1) else expression.strip()


def _explain(exc: Exception) -> str:
    if isinstance(exc, UndefinedError):
        return f"undefined name: {exc.message}"
    if isinstance(exc, TemplateSyntaxError):
        return f"line {exc.lineno}: {exc.message}"
    return str(exc) or type(exc).__name__


@functools.lru_cache(maxsize=2048)
def _compiled(source: str) -> Any:
    return environment().from_string(source)


@functools.lru_cache(maxsize=2048)
def _compiled_expression(expression: str) -> Any:
    return environment().compile_expression(strip_wrapper(expression), undefined_to_none=False)


def render(source: str, context: dict, *, max_chars: int = MAX_CHARS) -> str:
    """Render a template with ``context``; raises TemplateError (undefined names, limits).

    Compiled templates are cached per source, so rendering the same field again is cheap.
    """
    if "{" not in source:
        if len(source) > max_chars:
            raise TemplateError(f"template output too large (over {max_chars} characters)")
        return source
    token = _work.set(_Work(MAX_ITERATIONS, max_chars))
    try:
        template = _compiled(source)
        parts: list[str] = []
        total = 0
        for chunk in template.generate(**context):
            total += len(chunk)
            if total > max_chars:
                raise TemplateError(f"template output too large (over {max_chars} characters)")
            parts.append(chunk)
        return "".join(parts)
    except TemplateError:
        raise
    except (_JinjaTemplateError, ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:
        raise TemplateError(f"template error: {_explain(exc)}") from exc
    finally:
        _work.reset(token)


def evaluate(expression: str, context: dict) -> Any:
    """The native value of an expression (``when``, ``forEach``); ``{{ }}`` is optional."""
    token = _work.set(_Work(MAX_ITERATIONS, MAX_CHARS))
    try:
        return _compiled_expression(expression)(**context)
    except (_JinjaTemplateError, ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:
        raise TemplateError(f"expression error in '{expression}': {_explain(exc)}") from exc
    finally:
        _work.reset(token)


@functools.lru_cache(maxsize=4096)
def parse(source: str) -> nodes.Template:
    """The AST of a template (cached: validate reads each template several times)."""
    return environment().parse(source)


@functools.lru_cache(maxsize=4096)
def parse_expression(expression: str) -> nodes.Expr:
    """The AST of an expression, ``{{ }}`` optional; TemplateSyntaxError when malformed."""
    from jinja2.parser import Parser

    parser = Parser(environment(), strip_wrapper(expression), state="variable")
    node = parser.parse_expression()
    if not parser.stream.eos:
        token = parser.stream.current
        raise TemplateSyntaxError(f"unexpected '{token.value}' after the expression", token.lineno)
    return node


def syntax_error(source: str) -> tuple[int, str] | None:
    """(1-based line inside the template, message) of a syntax error, or None."""
    if "{" not in source:
        return None
    try:
        parse(source)
    except TemplateSyntaxError as exc:
        return (exc.lineno or 1, exc.message or "syntax error")
    return None


def check_syntax(source: str) -> str | None:
    """The syntax error of a template as a message, or None when it parses."""
    error = syntax_error(source)
    return None if error is None else f"line {error[0]}: {error[1]}"


def expression_error(expression: str) -> str | None:
    """The syntax error of an expression (``when``, ``forEach``), or None."""
    try:
        parse_expression(expression)
    except TemplateSyntaxError as exc:
        return exc.message or "syntax error"
    return None


def _dotted(node: nodes.Node) -> str | None:
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            parts.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            parts.append(node.name)
            return ".".join(reversed(parts))
        else:
            return None


def referenced(source: str) -> set[str]:
    """Dotted names a template reads, longest form: ``params.topic``, ``stages.research.output``."""
    if "{" not in source:
        return set()
    try:
        tree = parse(source)
    except TemplateSyntaxError:
        return set()
    return _names_in(tree)


def referenced_expression(expression: str) -> set[str]:
    """Dotted names an expression reads (``{{ }}`` optional)."""
    try:
        tree = parse_expression(expression)
    except TemplateSyntaxError:
        return set()
    return _names_in(tree)


def undeclared(tree: nodes.Node) -> set[str]:
    """Top-level names a template or expression reads without setting them itself."""
    stored = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    loaded = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}
    return loaded - stored - {"loop"}


def _names_in(tree: nodes.Node) -> set[str]:
    found: set[str] = set()
    inner: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if id(node) in inner:
            continue
        dotted = _dotted(node)
        if dotted is None or (isinstance(node, nodes.Name) and node.ctx != "load"):
            continue
        # Mark the chain below this node so that only its longest form is kept.
        child = node
        while isinstance(child, (nodes.Getattr, nodes.Getitem)):
            child = child.node
            inner.add(id(child))
        found.add(dotted)
    return found


__all__ = [
    "TemplateError", "check_syntax", "environment", "evaluate", "expression_error", "parse",
    "parse_expression", "referenced", "referenced_expression", "render", "strip_wrapper",
    "syntax_error", "undeclared",
]
