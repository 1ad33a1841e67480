"""Jinja2 templates and expressions of manifests (CONTRACT section 7), sandboxed and bounded.

One ``ImmutableSandboxedEnvironment`` with ``StrictUndefined`` renders every templated
field at run time and checks syntax at validate time. The sandbox blocks the known
escapes; resource exhaustion is stopped by one budget per render (``template_budget``:
output size, size of any value built, CPU time), enforced inside the sandbox: operators,
calls, filters, risky ``str`` methods, ``~``, block buffers and loop iterations all pass a
checkpoint. Text from a model or a tool is never rendered as a template: callers pass it
in the context only.
"""

from __future__ import annotations

import functools
import re
import types
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, optimizeconst
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.exceptions import TemplateError as _JinjaTemplateError
from jinja2.runtime import markup_join
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)

from agentform.engine import template_budget as tb
from agentform.engine import template_settings
from agentform.engine.errors import RunError
from agentform.engine.template_budget import OverBudget
from agentform.engine.template_settings import Limits

_WRAPPED = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)
_BUILTIN_METHOD = type("".join)


class TemplateError(RunError):
    """A template or expression could not be parsed or rendered; the message says why."""


class _Buffer(list):
    """The output of a block, macro or ``{% set %}`` capture, counted as it grows."""

    __slots__ = ("size",)

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def append(self, text: str) -> None:
        # The texts were counted when they were built (or are the template's own text):
        # what grows here is the block's size.
        self.size += len(text)
        budget = tb.current()
        budget.tick()
        if self.size > budget.max_value:
            budget.need(self.size, "the output of a block")
        super().append(text)

    def extend(self, texts) -> None:  # type: ignore[override]
        for text in texts:
            self.append(text)


