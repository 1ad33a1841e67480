"""A run's workspaces: their configs from the pinned graph, provisioned and locked at the start.

The process that executes a run makes sure each workspace of the run's graph exists on this
machine (``provision``, idempotent; the seed pinned at apply is copied in at the first one) and
holds it exclusively while it executes (lock.py). Which workspace a tool call acts in is the
one of the nearest team or pipeline around the calling agent (``CURRENT``, a context variable
set where a team or pipeline with a ``workspace`` starts; the run's root sets it first).
"""

from __future__ import annotations

import asyncio
import os
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentform.engine.errors import WorkspaceError

from .backend import WorkspaceConfig, backend_for
from .lock import HeldLocks, acquire

if TYPE_CHECKING:
    from agentform.engine.graph import Graph

# The graph key ("ns/name") of the workspace in effect for the code running now.
CURRENT: ContextVar[str | None] = ContextVar("agentform_workspace", default=None)


def owner_of(graph: Graph, key: str) -> str:
    for team in graph.teams.values():
        if team.workspace == key:
            return f"Team/{team.namespace}/{team.name}"
    for pipeline in graph.pipelines.values():
        if pipeline.workspace == key:
            return f"Pipeline/{pipeline.namespace}/{pipeline.name}"
    return ""


def config_for(graph: Graph, key: str, home: Path | str) -> WorkspaceConfig:
    """The backend's view of workspace ``key`` of ``graph`` (its seed as pinned at apply)."""
    namespace, name = key.split("/", 1)
    config = WorkspaceConfig.from_spec(namespace, name, graph.workspaces[key], home=home,
                                       owner=owner_of(graph, key))
    seed = graph.workspace_seeds.get(key)
    return replace(config, seed=Path(seed) if seed else None)


def root_workspace(graph: Graph) -> str | None:
    """The workspace of the run's target (a team's or pipeline's own), or None."""
    node = graph.teams.get(graph.root) or graph.pipelines.get(graph.root)
    return node.workspace if node is not None else None


def this_host() -> str:
    return os.uname().nodename


def check_host(store: Any, config: WorkspaceConfig) -> None:
    """Refuse a local workspace that is not on this machine but was provisioned on another one
    (its ``Host`` condition): a single-host room is not made again, empty, elsewhere."""
    if config.backend != "local" or store is None or Path(backend_for("local").path(config)).is_dir():
        return
    from agentform.specs import ResourceKey

    record = store.get_resource(ResourceKey("Workspace", config.namespace, config.name))
    host = next((c.message for c in (record.conditions if record else ()) if c.type == "Host"), None)
    if host and host != this_host():
        raise WorkspaceError(f"Workspace {config.id} is a local workspace on host {host}, not on {this_host()}: "
                             "local workspaces are single-host; run this on that host (or on a worker there)")


async def open_workspaces(graph: Graph, home: Path | str, holder: str, *, wait: bool = True,
                          on_wait: Any = None, held: HeldLocks | None = None,
                          store: Any = None) -> HeldLocks | None:
    """Lock every workspace of ``graph`` for ``holder`` (unless ``held`` already: waiting for
    another run unless not ``wait``: WorkspaceBusy), then provision each; None when it has none.
    A local workspace that lives on another host (``store`` says) is refused: WorkspaceError."""
    if not graph.workspaces:
        return None
    if store is not None:
        for key in sorted(graph.workspaces):
            await asyncio.to_thread(check_host, store, config_for(graph, key, home))
    if held is None:
        held = await acquire(home, list(graph.workspaces), holder, wait=wait, on_wait=on_wait)
    try:
        for key in sorted(graph.workspaces):
            config = config_for(graph, key, home)
            await asyncio.to_thread(backend_for(config.backend).provision, config)
    except BaseException:
        held.release()
        raise
    return held
