"""One budget per template render: output size, size of every value built, CPU time.

The sandbox stops escapes; this module stops exhaustion, from inside the sandbox rather
than with OS limits (a render runs in the engine's own process). Every value a template
builds goes through a checkpoint (``call``, binary operators, ``~``, filters, output,
block buffers), which measures it and counts a tick; every 64 ticks (sooner after a large
value) the thread's CPU time is compared with the budget. Operations whose cost is not
bounded by their inputs (padding, ``replace``, ``join``, formatting widths, powers,
``lipsum``) are checked *before* they run, from their arguments, so nothing large is ever
allocated. Pure-Python filters that run as one step (wordwrap, urlize, pprint) accept at
most ``max_output`` characters, so that one step stays well under the CPU budget.
"""

from __future__ import annotations

import contextvars
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined
from jinja2.utils import Namespace

from agentform.engine import template_settings
from agentform.engine.template_settings import Limits

MAX_INT_BITS = 65_536  # integers stay small enough that any operation on them is instant
_TICKS = 64
_NESTING = 200


class OverBudget(SecurityError):
    """A render went over its budget; the message names the limit and its setting."""


class Budget:
    __slots__ = ("limits", "max_value", "max_allocated", "small", "allocated", "ticks", "deadline")

    def __init__(self, limits: Limits):
        self.limits = limits
        self.max_value = limits.max_intermediate
        # Small values are not added up: keeping many alive needs a growing list or
        # buffer, and those are counted.
        self.small = min(4096, limits.max_intermediate)
        self.max_allocated = limits.max_allocated
        self.allocated = 0
        self.ticks = _TICKS
        self.deadline: float | None = None

    def tick(self, n: int = 1) -> None:
        self.ticks -= n
        if self.ticks <= 0:
            self.check_cpu()

    def check_cpu(self) -> None:
        self.ticks = _TICKS
        now = time.thread_time()
        # The clock starts at the first check, so short renders never read it (it costs a
        # system call); what ran before that check is at most a few bounded steps.
        if self.deadline is None:
            self.deadline = now + self.limits.max_cpu
        elif now > self.deadline:
            raise OverBudget(f"template used more than {self.limits.max_cpu:g} s of CPU "
                             "(templates.maxCpu)")

    def need(self, size: int, what: str) -> None:
        """Refuse, before building it, a value of ``size`` characters/bytes."""
        if size > self.max_value:
            raise OverBudget(f"{what} would take {size:,} bytes, over the "
                             f"{_human(self.max_value)} limit for any value (templates.maxIntermediate)")

    def value(self, value: Any) -> Any:
        """Count a value just built against the budget; returns it."""
        kind = type(value)
        if kind is str or kind is bytes:
            size = len(value)
        elif kind is list or kind is tuple or kind is dict or kind is set:
            size = sys.getsizeof(value)
        elif isinstance(value, (str, bytes)):
            size = len(value)
        else:
            self.tick()
            return value
        if size <= self.small:  # the common case: only the CPU checkpoint
            self.ticks -= 1
            if self.ticks <= 0:
                self.check_cpu()
            return value
        if size > self.max_value:
            self.need(size, "a value")
        self.allocated += size
        if self.allocated > self.max_allocated:
            raise OverBudget(f"template built more than {_human(self.max_allocated)} of values "
                             "in one render (10 x templates.maxIntermediate)")
        self.tick(1 + (size >> 16))  # large values bring the next CPU check closer
        return value

    # -- text of values -------------------------------------------------------------------------
    def text(self, value: Any) -> str:
        """``str(value)``, refused before it is built when it would be over the budget."""
        kind = type(value)
        if kind is str:
            return value
        if kind is int or kind is float or kind is bool:
            return str(value)  # short: integers are capped, and Python caps their digits
        if isinstance(value, str):
            return value
        if isinstance(value, Undefined):
            return str(value)  # StrictUndefined raises its own clear error
        if isinstance(value, (list, tuple, dict, set, frozenset, Namespace)):
            self.need(self.text_size(value), "the text of a value")
        return self.value(str(value))

    def text_size(self, value: Any) -> int:
        """An upper estimate of ``len(str(value))``, computed without building it."""
        memo: dict[int, int] = {}
        return self._size_of(value, memo, 0)

    def _size_of(self, value: Any, memo: dict[int, int], depth: int) -> int:
        if isinstance(value, (str, bytes)):
            return len(value) * 4 + 3 if depth else len(value)  # escapes of repr()
        if isinstance(value, bool) or value is None:
            return 5
        if isinstance(value, int):
            return value.bit_length() // 3 + 2
        if isinstance(value, float):
            return 24
        if isinstance(value, Namespace):
            value = value._Namespace__attrs  # type: ignore[attr-defined]
        if not isinstance(value, (list, tuple, dict, set, frozenset)):
            return 80
        known = memo.get(id(value))
        if known is not None:
            return known
        if depth > _NESTING:
            raise OverBudget(f"value nested deeper than {_NESTING} levels")
        memo[id(value)] = 0  # a cycle prints as '...'
        self.tick()
        total = 2
        items = value.items() if isinstance(value, dict) else value
        for i, item in enumerate(items):
            if isinstance(item, tuple) and isinstance(value, dict):
                total += self._size_of(item[0], memo, depth + 1) + self._size_of(item[1], memo, depth + 1) + 4
            else:
                total += self._size_of(item, memo, depth + 1) + 2
            if total > self.max_value:
                return total  # enough to refuse; the rest need not be counted
            if not i & 255:
                self.tick()
        memo[id(value)] = total
        return total

    def collect(self, iterable: Any) -> list:
        """A lazy iterable as a list, counted item by item (filters would build it in C)."""
        out: list = []
        limit = self.max_value // 8
        for item in iterable:
            out.append(item)
            if len(out) > limit:
                self.need(len(out) * 8, "a list")
            self.tick()
        return out


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,} characters"


