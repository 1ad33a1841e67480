"""A ToolServer's fields that its transport would ignore are errors, not silent no-ops.

``env`` is the environment of a stdio server's process: an http or sse server has no process
of ours to give it to, so a credential put there would never be sent. ``headers`` go on
HTTP requests: a stdio server has none. ``url`` and ``command`` likewise belong to one side.
Each diagnostic points at the ignored field and says where the value should go.
"""

from __future__ import annotations

from agentform.engine.errors import Diagnostic
from agentform.engine.loader import LoadedManifest, ManifestSet

# field -> (transports that use it, what to do instead on the others)
_BELONGS = {
    "env": (("stdio",), "an {t} server is not a process of the engine's: send credentials with "
                        "'headers' (e.g. Authorization: {{secretRef: ..., format: 'Bearer {{}}'}})"),
    "headers": (("http", "sse"), "a stdio server gets no HTTP requests: give it values through 'env'"),
    "command": (("stdio",), "an {t} server is reached at its 'url': start it yourself, or make the "
                            "ToolServer transport: stdio"),
    "url": (("http", "sse"), "a stdio server is started from 'command' and spoken to over its stdin/stdout"),
}


def check_toolserver_fields(m: LoadedManifest) -> list[Diagnostic]:
    spec = m.raw.get("spec")
    if not isinstance(spec, dict):
        return []
    transport = spec.get("transport", "stdio")
    out: list[Diagnostic] = []
    for name, (transports, advice) in _BELONGS.items():
        value = spec.get(name)
        if transport in transports or value is None or value == {}:
            continue
        out.append(m.diag(f"spec.{name} does nothing on a ToolServer with transport: {transport} "
                          f"(it is for {' and '.join(transports)} servers); {advice.format(t=transport)}",
                          "spec", name, key=True))
    return out


def check_workspace_path_in_containers(ms: ManifestSet) -> list[Diagnostic]:
    """A stdio ToolServer whose ``command`` uses ``{{ workspace.path }}`` cannot serve a team or
    pipeline whose Workspace has ``backend: docker``: its files are in a volume of the Docker
    engine, and the path (``/workspace``) exists only inside the container, while the server
    would run on the engine's machine. Refused here, at the server's command, naming who uses it."""
    docker_rooms = {(m.namespace, m.name) for m in ms.of_kind("Workspace")
                    if m.resource.spec.backend == "docker"}  # type: ignore[attr-defined]
    if not docker_rooms:
        return []
    servers = {(m.namespace, m.name): (m, i) for m in ms.of_kind("ToolServer")
               for i in _workspace_parts(m)[:1]}
    if not servers:
        return []
    out: list[Diagnostic] = []
    reported: set[tuple] = set()
    for kind in ("Team", "Pipeline"):
        for owner in ms.of_kind(kind):
            ref = owner.resource.spec.workspace  # type: ignore[attr-defined]
            if ref is None or ref.resolve(owner.namespace) not in docker_rooms:
                continue
            room = "/".join(ref.resolve(owner.namespace))
            for user, server in _servers_used(ms, owner):
                if server not in servers or (server, room) in reported:
                    continue
                reported.add((server, room))
                m, i = servers[server]
                out.append(m.diag(
                    f"spec.command[{i}] uses {{{{ workspace.path }}}}, but {user} uses this server inside "
                    f"{kind} {owner.name}, whose Workspace {room} has backend: docker: its files live in a "
                    "container's volume, not on this machine, so a server started here cannot reach them. "
                    "Give the agents the built-in workspace tools (builtin: workspace), or use a Workspace "
                    "with backend: local", "spec", "command", i))
    return out


def _workspace_parts(m: LoadedManifest) -> list[int]:
    """Indexes of the ``command`` parts that read ``workspace``."""
    from agentform.engine import templates

    found = []
    for i, part in enumerate(m.raw.get("spec", {}).get("command") or []):
        if isinstance(part, str) and "workspace" in part and "{" in part:
            try:
                if "workspace" in templates.undeclared(templates.parse(part)):
                    found.append(i)
            except Exception:  # noqa: BLE001 - a syntax error is check_toolserver's to report
                continue
    return found


def _servers_used(ms: ManifestSet, owner: LoadedManifest):
    """(who, ToolServer key) for every server used under ``owner`` while its workspace is the one
    in effect: its agents, nested teams and pipelines without a workspace of their own, tool stages."""
    seen: set[tuple] = set()
    todo = [(owner.kind, owner.namespace, owner.name)]
    while todo:
        kind, ns, name = todo.pop()
        if (kind, ns, name) in seen:
            continue
        seen.add((kind, ns, name))
        m = ms.get(kind, ns, name)
        if m is None:
            continue
        spec = m.resource.spec
        if m is not owner and kind in ("Team", "Pipeline") and getattr(spec, "workspace", None) is not None:
            continue                               # its own workspace is in effect inside it
        if kind == "Agent":
            for tool in spec.tools:  # type: ignore[attr-defined]
                if tool.tool_server is not None:
                    yield f"Agent {name}", tool.tool_server.resolve(ns)
        elif kind == "Team":
            refs = [("Agent", spec.manager)]  # type: ignore[attr-defined]
            for member in spec.members:  # type: ignore[attr-defined]
                refs += [("Agent", member.agent)] if member.agent else [("Team", member.team)]
            todo += [(k, *ref.resolve(ns)) for k, ref in refs if ref is not None]
        else:
            for stage in spec.stages:  # type: ignore[attr-defined]
                if stage.tool is not None:
                    yield f"stage {stage.name} of Pipeline {name}", stage.tool.tool_server.resolve(ns)
                for k, ref in (("Agent", stage.agent), ("Team", stage.team), ("Pipeline", stage.pipeline)):
                    if ref is not None:
                        todo.append((k, *ref.resolve(ns)))
