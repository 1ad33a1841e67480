"""Pinned tool definitions: what `apply` saw a ToolServer offer, and what a run compares with.

A pin is a hash of one tool's name, description and input schema as the server sent them
(before redaction, so the same definition always gives the same hash). `apply` records the
pins of every ToolServer it reaches in the revision (``extra.toolPins``) and in each compiled
graph (``Graph.tool_pins``); a run refuses a tool whose definition differs from its pin, or
that was not offered at apply (a "rug pull"), until the next `apply` pins it again, and
records what it saw in the ToolServer's status (``Ready=False``, ``ToolDefinitionChanged``),
which `plan` shows as drift. Pure functions, except ``record_changed`` (one status write).
"""

from __future__ import annotations

from typing import Any

from agentform.engine.hashing import digest

CHANGED = "ToolDefinitionChanged"
SHORT = 19  # "sha256:" and 12 hex digits: enough to tell two definitions apart in a message


def definition_hash(name: str, description: str | None, input_schema: Any) -> str:
    return digest({"name": name, "description": description or "", "inputSchema": input_schema or {}})


def pins_of(tools: list[Any]) -> dict[str, str]:
    """The pins of tools as listed by an MCP client (``name``, ``description``, ``input_schema``)."""
    return {t.name: definition_hash(t.name, t.description, t.input_schema) for t in tools}


def refused(pinned: dict[str, str], seen: dict[str, str]) -> dict[str, str]:
    """Tools offered now that differ from their pin or had none, with why (for the model's error)."""
    out: dict[str, str] = {}
    for name, now in seen.items():
        then = pinned.get(name)
        if then is None:
            out[name] = "it was not offered when its server was pinned"
        elif then != now:
            out[name] = f"its definition changed since it was pinned ({then[:SHORT]}, now {now[:SHORT]})"
    return out


def listing(pins: dict[str, str]) -> str:
    """``convert_time (sha256:1a2b…), get_time (…)``: what describe shows of a pinned server."""
    return ", ".join(f"{name} ({pin[:SHORT]})" for name, pin in sorted(pins.items()))


def printable(text: str, limit: int = 160) -> str:
    """A server-supplied text for a status line: one line, control and bidi characters escaped."""
    out = []
    for ch in text[:limit]:
        if ch.isprintable() and ch not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out) + ("…" if len(text) > limit else "")


def changed_message(server: str, why: dict[str, str], descriptions: dict[str, str]) -> str:
    parts = []
    for name in sorted(why):
        part = f"{name}: {why[name]}"
        if descriptions.get(name):
            part += f'; description now "{printable(descriptions[name])}"'
        parts.append(part)
    return (f"tool server {server} offers tool definitions that differ from the pinned ones, refused in "
            f"runs until the next `agentform apply` pins them: {'; '.join(parts)}")


def record_changed(store: Any, server: str, message: str) -> None:
    """Record a run's observation in the ToolServer's status (what `plan` then shows as drift)."""
    from agentform.engine.redaction import redact_text
    from agentform.engine.store.base import Condition
    from agentform.specs import ResourceKey

    if "/" not in server:
        return  # a built-in (``builtin:NAME``) has no ToolServer resource
    namespace, name = server.split("/", 1)
    key = ResourceKey("ToolServer", namespace, name)
    record = store.get_resource(key)
    if record is None:
        return  # pruned since the run's revision: nobody to tell
    message = redact_text(message)
    store.set_status(key, [Condition("Ready", "False", CHANGED, message),
                           Condition("Reconciling", "False", CHANGED, ""),
                           Condition("Stalled", "True", CHANGED, message)], record.generation)