class _CodeGenerator(CodeGenerator):
    """Routes block buffers, ``~`` and loop iterations through the budget."""

    def buffer(self, frame) -> None:  # type: ignore[override]
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.af_buffer()")

    @optimizeconst
    def visit_Concat(self, node, frame) -> None:  # type: ignore[override]
        self.write("environment.af_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        # Inside {% autoescape %} blocks, '~' escapes its parts as Jinja's markup_join does.
        if frame.eval_ctx.volatile:
            self.write("), context.eval_ctx.autoescape)")
        else:
            self.write(f"), {bool(frame.eval_ctx.autoescape)})")

    def visit_For(self, node, frame) -> None:  # type: ignore[override]
        node.iter = nodes.Call(nodes.EnvironmentAttribute("af_iter"), [node.iter], [], None, None)
        super().visit_For(node, frame)


class _BoundedFormatting:
    """``str.format`` fields, checked (width, precision, the value's text) before they are built."""

    budget: tb.Budget
    total = 0

    def format_field(self, value: Any, spec: str) -> Any:
        budget = self.budget
        size = len(value) if isinstance(value, str) else budget.text_size(value)
        budget.need(size + tb.spec_size(spec), "a field of format()")
        out = super().format_field(value, spec)  # type: ignore[misc]
        self.total += len(out)
        budget.need(self.total, "the result of format()")
        budget.tick()
        return out

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None and not isinstance(value, str):
            self.budget.need(self.budget.text_size(value), "a field of format()")
        return super().convert_field(value, conversion)  # type: ignore[misc]


class _Formatter(_BoundedFormatting, SandboxedFormatter):
    pass


class _EscapeFormatter(_BoundedFormatting, SandboxedEscapeFormatter):
    pass


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(["+", "-", "*", "/", "//", "%", "**"])
    code_generator_class = _CodeGenerator

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = tb.current()
        if operator == "*":
            seq, n = (left, right) if type(right) in (int, bool) else (right, left)
            if isinstance(seq, (str, bytes, list, tuple)) and type(n) in (int, bool):
                budget.need(len(seq) * n * (1 if isinstance(seq, (str, bytes)) else 8), "the result of '*'")
        elif operator == "+":
            if isinstance(left, (str, bytes, list, tuple)) and isinstance(right, (str, bytes, list, tuple)):
                unit = 1 if isinstance(left, (str, bytes)) else 8
                budget.need((len(left) + len(right)) * unit, "the result of '+'")
        elif operator == "%" and isinstance(left, str):
            budget.need(tb.percent_size(budget, left, right), "the result of '%'")
        if tb.int_result_bits(operator, left, right) > tb.MAX_INT_BITS:
            raise OverBudget(f"the result of '{operator}' would be an integer of more than "
                             f"{tb.MAX_INT_BITS} bits")
        return budget.value(self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = tb.current()
        budget.tick()
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        return budget.value(__context.call(__obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Any:
        # Called on every attribute the sandbox hands out: the one place to swap the
        # risky builtin methods (padding, replace, join, split, format...) for checked ones.
        kind = type(value)
        if kind is not _BUILTIN_METHOD and kind is not types.MethodType:  # Markup's are Python methods
            return None
        return _guarded_method(self, value)

    # -- called by the generated code --------------------------------------------------------------
    def af_iter(self, iterable: Any):
        budget = tb.current()
        for item in iterable:
            budget.tick()
            yield item

    def af_concat(self, parts: tuple, autoescape: bool = False) -> str:
        budget = tb.current()
        texts = [p if type(p) is str else budget.text(p) for p in parts]
        budget.need(sum(map(len, texts)), "the result of '~'")
        if autoescape:
            return budget.value(markup_join(parts))
        return budget.value("".join(texts))

    af_buffer = _Buffer


def _finalize(value: Any) -> Any:
    # Every {{ }} goes through here before str(): containers are measured before printing.
    if type(value) is str or isinstance(value, StrictUndefined):
        return value
    return tb.current().text(value)


# -- risky builtin methods -------------------------------------------------------------------------
def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _padded(budget: tb.Budget, owner: Any, args: tuple, kwargs: dict) -> None:
    width = _arg(args, kwargs, 0, "width", 0)
    if isinstance(width, int):
        budget.need(max(len(owner), width), "a padded string")


def _tabs(budget: tb.Budget, owner: Any, args: tuple, kwargs: dict) -> None:
    size = _arg(args, kwargs, 0, "tabsize", 8)
    if isinstance(size, int):
        budget.need(len(owner) + owner.count(b"\t" if isinstance(owner, bytes) else "\t") * max(size, 0),
                    "the result of expandtabs()")


def _replace(budget: tb.Budget, owner: Any, args: tuple, kwargs: dict) -> None:
    budget.need(tb.replaced_size(owner, _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", ""),
                                 _arg(args, kwargs, 2, "count", -1)), "the result of replace()")


def _split(budget: tb.Budget, owner: Any, args: tuple, kwargs: dict) -> None:
    sep = _arg(args, kwargs, 0, "sep", None)
    parts = owner.count(sep) + 1 if sep else len(owner) // 2 + 1
    budget.need(parts * 8, "the list of split()")


def _splitlines(budget: tb.Budget, owner: Any, args: tuple, kwargs: dict) -> None:
    if len(owner) * 8 > budget.max_value:
        marks = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029" if isinstance(owner, str) else "\n\r"
        breaks = sum(owner.count(m if isinstance(owner, str) else m.encode()) for m in marks)
        budget.need((breaks + 1) * 8, "the list of splitlines()")


def _translate(budget: tb.Budget, owner: Any, args: tuple, kwargs: dict) -> None:
    table = _arg(args, kwargs, 0, "table", None)
    longest = 1
    if isinstance(table, dict):
        longest = max([len(v) for v in table.values() if isinstance(v, (str, bytes))] + [1])
    budget.need(len(owner) * longest, "the result of translate()")


_STR_CHECKS = {
    "center": _padded, "ljust": _padded, "rjust": _padded, "zfill": _padded, "expandtabs": _tabs,
    "replace": _replace, "split": _split, "rsplit": _split, "splitlines": _splitlines,
    "translate": _translate,
}


def _guarded_method(env: _Environment, method: Any) -> Any:
    owner, name = method.__self__, method.__name__
    if isinstance(owner, (str, bytes)):
        if name in ("format", "format_map") and isinstance(owner, str):
            return _bounded_format(env, owner, method)
        if name == "join":
            return functools.update_wrapper(functools.partial(_join_method, method), method)
        check = _STR_CHECKS.get(name)
    elif name == "to_bytes" and isinstance(owner, int):
        check = _to_bytes
    elif name == "fromkeys" and (owner is dict or isinstance(owner, dict)):
        return functools.update_wrapper(functools.partial(_fromkeys, method), method)
    else:
        return None
    if check is None:
        return None

    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = tb.current()
        check(budget, owner, args, kwargs)
        return budget.value(method(*args, **kwargs))

    return functools.update_wrapper(guarded, method)


def _to_bytes(budget: tb.Budget, owner: Any, args: tuple, kwargs: dict) -> None:
    length = _arg(args, kwargs, 0, "length", 1)
    if isinstance(length, int):
        budget.need(length, "the result of to_bytes()")


def _join_method(method: Any, iterable: Any) -> Any:
    budget = tb.current()
    items = budget.collect(iterable) if not isinstance(iterable, (list, tuple)) else iterable
    size = sum(len(i) for i in items if isinstance(i, (str, bytes))) + len(method.__self__) * max(len(items) - 1, 0)
    budget.need(size, "the result of join()")
    return budget.value(method(items))


def _fromkeys(method: Any, iterable: Any, value: Any = None) -> Any:
    budget = tb.current()
    keys = budget.collect(iterable) if not isinstance(iterable, (list, tuple, str)) else iterable
    budget.need(len(keys) * 64, "the dict of fromkeys()")
    return budget.value(method(keys, value))


def _bounded_format(env: _Environment, owner: str, method: Any) -> Any:
    from markupsafe import Markup

    is_map = method.__name__ == "format_map"

    def wrapper(*args: Any, **kwargs: Any) -> str:
        if is_map:
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one argument")
            args, kwargs = (), args[0]
        formatter = _EscapeFormatter(env, escape=owner.escape) if isinstance(owner, Markup) else _Formatter(env)
        formatter.budget = tb.current()
        return type(owner)(formatter.vformat(owner, args, kwargs))

    return functools.update_wrapper(wrapper, method)


def _make_env() -> _Environment:
    from agentform.engine import template_filters

    env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                       finalize=_finalize)
    template_filters.install(env)
    return env


_ENV: _Environment | None = None


def environment() -> _Environment:
    """The shared sandboxed environment (built on first use)."""
    global _ENV
    if _ENV is None:
        _ENV = _make_env()
    return _ENV


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
    "Limits", "TemplateError", "budget_error", "check_syntax", "configure", "configure_from_home",
    "environment", "evaluate", "expression_error", "limits_from_config", "parse",
    "parse_expression", "referenced", "referenced_expression", "render", "strip_wrapper",
    "syntax_error", "undeclared",
]
