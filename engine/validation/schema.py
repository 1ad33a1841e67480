"""Pydantic validation errors as located, human messages (one per location).

A pydantic ``loc`` mixes data keys with union member tags; we walk the actual data to
find the node each error is about, so an unknown field points at its key, a wrong type
at the value and a missing field at its mapping. Union alternatives collapse into one
message ("must be a string or a mapping").
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from agentform.engine.errors import Diagnostic
from agentform.specs.common import Ref, SecretRef

from .suggest import closest, did_you_mean

Locate = Callable[[tuple, bool], tuple[int, int]]

_NOUNS = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "string_type": "a string", "bool_type": "true or false", "bool_parsing": "true or false",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list", "none_required": "null",
}


def dotted(path: tuple) -> str:
    """``spec.stages[2].name`` for a data path."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _aliases(model: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def _type_at(root: type, loc: tuple) -> Any:
    """The declared type at a pydantic ``loc`` (None when it cannot be told)."""
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = _aliases(tp)
            if part not in fields:
                return None
            tp = fields[part]
        elif origin is list:
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        elif origin in (typing.Union, types.UnionType):
            members = [_unwrap(a) for a in typing.get_args(tp)]
            named = [m for m in members if getattr(m, "__name__", None) == part]
            if not named:
                return None
            tp = named[0]
        else:
            return None
    return _unwrap(tp)


def _data_path(data: Any, loc: tuple) -> tuple[tuple, tuple]:
    """(data path, the loc parts that matched data) for an error's ``loc``."""
    path: list = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
    return tuple(path), node


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return " (got a mapping)"
    if isinstance(value, list):
        return " (got a list)"
    if isinstance(value, bool):
        return f" (got {str(value).lower()})"
    if value is None:
        return " (got null)"
    text = repr(value) if isinstance(value, str) else str(value)
    return f" (got {text[:60]})"


def _where(root_name: str, path: tuple) -> str:
    if not path:
        return root_name
    if path == ("spec",):
        return f"{root_name} spec"
    return dotted(path)


def _noun(error: dict, root: type, loc: tuple) -> str | None:
    noun = _NOUNS.get(error["type"])
    if noun == "a mapping":
        target = _type_at(root, loc)
        if target is Ref:
            return "a name or a mapping {name, namespace}"
        if target is SecretRef:
            return "a mapping {secretRef: NAME}"
    return noun


def schema_diagnostics(
    exc: ValidationError, root: type, root_name: str, data: Any, file: str, locate: Locate
) -> list[Diagnostic]:
    """Located diagnostics for a pydantic error raised while validating ``data`` as ``root``."""
    groups: dict[tuple[int, int], dict[str, Any]] = {}
    items = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path, node = _data_path(data, loc)
        items.append((error, loc, path, node))
    # A type error at a path with errors deeper under it is a union alternative not meant.
    type_paths = [p for _, _, p, _ in items]
    # "unknown field 'modle' (did you mean 'model'?)" already says that 'model' is missing.
    suggested = set()
    for error, loc, path, _ in items:
        if error["type"] == "extra_forbidden":
            parent = _type_at(root, loc[:-1])
            if isinstance(parent, type) and issubclass(parent, BaseModel):
                best = closest(loc[-1], _aliases(parent))
                if best:
                    suggested.add((path[:-1], best))
    for error, loc, path, node in items:
        kind = error["type"]
        alternative = kind in _NOUNS or kind == "literal_error"
        if alternative and any(len(p) > len(path) and p[: len(path)] == path for p in type_paths):
            continue  # a union alternative the user did not mean: a deeper error explains it
        at_key = kind == "extra_forbidden"
        where = locate(path, at_key)
        group = groups.setdefault(where, {"nouns": [], "missing": [], "other": [], "path": path, "node": node})
        if kind in _NOUNS:
            noun = _noun(error, root, loc)
            if noun not in group["nouns"]:
                group["nouns"].append(noun)
        elif kind == "missing":
            if (path, str(loc[-1])) not in suggested:
                group["missing"].append(str(loc[-1]))
        else:
            message = _message(error, loc, path, node, root, root_name)
            if message not in group["other"]:
                group["other"].append(message)
    out = []
    for (line, col), group in groups.items():
        if not (group["other"] or group["missing"] or group["nouns"]):
            continue
        messages = list(group["other"])
        if group["missing"]:
            names = ", ".join(f"'{m}'" for m in dict.fromkeys(group["missing"]))
            plural = "s" if len(group["missing"]) > 1 else ""
            messages.append(f"missing required field{plural} {names} in {_where(root_name, group['path'])}")
        if group["nouns"] and not messages:
            prefix = dotted(group["path"]) or root_name
            messages.append(f"{prefix}: must be {' or '.join(group['nouns'])}{_got(group['node'])}")
        out.append(Diagnostic(file, line, col, "; ".join(messages)))
    return out


def _message(error: dict, loc: tuple, path: tuple, node: Any, root: type, root_name: str) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    prefix = dotted(path) or root_name
    if kind == "extra_forbidden":
        parent = _type_at(root, loc[:-1])
        options = _aliases(parent) if isinstance(parent, type) and issubclass(parent, BaseModel) else {}
        field = loc[-1]
        return f"unknown field '{field}' in {_where(root_name, path[:-1])}{did_you_mean(field, options)}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",")]
        return f"{prefix}: must be one of {expected}{_got(node)}{did_you_mean(node, options)}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"greater_than_equal": ("at least", "ge"), "greater_than": ("greater than", "gt"),
                 "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}[kind]
        return f"{prefix}: must be {words[0]} {ctx.get(words[1])}{_got(node)}"
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return f"{prefix}: must have at least {n} item{'s' if n != 1 else ''}"
    if kind == "too_long":
        return f"{prefix}: must have at most {ctx.get('max_length')} items"
    if kind == "string_too_short":
        return f"{prefix}: must not be empty"
    if kind == "string_pattern_mismatch":
        return f"{prefix}: must match the pattern {ctx.get('pattern')}{_got(node)}"
    message = str(error.get("msg", kind))
    for lead in ("Value error, ", "Assertion failed, "):
        if message.startswith(lead):
            message = message[len(lead):]
    if isinstance(node, (dict, list)):
        return message  # a model-level rule: said at the mapping
    return f"{prefix}: {message}"