_current: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("agentform_template_budget", default=None)
def configured() -> Limits:
    """The budget of renders in this process (``template_settings``)."""
    return template_settings.current()


def current() -> Budget:
    """The budget of the render in progress (a fresh one outside renders, e.g. at compile)."""
    budget = _current.get()
    return budget if budget is not None else Budget(template_settings.current())


def start(limits: Limits) -> contextvars.Token:
    return _current.set(Budget(limits))


def stop(token: contextvars.Token) -> None:
    _current.reset(token)


# -- sizes of operations, computed before they run ------------------------------------------------
def replaced_size(s: Any, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(s, (str, bytes)) or not isinstance(old, type(s)) or not isinstance(new, type(s)):
        return 0
    found = len(s) + 1 if not old else s.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(s) + found * (len(new) - len(old))


def int_result_bits(operator: str, left: Any, right: Any) -> int:
    """Bits of an integer result of ``*`` or ``**`` (an upper bound), 0 for anything else."""
    if type(left) not in (int, bool) or type(right) not in (int, bool):
        return 0
    if operator == "*":
        return left.bit_length() + right.bit_length()
    if operator == "**" and right > 0 and abs(left) > 1:
        return left.bit_length() * right
    return 0


_PERCENT = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


def percent_size(budget: Budget, fmt: str, args: Any) -> int:
    """An upper estimate of ``len(fmt % args)``: widths, precisions and the text of the values."""
    positional = list(args) if isinstance(args, tuple) else [args]
    total = len(fmt)
    index = 0

    def take() -> Any:
        nonlocal index
        value = positional[index] if index < len(positional) else 0
        index += 1
        return value

    for match in _PERCENT.finditer(fmt):
        key, width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        for part in (width, precision):
            if part == "*":
                part = take()
            if isinstance(part, str) and part.isdigit():
                part = int(part)
            if isinstance(part, int):
                total += abs(part)
        if key is not None:
            value = args.get(key, "") if isinstance(args, dict) else ""
        else:
            value = take()
        total += budget.text_size(value) if conversion in "sra" else 400
    return total


_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?")


def spec_size(spec: str) -> int:
    """The width plus precision a ``str.format`` field spec asks for."""
    match = _SPEC.match(spec)
    if match is None:
        return 0
    width, precision = match.groups()
    return (int(width) if width else 0) + (int(precision) if precision else 0)


def is_lazy(value: Any) -> bool:
    return isinstance(value, Iterator) and not isinstance(value, Undefined)
