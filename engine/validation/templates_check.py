"""Templates and expressions in manifests: Jinja2 syntax (at the line inside the manifest),
and in pipelines the names they read: ``stages.X`` upstream, ``params.X`` declared."""

from __future__ import annotations

import re
from typing import Any

from agentform.engine import templates
from agentform.engine.errors import Diagnostic
from agentform.engine.loader import LoadedManifest
from agentform.engine.runtime.pipeline_state import loop_members

from .graphs import upstream_sets
from .schema import dotted
from .suggest import did_you_mean

_HYPHENATED = re.compile(r"\bstages\.([a-z0-9][a-z0-9]*(?:-[a-z0-9]+)+)")
_ALWAYS = {"params", "stages", "workspace", "run", "now", "always", "failure", "success"}


def _position(m: LoadedManifest, path: tuple, source: str, line_in: int, needle: str | None = None) -> tuple:
    """Where line ``line_in`` (1-based) of a string value is: (line, col), or (line, col, file) when
    an overlay's patch wrote the value (its file, not the manifest's: engine/overlays.py)."""
    col_in = 0
    found = re.search(r"(?<![\w.])" + re.escape(needle) + r"(?!\w)", source) if needle else None
    if found is not None:
        index = found.start()
        line_in = source.count("\n", 0, index) + 1
        col_in = index - (source.rfind("\n", 0, index) + 1)
    file, doc, doc_path = m.text_origin(*path)
    start = doc.text_starts.get(doc_path)
    if start is not None:
        line, col, block = start
        if block:
            return line + line_in - 1, col + col_in, file
        if line_in == 1:  # exact on the first line; folded flow lines are approximate
            return line, col + col_in, file
        return line + line_in - 1, col, file
    where = m.locate(*path)
    return where.line + line_in - 1, where.col, where.file


def _at(m: LoadedManifest, position: tuple, message: str) -> Diagnostic:
    return Diagnostic(position[2] if len(position) > 2 else m.display, position[0], position[1], message)


def _strings(value: Any, path: tuple):
    """Every string inside a value (tool arguments), with its data path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, path + (i,))


def check_template(m: LoadedManifest, path: tuple, source: Any) -> Diagnostic | None:
    """A Jinja2 syntax error in a templated field, at its line inside the manifest."""
    if not isinstance(source, str):
        return None
    error = templates.syntax_error(source)
    if error is not None:
        return _at(m, _position(m, path, source, error[0]), f"template syntax error in {dotted(path)}: {error[1]}")
    return check_budget(m, path, source, expression=False)


def check_budget(m: LoadedManifest, path: tuple, source: str, *, expression: bool) -> Diagnostic | None:
    """A template that goes over the render budget before it reads the run's context."""
    error = templates.budget_error(source, expression=expression)
    if error is None:
        return None
    return _at(m, _position(m, path, source, error[0]), f"template over budget in {dotted(path)}: {error[1]}")


_INSTRUCTIONS = {"agent", "now", "run", "workspace", "vars", "params"}
_RUN_FIELDS = ("id", "input")


class Instructions:
    """An agent's instructions template, inline or from its ``instructionsFile``, and where to
    report a problem in it (the manifest, or the file at its own line and column)."""

    def __init__(self, m: LoadedManifest):
        self.m = m
        self.file: str | None = m.resource.spec.instructions_file  # type: ignore[attr-defined]
        self.path = ("spec", "instructionsFile") if self.file else ("spec", "instructions")
        self.display = ""
        self.error: Diagnostic | None = None
        if self.file is None:
            self.source = m.raw.get("spec", {}).get("instructions")
            return
        from agentform.engine.desired import read_instructions_file
        from agentform.engine.errors import ManifestError
        from agentform.engine.loader import display_path

        target = m.base_dir / self.file
        self.display = display_path(target)
        try:
            self.source = read_instructions_file(target)
        except ManifestError as exc:
            self.source = None
            self.error = m.diag(f"{dotted(self.path)} '{self.file}': {exc.diagnostics[0].message.split(': ', 1)[-1]}",
                                *self.path)

    def at(self, line_in: int, needle: str | None, message: str) -> Diagnostic:
        """A diagnostic at line ``line_in`` of the template (at ``needle`` when found)."""
        if self.file is None:
            return _at(self.m, _position(self.m, self.path, self.source, line_in, needle), message)
        col = 1
        found = re.search(r"(?<![\w.])" + re.escape(needle) + r"(?!\w)", self.source) if needle else None
        if found is not None:
            line_in = self.source.count("\n", 0, found.start()) + 1
            col = found.start() - (self.source.rfind("\n", 0, found.start()) + 1) + 1
        return Diagnostic(self.display, line_in, col, message)

    @property
    def what(self) -> str:
        return f"instructionsFile {self.file}" if self.file else dotted(self.path)


