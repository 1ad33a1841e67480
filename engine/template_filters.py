"""Jinja2's filters and globals, each behind the render budget (``template_budget``).

Every filter counts a tick and measures its result; a lazy input (``map``, ``select``,
``batch``...) is collected item by item first, since the filters would consume it in C;
filters that call ``str()`` on their input get it as text measured beforehand. Filters
whose result can outgrow their input (padding, ``replace``, ``join``, ``indent``,
``format``, ``tojson``, ``batch``...) are checked from their arguments before they run;
``sum``, ``wordcount`` and ``lipsum`` are rewritten with a checkpoint per step.
"""

from __future__ import annotations

import functools
import re
from random import choice, randrange
from typing import Any

from jinja2 import pass_environment, pass_eval_context
from jinja2.filters import make_attrgetter
from markupsafe import Markup

from agentform.engine import template_budget as tb
from agentform.engine.template_budget import OverBudget

# Filters that apply str() to their input.
_TEXT_FILTERS = frozenset([
    "capitalize", "center", "e", "escape", "forceescape", "format", "indent", "lower", "replace",
    "string", "striptags", "title", "trim", "truncate", "upper", "urlize", "wordcount", "wordwrap",
])


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _one_step(budget: tb.Budget, text: str, name: str) -> None:
    # These run as one pure-Python step, out of reach of the CPU checkpoints.
    if len(text) > budget.limits.max_output:
        raise OverBudget(f"{name} accepts at most {budget.limits.max_output:,} characters "
                         f"(templates.maxOutput), got {len(text):,}")


def _center(b: tb.Budget, a: tuple, kw: dict) -> None:
    width = _arg(a, kw, 1, "width", 80)
    if isinstance(width, int):
        b.need(max(len(a[0]), width), "the result of center")


def _indent(b: tb.Budget, a: tuple, kw: dict) -> None:
    width = _arg(a, kw, 1, "width", 4)
    pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    b.need(len(a[0]) + (a[0].count("\n") + 2) * (max(pad, 0) + 1), "the result of indent")


def _wordwrap(b: tb.Budget, a: tuple, kw: dict) -> None:
    _one_step(b, a[0], "wordwrap")
    wrap = _arg(a, kw, 3, "wrapstring", None)
    b.need(len(a[0]) * max(1, len(wrap) if isinstance(wrap, str) else 1), "the result of wordwrap")


def _urlize(b: tb.Budget, a: tuple, kw: dict) -> None:
    _one_step(b, a[0], "urlize")


def _replace(b: tb.Budget, a: tuple, kw: dict) -> None:
    old = b.text(_arg(a, kw, 1, "old", ""))
    new = b.text(_arg(a, kw, 2, "new", ""))
    count = _arg(a, kw, 3, "count", None)
    b.need(tb.replaced_size(a[0], old, new, -1 if count is None else count), "the result of replace")


def _format(b: tb.Budget, a: tuple, kw: dict) -> None:
    b.need(tb.percent_size(b, a[0], kw or tuple(a[1:])), "the result of format")


def _tojson(b: tb.Budget, a: tuple, kw: dict) -> None:
    indent = _arg(a, kw, 1, "indent", None)
    pad = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
    b.need(b.text_size(a[0]) * (1 + max(pad, 0)), "the JSON of a value")


def _pprint(b: tb.Budget, a: tuple, kw: dict) -> None:
    size = b.text_size(a[0])
    if size > b.limits.max_output:
        raise OverBudget(f"pprint accepts values of at most {b.limits.max_output:,} characters "
                         f"(templates.maxOutput), got about {size:,}")


def _batch(b: tb.Budget, a: tuple, kw: dict) -> None:
    count = _arg(a, kw, 1, "linecount", 1)
    if isinstance(count, int):
        b.need(count * 8, "a batch")


def _slice(b: tb.Budget, a: tuple, kw: dict) -> None:
    count = _arg(a, kw, 1, "slices", 1)
    if isinstance(count, int):
        b.need(count * 64, "the slices")


def _as_text_size(b: tb.Budget, a: tuple, kw: dict) -> None:
    b.need(b.text_size(a[0]) * 3, "the text of a value")


