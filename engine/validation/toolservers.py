"""A ToolServer's fields that its transport would ignore are errors, not silent no-ops.

``env`` is the environment of a stdio server's process: an http or sse server has no process
of ours to give it to, so a credential put there would never be sent. ``headers`` go on
HTTP requests: a stdio server has none. ``url`` and ``command`` likewise belong to one side.
Each diagnostic points at the ignored field and says where the value should go.
"""

from __future__ import annotations

from agentform.engine.errors import Diagnostic
from agentform.engine.loader import LoadedManifest

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
