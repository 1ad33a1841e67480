"""Jinja2 templates and expressions of manifests (CONTRACT section 7), sandboxed and bounded.

One sandboxed environment with ``StrictUndefined`` (``template_sandbox``) renders every
templated field at run time and checks syntax at validate time. The sandbox blocks the
known escapes; resource exhaustion is stopped by one budget per render
(``template_budget``: output size, size of any value built, CPU time; settings in
``template_settings``), enforced inside the sandbox. Text from a model or a tool is never
rendered as a template: callers pass it in the context only.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import TemplateError as _JinjaTemplateError
from jinja2.exceptions import UndefinedError

from agentform.engine import template_budget as tb
from agentform.engine import template_settings
from agentform.engine.errors import RunError
from agentform.engine.template_budget import OverBudget
from agentform.engine.template_settings import Limits

_WRAPPED = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)


class TemplateError(RunError):
    """A template or expression could not be parsed or rendered; the message says why."""


_ENV: Any = None


def environment() -> Any:
    """The shared sandboxed environment (built on first use)."""
    global _ENV
    if _ENV is None:
        from agentform.engine.template_sandbox import make_environment

        _ENV = make_environment()
    return _ENV


class _Absent(ChainableUndefined, StrictUndefined):
    """Not there (yet): its attributes are absent too, so ``x.a.b | default(...)`` works at any
    depth, while rendering, testing or iterating it is an error saying why."""

    __slots__ = ()


def absent(hint: str) -> Any:
    """A context value that is not set yet (``loop.previous.<stage>.output`` on a first visit):
    ``| default(...)`` and ``is defined`` see it as undefined; any other use fails with ``hint``."""
    return _Absent(hint=hint)


# -- settings --------------------------------------------------------------------------------------
def configure(limits: Limits | None) -> None:
    """Set the budget of every render in this process (None: the home's ``config.yaml`` again)."""
    template_settings.configure(limits)


def configure_from_home(home: str | Path) -> Limits:
    """Take the budget from ``<home>/config.yaml`` (``templates:`` section) and return it."""
    template_settings.use_home(home)
    return template_settings.current()


limits_from_config = template_settings.read


# -- rendering -------------------------------------------------------------------------------------
def strip_wrapper(expression: str) -> str:
    """An expression without its optional ``{{ }}`` wrapper."""
    match = _WRAPPED.match(expression)
    return match.group(1).strip() if match and "{{" not in match.group(1) else expression.strip()


def _template_line(exc: BaseException) -> int | None:
    """The line inside the template where ``exc`` was raised (Jinja rewrites its traceback)."""
    line = None
    tb_ = exc.__traceback__
    while tb_ is not None:
        if tb_.tb_frame.f_code.co_filename == "<template>":
            line = tb_.tb_lineno
        tb_ = tb_.tb_next
    return line


def _explain(exc: BaseException, *, lines: bool = True) -> str:
    if isinstance(exc, UndefinedError):
        return f"undefined name: {exc.message}"
    if isinstance(exc, TemplateSyntaxError):
        return f"line {exc.lineno}: {exc.message}"
    if isinstance(exc, OverBudget):
        # An expression is one line, and its compiled form has no template line numbers.
        line = _template_line(exc) if lines else None
        return f"over budget{f' at line {line}' if line else ''}: {exc}"
    if isinstance(exc, RecursionError):
        return "recursion too deep (a macro or a recursive loop calls itself without end)"
    if isinstance(exc, MemoryError):
        return "out of memory"
    return str(exc) or type(exc).__name__


_CAUGHT = (_JinjaTemplateError, ArithmeticError, TypeError, ValueError, LookupError, AttributeError,
           RecursionError, MemoryError)


@functools.lru_cache(maxsize=2048)
def _compiled(source: str) -> Any:
    return environment().from_string(source)


@functools.lru_cache(maxsize=2048)
def _compiled_expression(expression: str) -> Any:
    return environment().compile_expression(strip_wrapper(expression), undefined_to_none=False)


def render(source: str, context: dict, *, max_chars: int | None = None, limits: Limits | None = None) -> str:
    """Render a template with ``context``; raises TemplateError (undefined names, budget).

    Compiled templates are cached per source, so rendering the same field again is cheap.
    """
    limits = limits or tb.configured()
    max_output = limits.max_output if max_chars is None else max_chars
    if "{" not in source:
        if len(source) > max_output:
            raise TemplateError(f"template output too large (over {max_output:,} characters, templates.maxOutput)")
        return source
    token = tb.start(limits)
    try:
        template = _compiled(source)
        parts: list[str] = []
        total = 0
        for chunk in template.generate(**context):
            total += len(chunk)
            if total > max_output:
                raise TemplateError(f"template output too large (over {max_output:,} characters, "
                                    "templates.maxOutput)")
            parts.append(chunk)
        return "".join(parts)
    except TemplateError:
        raise
    except _CAUGHT as exc:
        raise TemplateError(f"template error: {_explain(exc)}") from exc
    finally:
        tb.stop(token)


def evaluate(expression: str, context: dict, *, limits: Limits | None = None) -> Any:
    """The native value of an expression (``when``, ``forEach``); ``{{ }}`` is optional."""
    token = tb.start(limits or tb.configured())
    try:
        return _compiled_expression(expression)(**context)
    except _CAUGHT as exc:
        raise TemplateError(f"expression error in '{expression}': {_explain(exc, lines=False)}") from exc
    finally:
        tb.stop(token)


# Nodes through which a template can spend its budget before it reads any run context.
_COSTLY = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.Call, nodes.Mul, nodes.Pow,
           nodes.Mod, nodes.Add, nodes.Concat)