def _items(b: tb.Budget, a: tuple, kw: dict) -> None:
    # These build a list of their input's items in C (a string's characters included).
    if hasattr(a[0], "__len__"):
        b.need(len(a[0]) * 8, "a list of the items")


_CHECKS = {
    **{name: _items for name in ("list", "sort", "unique", "groupby", "dictsort", "reverse", "random",
                                 "map", "select", "reject", "selectattr", "rejectattr")},
    "center": _center, "indent": _indent, "wordwrap": _wordwrap, "urlize": _urlize, "replace": _replace,
    "format": _format, "tojson": _tojson, "pprint": _pprint, "batch": _batch, "slice": _slice,
    "xmlattr": _as_text_size, "urlencode": _as_text_size,
}


def _guard(name: str, f: Any) -> Any:
    offset = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0
    as_text = name in _TEXT_FILTERS
    check = _CHECKS.get(name)

    @functools.wraps(f)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = tb.current()
        budget.ticks -= 1
        if budget.ticks <= 0:
            budget.check_cpu()
        if len(args) > offset:
            value = args[offset]
            if type(value) is not str:
                changed = budget.text(value) if as_text else budget.collect(value) if tb.is_lazy(value) else value
                if changed is not value:
                    args = (*args[:offset], changed, *args[offset + 1:])
            if check is not None:
                check(budget, args[offset:], kwargs)
        return budget.value(f(*args, **kwargs))

    return guarded


def _join_filter(original: Any) -> Any:
    @pass_eval_context
    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
        budget = tb.current()
        items = list(value) if not isinstance(value, list) else value
        if attribute is not None:
            getter = make_attrgetter(eval_ctx.environment, attribute)
            items = [getter(item) for item in items]
        size = len(str(d)) * max(len(items) - 1, 0)
        for item in items:
            size += len(item) if isinstance(item, str) else budget.text_size(item)
            if size > budget.max_value:
                break
        budget.need(size, "the result of join")
        return original(eval_ctx, items, d)

    return join


@pass_environment
def _sum(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    total = start
    for item in iterable:
        total = environment.call_binop(None, "+", total, item)
    return total


_WORD = re.compile(r"\w+")


def _wordcount(s: str) -> int:
    budget = tb.current()
    count = 0
    for count, _ in enumerate(_WORD.finditer(s), 1):  # noqa: B007 - the count is the result
        if not count & 1023:
            budget.tick(16)
    return count


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
    """Jinja's lipsum, with a checkpoint per word and its size checked up front."""
    from jinja2.constants import LOREM_IPSUM_WORDS

    budget = tb.current()
    budget.need(n * max * 16, "the text of lipsum")
    words = LOREM_IPSUM_WORDS.split()
    result = []
    for _ in range(n):
        next_capitalized = True
        last_comma = last_fullstop = 0
        last = None
        p = []
        for idx in range(randrange(min, max)):
            budget.tick()
            while True:
                word = choice(words)
                if word != last:
                    last = word
                    break
            if next_capitalized:
                word = word.capitalize()
                next_capitalized = False
            if idx - randrange(3, 8) > last_comma:
                last_comma = idx
                last_fullstop += 2
                word += ","
            if idx - randrange(10, 20) > last_fullstop:
                last_comma = last_fullstop = idx
                word += "."
                next_capitalized = True
            p.append(word)
        text = " ".join(p)
        if text.endswith(","):
            text = text[:-1] + "."
        elif not text.endswith("."):
            text += "."
        result.append(text)
    if not html:
        return "\n\n".join(result)
    return Markup("\n".join(f"<p>{Markup.escape(x)}</p>" for x in result))


def _range(*args: int) -> range:
    rng = range(*args)
    tb.current().need(len(rng) * 8, f"range() of {len(rng):,} items")
    return rng


def install(env: Any) -> None:
    """Put every filter and global of ``env`` behind the budget."""
    env.filters["join"] = _join_filter(env.filters["join"])
    env.filters["sum"] = _sum
    env.filters["wordcount"] = _wordcount
    for name, f in list(env.filters.items()):
        env.filters[name] = _guard(name, f)
    env.globals["range"] = _range
    env.globals["lipsum"] = _lipsum
