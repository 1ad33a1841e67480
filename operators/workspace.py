"""Workspace operator: provisions the room at apply, reports it, tears it down on prune.

Provisioning is the backend's idempotent ``provision`` (engine/workspaces/backend.py): the
folder or container exists afterwards, and the ``seed`` pinned at apply is copied in the
first time only. Status: Ready with the path, size and backend; ``Host`` names the machine a
local workspace lives on (a run elsewhere refuses it: rooms.py); a ``Warning`` condition for
``sandbox: none`` (SandboxDisabled) or a limit the machine cannot enforce (LimitNotEnforced).
A prune removes the room but keeps its data unless apply was given ``--prune-data``; either
way it says what it did (``ctx.notes``). A run provisions again, idempotently, where it executes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from agentform.engine.errors import WorkspaceError
from agentform.engine.store.base import AppliedResource, Condition
from agentform.engine.workspaces.rooms import this_host
from agentform.operators.base import BaseOperator, OperatorContext, failed, ready, register


def _config(ctx: OperatorContext, namespace: str, name: str, spec, seed: str | None):
    from agentform.engine.workspaces.backend import WorkspaceConfig

    config = WorkspaceConfig.from_spec(namespace, name, spec, home=ctx.home, owner=_owner(ctx, namespace, name))
    return replace(config, seed=Path(seed) if seed else None)


def _owner(ctx: OperatorContext, namespace: str, name: str) -> str:
    for key, d in ctx.desired.items():
        if key.kind in ("Team", "Pipeline"):
            ref = getattr(d.resource.spec, "workspace", None)
            if ref is not None and ref.resolve(key.namespace) == (namespace, name):
                return f"{key.kind}/{key.namespace}/{key.name}"
    return ""


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _warnings(found: tuple[str, ...] | list[str]) -> list[Condition]:
    out = []
    for text in found:
        reason, _, message = text.partition(": ")
        out.append(Condition("Warning", "True", reason, message))
    return out


class WorkspaceOperator(BaseOperator):
    kind = "Workspace"

    def provision(self, ctx: OperatorContext, desired) -> list[Condition]:
        from agentform.engine.workspaces.backend import backend_for

        key = desired.key
        config = _config(ctx, key.namespace, key.name, desired.resource.spec, desired.resolved.get("seed"))
        backend = backend_for(config.backend)
        try:
            result = backend.provision(config)
            status = backend.status(config)
        except WorkspaceError as exc:
            return failed("ProvisionFailed", str(exc))
        seeded = f"; seeded with {result.seeded} files" if result.seeded else ""
        placed = [Condition("Host", "True", "SingleHost", this_host())] if config.backend == "local" else []
        return [*ready("Provisioned", f"{config.backend} workspace at {status.path}, {_size(status.size)}{seeded}"),
                *placed, *_warnings(result.warnings)]

    def observe(self, ctx: OperatorContext, desired) -> list[Condition] | None:
        from agentform.engine.workspaces.backend import backend_for

        key = desired.key
        config = _config(ctx, key.namespace, key.name, desired.resource.spec, desired.resolved.get("seed"))
        try:
            status = backend_for(config.backend).status(config)
        except WorkspaceError as exc:
            return failed("Unreachable", str(exc))
        if not status.exists:
            return failed("Missing", f"the workspace is not at {status.path} on this machine; apply (or a run "
                                     "here) provisions it again")
        return ready("Provisioned", f"{config.backend} workspace at {status.path}, {_size(status.size)}")

    def teardown(self, ctx: OperatorContext, applied: AppliedResource) -> None:
        from agentform.engine.workspaces.backend import backend_for
        from agentform.specs.workspace import WorkspaceSpec

        key = applied.key
        spec = WorkspaceSpec.model_validate({k: v for k, v in applied.spec.get("spec", {}).items()})
        config = _config(ctx, key.namespace, key.name, spec, None)
        note = backend_for(config.backend).teardown(config, delete_data=getattr(ctx, "prune_data", False))
        notes = getattr(ctx, "notes", None)
        if notes is not None:
            notes.append(note)


register(WorkspaceOperator())
