"""The scripted model's script files: found, well-formed, and naming existing agents."""

from __future__ import annotations

from agentform.engine.errors import Diagnostic, ManifestError
from agentform.engine.loader import ManifestSet, display_path, load_script_document, locate_in
from agentform.specs import Script
from agentform.specs.model import SCRIPTED

from .script_tools import ToolCallCheck
from .suggest import did_you_mean


def check_scripts(ms: ManifestSet) -> list[Diagnostic]:
    """Each scripted Model's script exists (relative to its manifest) and is valid."""
    out: list[Diagnostic] = []
    checked: set[tuple] = set()
    tool_calls = ToolCallCheck(ms)
    for m in ms.of_kind("Model"):
        spec = m.resource.spec  # type: ignore[attr-defined]
        if spec.model != SCRIPTED or not spec.script:
            continue
        path = (m.base_dir / spec.script).resolve()
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "not found"
            out.append(m.diag(f"script file '{spec.script}' {what} (paths are relative to this "
                              "manifest's folder)", "spec", "script"))
            continue
        if (path, m.namespace) in checked:
            continue
        checked.add((path, m.namespace))
        shown = display_path(path)
        try:
            script, doc = load_script_document(path, display=shown)
        except ManifestError as exc:
            out.extend(exc.diagnostics)
            continue
        agents = sorted(k.name for k in ms.claimed if k.kind == "Agent" and k.namespace == m.namespace)
        created = _created_agents(script)
        for key, turns in script.agents.items():
            agent = Script.agent_of(key)
            if agent in created and agent not in agents:
                continue   # made during the run by team-control's create_agent; its key is its name
            if agent not in agents:
                line, col = locate_in(doc, ("agents", key), True)
                out.append(Diagnostic(shown, line, col, f"script key '{key}': no Agent '{agent}' in "
                                      f"namespace '{m.namespace}'{did_you_mean(agent, agents)}"))
                continue
            for i, j, _name, message in tool_calls(path, agent, turns):
                line, col = locate_in(doc, ("agents", key, i, "toolCalls", j, "name"))
                out.append(Diagnostic(shown, line, col, f"script key '{key}': {message}"))
    return out


def _created_agents(script: Script) -> set[str]:
    """The names a script's own ``create_agent`` calls give (team-control agents made in a run)."""
    return {call.arguments["name"] for turns in script.agents.values() for turn in turns
            for call in turn.tool_calls
            if call.name == "create_agent" and isinstance(call.arguments, dict)
            and isinstance(call.arguments.get("name"), str)}