def check_agent(m: LoadedManifest) -> list[Diagnostic]:
    """An agent's instructions (inline or its instructionsFile): Jinja2 syntax, the render budget,
    and only the names the runtime provides."""
    text = Instructions(m)
    if text.error is not None:
        return [text.error]
    source = text.source
    if text.file is None:
        found = check_template(m, text.path, source)
        if found is not None:
            return [found]
    elif "{" in source:
        error = templates.syntax_error(source) or templates.budget_error(source)
        if error is not None:
            return [text.at(error[0], None, f"template error in {text.what}: {error[1]}")]
    if not isinstance(source, str) or "{" not in source:
        return []
    env = templates.environment()
    out = []
    for name in sorted(templates.undeclared(templates.parse(source)) - _INSTRUCTIONS - set(env.globals)):
        out.append(text.at(1, name, f"{text.what}: unknown name '{name}' "
                                    f"(available: {', '.join(sorted(_INSTRUCTIONS))})"))
    for ref in sorted(templates.referenced(source)):
        head, _, rest = ref.partition(".")
        if head == "run" and rest and rest.split(".", 1)[0] not in _RUN_FIELDS:
            out.append(text.at(1, ref, f"{text.what}: 'run' has {' and '.join(_RUN_FIELDS)}, not "
                                       f"'{rest.split('.', 1)[0]}'"))
    return out


def check_toolserver(m: LoadedManifest) -> list[Diagnostic]:
    command = m.raw.get("spec", {}).get("command") or []
    return [d for i, part in enumerate(command) if (d := check_template(m, ("spec", "command", i), part))]


def check_pipeline_templates(m: LoadedManifest) -> list[Diagnostic]:
    """Syntax of every template and expression of a pipeline, and the names they read."""
    spec = m.resource.spec  # type: ignore[attr-defined]
    raw_stages = m.raw["spec"]["stages"]
    names = [s.name for s in spec.stages]
    upstream = upstream_sets({s.name: [n for n in s.needs if n in names] for s in spec.stages})
    params = set(spec.params)
    loops = loop_members({s.name: s for s in spec.stages})
    out: list[Diagnostic] = []
    looped: frozenset[str] = frozenset()

    def visit(path: tuple, source: str, expression: bool, visible: set[str], extra: set[str]) -> None:
        if expression:
            error = templates.expression_error(source)
            if error is not None:
                out.append(_at(m, _position(m, path, source, 1), f"expression syntax error in {dotted(path)}: {error}"))
                return
            found = check_budget(m, path, source, expression=True)
            if found is not None:
                out.append(found)
                return
        else:
            found = check_template(m, path, source)
            if found is not None:
                out.append(found)
                return
        out.extend(_check_names(m, path, source, expression, visible, params, extra, names, looped))

    for i, stage in enumerate(spec.stages):
        base = ("spec", "stages", i)
        visible = upstream.get(stage.name, set())
        looped = loops.get(stage.name, frozenset())
        item = {"item"} if stage.for_each is not None else set()
        if looped:
            item |= {"loop"}
        raw = raw_stages[i]
        if stage.input is not None:
            visit(base + ("input",), stage.input, False, visible, item)
        if stage.instructions is not None:
            visit(base + ("instructions",), stage.instructions, False, visible, item)
        if stage.output is not None:
            out.extend(check_schema(m, stage.output.schema_, base + ("output", "schema")))
        if stage.approval is not None and isinstance(raw.get("approval"), dict) and "message" in raw["approval"]:
            visit(base + ("approval", "message"), stage.approval.message, False, visible, item)
        if stage.tool is not None:
            for path, text in _strings(raw.get("tool", {}).get("arguments", {}), base + ("tool", "arguments")):
                visit(path, text, False, visible, item)
        if stage.when is not None:
            visit(base + ("when",), stage.when, True, visible, item)
        if stage.for_each is not None:
            visit(base + ("forEach",), stage.for_each, True, visible, item - {"item"})
        for k, route in enumerate(stage.routes):
            visit(base + ("routes", k, "when"), route.when, True, visible | {stage.name}, item | {"output"})
    looped = frozenset()
    if spec.output is not None:
        visit(("spec", "output"), spec.output, False, set(names), set())
    return out


