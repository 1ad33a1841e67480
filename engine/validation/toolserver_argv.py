"""What a stdio ToolServer's ``command`` may read from its run: ``{{ run.id }}``.

``{{ workspace.path }}`` names the folder of the run's workspace; this version provisions no
workspaces yet, so a run would start the server with an empty string there (a server told
to work in "" works in its current directory): refused at validate instead.
"""

from __future__ import annotations

from agentform.engine import templates
from agentform.engine.errors import Diagnostic
from agentform.engine.loader import LoadedManifest

AVAILABLE = ("run",)


def check_command_context(m: LoadedManifest) -> list[Diagnostic]:
    command = m.raw.get("spec", {}).get("command") or []
    out: list[Diagnostic] = []
    for i, part in enumerate(command):
        if not isinstance(part, str) or "{" not in part:
            continue
        try:
            names = templates.undeclared(templates.parse(part))
        except Exception:  # noqa: BLE001 - a syntax error is check_toolserver's to report
            continue
        where = ("spec", "command", i)
        for name in sorted(names):
            if name == "workspace":
                out.append(m.diag(f"spec.command[{i}]: {{{{ workspace.path }}}} needs a Workspace, which this "
                                  "version does not provision yet; write the folder's path instead", *where))
            elif name not in AVAILABLE:
                out.append(m.diag(f"spec.command[{i}]: unknown name '{name}' (available: "
                                  f"{', '.join(AVAILABLE)})", *where))
    return out
