"""Pipeline params: a default and enum values must be of the declared type."""

from __future__ import annotations

from typing import Any

from agentform.engine.errors import Diagnostic
from agentform.engine.loader import LoadedManifest

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,),
}
_NOUN = {"string": "a string", "integer": "an integer", "number": "a number",
         "boolean": "true or false", "object": "a mapping", "array": "a list"}


def fits(value: Any, type_name: str) -> bool:
    """Whether a YAML value is of a param type (booleans are not numbers)."""
    if isinstance(value, bool) and type_name != "boolean":
        return False
    return isinstance(value, _TYPES[type_name])


def check_params(m: LoadedManifest) -> list[Diagnostic]:
    """Each param's default and enum values fit its type; the default is one of the enum."""
    out = []
    raw_params = m.raw["spec"].get("params") or {}
    for name, param in m.resource.spec.params.items():  # type: ignore[attr-defined]
        base = ("spec", "params", name)
        raw = raw_params.get(name) or {}
        for i, value in enumerate(param.enum or []):
            if not fits(value, param.type):
                out.append(m.diag(f"param '{name}': enum value {value!r} is not {_NOUN[param.type]}",
                                  *base, "enum", i))
        if "default" not in raw or param.default is None:
            continue
        if not fits(param.default, param.type):
            out.append(m.diag(f"param '{name}': default {param.default!r} is not {_NOUN[param.type]}",
                              *base, "default"))
        elif param.enum is not None and param.default not in param.enum:
            out.append(m.diag(f"param '{name}': default {param.default!r} is not one of its enum values",
                              *base, "default"))
    return out