def check_schema(m: LoadedManifest, schema: Any, path: tuple) -> list[Diagnostic]:
    """An ``output.schema`` (an agent's or a stage's) must itself be a valid JSON Schema."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return [m.diag(f"{dotted(path)} is not a valid JSON Schema: {exc.message}", *path, *exc.path)]
    return []


def _check_names(
    m: LoadedManifest, path: tuple, source: str, expression: bool, visible: set[str],
    params: set[str], extra: set[str], stage_names: list[str], looped: frozenset[str] = frozenset(),
) -> list[Diagnostic]:
    out = []
    hyphen_heads: set[str] = set()
    hyphen_tails: set[str] = set()
    for match in _HYPHENATED.finditer(source):
        name = match.group(1)
        hyphen_heads.add(name.split("-", 1)[0])
        hyphen_tails.update(name.split("-")[1:])
        hint = f"stages['{name}']"
        out.append(_at(m, _position(m, path, source, 1, match.group(0)),
                       f"'{match.group(0)}' reads as 'stages.{name.split('-', 1)[0]}' minus '"
                       f"{name.split('-', 1)[1]}': write {hint}"))
    names = templates.referenced_expression(source) if expression else templates.referenced(source)
    for ref in sorted(names):
        head, _, rest = ref.partition(".")
        if not rest:
            continue
        field = rest.split(".", 1)[0]
        if head == "stages" and field not in hyphen_heads and field not in visible:
            own = len(path) > 2 and path[1] == "stages" and stage_names[path[2]] == field
            if own and looped:
                problem = (f"stage '{field}' cannot read its own output here; on its loop, its previous "
                           f"output is loop.previous{_attr(field)}.output (empty on the first visit: "
                           "add | default(...))")
            elif own:
                problem = f"stage '{field}' cannot read its own output here (only a route's when can)"
            elif field in looped:
                problem = (f"stage '{field}' is not upstream of this stage; it is on a loop back to it: "
                           f"read loop.previous{_attr(field)}.output (empty on the first visit: "
                           "add | default(...))")
            elif field in stage_names:
                problem = f"stage '{field}' is not upstream of this stage (add it to needs)"
            else:
                problem = f"unknown stage '{field}'{did_you_mean(field, stage_names)}"
            out.append(_at(m, _position(m, path, source, 1, f"stages.{field}"), f"{dotted(path)}: {problem}"))
        elif head == "params" and field not in params:
            out.append(_at(m, _position(m, path, source, 1, f"params.{field}"),
                           f"{dotted(path)}: param '{field}' is not declared in spec.params{did_you_mean(field, params)}"))
    out.extend(_loop_names(m, path, source, expression, "loop" in extra, looped))
    out.extend(_undeclared(m, path, source, expression, extra | hyphen_tails))
    return out


def _loop_names(m: LoadedManifest, path: tuple, source: str, expression: bool, on_loop: bool,
                looped: frozenset[str]) -> list[Diagnostic]:
    """``loop.visit`` and ``loop.previous.<stage>`` (outside ``{% for %}``, where ``loop`` is Jinja's)."""
    out = []
    for ref in sorted(templates.loop_references(source, expression=expression)):
        parts = ref.split(".")
        if not on_loop:
            out.append(_at(m, _position(m, path, source, 1, ref), (
                f"{dotted(path)}: 'loop' is only set in a stage on a loop (from a route's goto target "
                "to the stage that routes back); inside a {% for %} block it is Jinja's loop variable")))
            break
        if len(parts) < 2:
            continue
        if parts[1] not in ("visit", "previous"):
            out.append(_at(m, _position(m, path, source, 1, ref),
                           f"{dotted(path)}: 'loop' has visit and previous, not '{parts[1]}'"))
        elif parts[1] == "previous" and len(parts) > 2 and parts[2] not in looped:
            out.append(_at(m, _position(m, path, source, 1, ".".join(parts[:3])), (
                f"{dotted(path)}: stage '{parts[2]}' is not on a loop through this stage "
                f"(loop.previous holds: {', '.join(sorted(looped))})")))
    return out


def _undeclared(m: LoadedManifest, path: tuple, source: str, expression: bool, extra: set[str]) -> list[Diagnostic]:
    env = templates.environment()
    try:
        tree = templates.parse_expression(source) if expression else templates.parse(source)
    except Exception:  # noqa: BLE001 - syntax was checked already
        return []
    allowed = _ALWAYS | extra | set(env.globals)
    out = []
    for name in sorted(templates.undeclared(tree) - allowed):
        if name == "item":
            problem = "'item' is only set in a stage with forEach"
        elif name == "output":
            problem = "'output' is only set in a route's when (use stages.<name>.output)"
        else:
            shown = ", ".join(sorted((_ALWAYS | extra) - {"always", "failure", "success"}))
            problem = f"unknown name '{name}' (available: {shown})"
        out.append(_at(m, _position(m, path, source, 1, name), f"{dotted(path)}: {problem}"))
    return out


def _attr(name: str) -> str:
    return f"['{name}']" if "-" in name else f".{name}"
