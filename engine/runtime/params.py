"""A pipeline's params at the start of a run: typed, defaulted, checked against enums.

``run -p k=v`` hands in strings; the Python API may hand in native values. Both are
converted to the declared type here, before the run exists, so a bad value never starts
a run (CONTRACT section 7).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from agentform.engine.errors import RunError, UsageError
from agentform.engine.graph import Graph, PipelineNode
from agentform.specs.pipeline import Param

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce_params(node: PipelineNode, raw: dict[str, Any], input_text: str | None) -> dict[str, Any]:
    """Every declared param with its typed value; UsageError naming the param otherwise."""
    declared = node.spec.params
    given = dict(raw or {})
    what = f"pipeline '{node.name}'"
    if input_text is not None:
        if "input" not in declared:
            raise UsageError(
                f"{what} declares no param 'input', so -i is refused; "
                f"pass values with -p NAME=VALUE ({_declared(declared)})"
            )
        if "input" in given:
            raise UsageError(f"param 'input' of {what} given twice (-i and -p input=...)")
        given["input"] = input_text
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise UsageError(f"unknown param '{unknown[0]}' for {what} ({_declared(declared)})")
    values: dict[str, Any] = {}
    missing: list[str] = []
    for name, param in declared.items():
        if name in given:
            values[name] = convert(name, param, given[name], what)
        elif param.default is not None:
            values[name] = copy.deepcopy(param.default)
        else:
            missing.append(name)
            continue
        if param.enum is not None and values[name] not in param.enum:
            choices = ", ".join(json.dumps(c) for c in param.enum)
            raise UsageError(
                f"param '{name}' of {what}: {json.dumps(values[name])} is not one of {choices}"
            )
    if missing:
        raise UsageError(
            f"param '{missing[0]}' of {what} is required (it has no default): "
            f"pass it with -p {missing[0]}=VALUE"
        )
    return values


def convert(name: str, param: Param, value: Any, what: str) -> Any:
    """``value`` (a CLI string or a native value) as ``param``'s declared type."""
    kind = param.type
    try:
        if kind == "string":
            if isinstance(value, str):
                return value
        elif kind == "integer":
            if isinstance(value, str):
                return int(value.strip(), 10)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif kind == "number":
            if isinstance(value, str):
                text = value.strip()
                return int(text, 10) if text.lstrip("+-").isdigit() else float(text)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value
        elif kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
        elif kind in ("object", "array"):
            parsed = json.loads(value) if isinstance(value, str) else value
            if isinstance(parsed, dict if kind == "object" else list):
                return parsed
    except ValueError:
        pass
    shown = value if isinstance(value, str) else json.dumps(value, default=str)
    hint = {
        "integer": "a whole number such as 3",
        "number": "a number such as 0.5",
        "boolean": "true or false",
        "object": 'a JSON object such as {"k": 1}',
        "array": "a JSON array such as [1, 2]",
        "string": "text",
    }[kind]
    raise UsageError(f"param '{name}' of {what}: '{shown}' is not {hint} (type {kind})")


def check_runnable(node: PipelineNode, graph: Graph | None = None) -> None:
    """Refuse, before anything runs, a pipeline (or a nested one) whose tool stage names a tool
    server its stored graph does not hold (nothing could run it); tool stages themselves run."""
    if graph is None:
        return
    pending, seen = [node], set()
    while pending:
        current = pending.pop()
        if (current.namespace, current.name) in seen:
            continue
        seen.add((current.namespace, current.name))
        for stage in current.spec.stages:
            edge = current.targets.get(stage.name)
            if stage.tool is not None and (edge is None or edge.target not in graph.tool_servers):
                raise RunError(
                    f"pipeline '{current.name}' stage '{stage.name}' calls tool '{stage.tool.name}' "
                    "of a tool server that is not part of this run's revision; apply again: "
                    "nothing was run"
                )
        for edge in current.targets.values():
            if edge.kind == "pipeline" and edge.target in graph.pipelines:
                pending.append(graph.pipelines[edge.target])


def _declared(declared: dict[str, Param]) -> str:
    return "declared: " + ", ".join(sorted(declared)) if declared else "it declares no params"
