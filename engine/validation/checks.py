"""Every semantic check, run over a loaded ManifestSet."""

from __future__ import annotations

from agentform.engine.errors import Diagnostic
from agentform.engine.loader import LoadedManifest, ManifestSet

from .agent_scopes import check_agent_scopes
from .graphs import (
    check_handoffs,
    check_manager_not_member,
    check_nesting_cycles,
    check_pipeline,
    check_tool_names,
    check_workspaces,
)
from .params import check_params
from .references import check_references
from .scripts import check_scripts
from .templates_check import check_agent, check_pipeline_templates, check_toolserver
from .toolserver_argv import check_command_context
from .toolservers import check_toolserver_fields, check_workspace_path_in_containers


def check_output_schema(m: LoadedManifest) -> list[Diagnostic]:
    """An agent's ``output.schema`` must itself be a valid JSON Schema."""
    output = m.resource.spec.output  # type: ignore[attr-defined]
    if output is None:
        return []
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    schema = output.schema_
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        path = ("spec", "output", "schema", *exc.path)
        return [m.diag(f"spec.output.schema is not a valid JSON Schema: {exc.message}", *path)]
    return []


_PER_KIND = {
    "Agent": (check_agent, check_output_schema),
    "ToolServer": (check_toolserver, check_command_context, check_toolserver_fields),
    "Team": (check_tool_names, check_manager_not_member, check_handoffs),
    "Pipeline": (check_pipeline, check_pipeline_templates, check_params),
}


def run_checks(ms: ManifestSet) -> None:
    """Add the diagnostics of every check across manifests to ``ms``."""
    for m in ms.manifests:
        for check in _PER_KIND.get(m.kind, ()):
            for d in check(m):
                ms.add(d)
    for check in (check_references, check_nesting_cycles, check_workspaces, check_scripts, check_agent_scopes,
                  check_workspace_path_in_containers):
        for d in check(ms):
            ms.add(d)
