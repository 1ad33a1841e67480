"""What a stdio ToolServer's ``command`` may read from its run: ``{{ run.id }}``, ``{{ workspace.path }}``.

``{{ workspace.path }}`` is the folder of the workspace in effect where the server starts
(the team's or pipeline's around the first agent that uses it; the run target's for an eager
server), so that a server such as ``mcp-server-git`` works on the team's files.
"""

from __future__ import annotations

from agentform.engine import templates
from agentform.engine.errors import Diagnostic
from agentform.engine.loader import LoadedManifest

AVAILABLE = ("run", "workspace")


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
            if name not in AVAILABLE:
                out.append(m.diag(f"spec.command[{i}]: unknown name '{name}' (available: "
                                  f"{', '.join(AVAILABLE)})", *where))
    return out
