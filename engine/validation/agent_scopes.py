"""What an agent's instructions read from the containers around it: ``vars.X`` and ``params.X``.

A Team or Pipeline sets ``vars`` for every agent inside (an inner container's shadow an outer
one's); ``params`` are the innermost Pipeline's. Every Team and Pipeline can be run on its own,
so each one that reaches an agent (through managers, members, stages and nested containers)
is a way the agent runs: a name read without ``| default(...)`` (or an ``is defined`` test)
must be set on each of those ways. The error names the way, outermost first, and the
container that would have to set it. An agent run on its own has no vars and no params:
that needs ``| default``, at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentform.engine import templates
from agentform.engine.errors import Diagnostic
from agentform.engine.loader import LoadedManifest, ManifestSet

from .templates_check import Instructions

_MAX_DEPTH = 64


@dataclass
class _Reads:
    text: Instructions
    vars: dict[str, str]     # name -> the dotted reference as written (for its position)
    params: dict[str, str]


def _reads(m: LoadedManifest) -> _Reads | None:
    text = Instructions(m)
    if text.source is None or "{" not in text.source:
        return None
    found: dict[str, dict[str, str]] = {"vars": {}, "params": {}}
    for ref in templates.required(text.source):
        head, _, rest = ref.partition(".")
        if head in found and rest:
            found[head].setdefault(rest.split(".", 1)[0], ref)
    if not found["vars"] and not found["params"]:
        return None
    return _Reads(text, found["vars"], found["params"])


def check_agent_scopes(ms: ManifestSet) -> list[Diagnostic]:
    """``vars.X`` and ``params.X`` in instructions, against every Team and Pipeline reaching the agent."""
    readers = {m.key: r for m in ms.of_kind("Agent") if (r := _reads(m)) is not None}
    if not readers:
        return []
    out: list[Diagnostic] = []
    reported: set[tuple] = set()

    def agent(key, chain: list[LoadedManifest], vars: set[str], params: set[str] | None) -> None:
        reads = readers.get(key)
        if reads is None:
            return
        way = " > ".join(f"{c.kind} {c.name}" for c in chain)
        inner = chain[-1]
        for name, ref in sorted(reads.vars.items()):
            if name not in vars and (key, ref, chain[0].key) not in reported:
                reported.add((key, ref, chain[0].key))
                out.append(reads.text.at(1, ref, (
                    f"{reads.text.what}: var '{name}' is not set when {way} runs this agent: set it in "
                    f"vars of {inner.kind} '{inner.name}' (or of a container around it), or write "
                    f"{{{{ {ref} | default(...) }}}}")))
        for name, ref in sorted(reads.params.items()):
            if params is not None and name in params or (key, ref, chain[0].key) in reported:
                continue
            reported.add((key, ref, chain[0].key))
            pipeline = next((c for c in reversed(chain) if c.kind == "Pipeline"), None)
            why = (f"param '{name}' is not declared by Pipeline '{pipeline.name}', the innermost pipeline "
                   f"when {way} runs this agent; declare it there, or write" if pipeline is not None else
                   f"when {way} runs this agent there are no params (only a Pipeline declares them); write")
            out.append(reads.text.at(1, ref, f"{reads.text.what}: {why} {{{{ {ref} | default(...) }}}}"))

    def walk(m: LoadedManifest, chain: list[LoadedManifest], vars: set[str], params: set[str] | None) -> None:
        if any(c is m for c in chain) or len(chain) >= _MAX_DEPTH:   # a cycle: the nesting check says so
            return
        chain = [*chain, m]
        spec = m.resource.spec  # type: ignore[attr-defined]
        vars = vars | set(spec.vars or ())
        if m.kind == "Pipeline":
            params = set(spec.params)
            refs = [(kind, getattr(stage, kind)) for stage in spec.stages
                    for kind in ("agent", "team", "pipeline") if getattr(stage, kind) is not None]
        else:
            refs = [("agent", spec.manager)] + [("agent" if mb.agent is not None else "team", mb.ref)
                                                for mb in spec.members]
        for kind, ref in refs:
            ns, name = ref.resolve(m.namespace)
            target = ms.get(kind.capitalize(), ns, name)
            if target is None:
                continue   # reported by the reference check
            if kind == "agent":
                agent(target.key, chain, vars, params)
            else:
                walk(target, chain, vars, params)

    for root in [*ms.of_kind("Team"), *ms.of_kind("Pipeline")]:
        walk(root, [], set(), None)
    return out