def _may_exhaust(tree: nodes.Node) -> bool:
    for node in tree.find_all(_COSTLY + (nodes.Filter,)):
        if not isinstance(node, nodes.Filter) or node.args or node.kwargs:
            return True
    return False


def budget_error(source: str, *, expression: bool = False) -> tuple[int, str] | None:
    """(line inside the template, message) when rendering goes over the budget whatever the
    run's context holds, else None: what validate can know statically.

    Only templates with loops, calls, operators or filter arguments are tried (compiling
    costs about a millisecond).
    """
    if (not expression and "{" not in source) or not any(c in source for c in "(*%+~"):
        return None  # no call, block, filter argument or operator: nothing can grow
    try:
        tree = parse_expression(source) if expression else parse(source)
    except TemplateSyntaxError:
        return None
    if not _may_exhaust(tree):
        return None
    from jinja2 import ChainableUndefined

    # The run's names stand in as values that print as '' and chain (a.b.c), so rendering
    # reaches what follows them; any arithmetic on them ends the check instead.
    unknown = {name: ChainableUndefined(name=name) for name in undeclared(tree) - set(environment().globals)}
    token = tb.start(tb.configured())
    try:
        if expression:
            _compiled_expression(source)(**unknown)
        else:
            for _ in _compiled(source).generate(**unknown):
                pass
    except (OverBudget, RecursionError, MemoryError) as exc:
        message = str(exc) if isinstance(exc, OverBudget) else _explain(exc)
        return ((None if expression else _template_line(exc)) or 1, message)
    except Exception:  # noqa: BLE001 - anything else needs the run's context to be judged
        return None
    finally:
        tb.stop(token)
    return None


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


_GUARDS = frozenset({"default", "d"})
_GUARD_TESTS = frozenset({"defined", "undefined"})


def required(source: str) -> set[str]:
    """Dotted names a template reads outside a ``| default(...)`` or an ``is defined`` test: the
    ones that must exist when it renders."""
    if "{" not in source:
        return set()
    try:
        tree = parse(source)
    except TemplateSyntaxError:
        return set()
    guarded: set[int] = set()
    tested: set[str] = set()   # ``{% if x is defined %}{{ x }}{% endif %}``: x is guarded everywhere
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        names = _GUARDS if isinstance(node, nodes.Filter) else _GUARD_TESTS
        if node.name in names and node.node is not None:
            guarded.add(id(node.node))
            if isinstance(node, nodes.Test):
                tested.add(_dotted(node.node) or "")
    return {name for name in _names_in(tree, guarded) if name not in tested}


def loop_references(source: str, *, expression: bool = False) -> set[str]:
    """Dotted names under ``loop`` (a pipeline stage's loop feedback) a template reads outside
    ``{% for %}`` blocks, where ``loop`` is Jinja's own loop variable."""
    if "loop" not in source:
        return set()
    try:
        tree = parse_expression(source) if expression else parse(source)
    except TemplateSyntaxError:
        return set()
    inside: set[int] = set()
    for block in tree.find_all(nodes.For):
        for part in (*block.body, *block.else_, *([block.test] if block.test is not None else [])):
            inside.update(id(n) for n in part.find_all(nodes.Name))
            if isinstance(part, nodes.Name):
                inside.add(id(part))
    return _names_in(tree, keep=lambda root: root.name == "loop" and id(root) not in inside)


def undeclared(tree: nodes.Node) -> set[str]:
    """Top-level names a template or expression reads without setting them itself."""
    stored: set[str] = {"loop"}
    loaded: set[str] = set()
    for node in tree.find_all((nodes.Name, nodes.Macro, nodes.CallBlock)):
        if isinstance(node, nodes.Name):
            (loaded if node.ctx == "load" else stored).add(node.name)
        else:
            if isinstance(node, nodes.Macro):
                stored.add(node.name)
            stored.update(("caller", "varargs", "kwargs"))  # what Jinja defines inside a macro
    return loaded - stored


def _names_in(tree: nodes.Node, skip: set[int] | None = None, keep: Any = None) -> set[str]:
    """The longest dotted names read in ``tree``, but none of the chains whose outermost node is
    in ``skip``, and only those whose root Name ``keep(root)`` accepts (when given)."""
    found: set[str] = set()
    inner: set[int] = set(skip or ())
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if id(node) in inner:
            if skip and id(node) in skip:   # a guarded chain: skip all of it
                _root(node, inner)
            continue
        dotted = _dotted(node)
        if dotted is None or (isinstance(node, nodes.Name) and node.ctx != "load"):
            continue
        # Mark the chain below this node so that only its longest form is kept.
        root = _root(node, inner)
        if keep is None or keep(root):
            found.add(dotted)
    return found


def _root(node: nodes.Node, inner: set[int]) -> nodes.Node:
    """The node a Getattr/Getitem chain starts from, marking every node below ``node`` as seen."""
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        node = node.node
        inner.add(id(node))
    return node


__all__ = [
    "Limits", "TemplateError", "absent", "budget_error", "check_syntax", "configure", "configure_from_home",
    "environment", "evaluate", "expression_error", "limits_from_config", "loop_references", "parse",
    "parse_expression", "referenced", "referenced_expression", "render", "required", "strip_wrapper",
    "syntax_error", "undeclared",
]
