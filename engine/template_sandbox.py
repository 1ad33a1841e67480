"""The sandboxed Jinja2 environment with the render budget wired in (``template_budget``).

Jinja's ``ImmutableSandboxedEnvironment`` blocks escapes. This subclass also puts every
place where a template can build something behind the budget: binary operators and calls
(overridden ``call_binop``, ``call``), ``~``, block buffers and loop iterations (a code
generator subclass), printed values (``finalize``), the risky builtin methods of strings
(swapped at attribute access, where Jinja already swaps ``str.format``), and the filters
and globals (``template_filters``).
"""

from __future__ import annotations

import functools
import types
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.runtime import markup_join
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)

from agentform.engine import template_budget as tb
from agentform.engine.template_budget import OverBudget

__all__ = ["make_environment"]

_BUILTIN_METHOD = type("".join)


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
        # Every iteration is a checkpoint, even of a loop whose body builds nothing.
        wrapped = isinstance(node.iter, nodes.Call) and isinstance(node.iter.node, nodes.EnvironmentAttribute)
        if not wrapped:
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


def make_environment() -> _Environment:
    from agentform.engine import template_filters

    env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                       finalize=_finalize)
    template_filters.install(env)
    return env
