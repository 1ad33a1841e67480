"""A run's workspaces: their configs from the pinned graph, provisioned and locked at the start.

The process that executes a run makes sure each workspace of the run's graph exists on this
machine (``provision``, idempotent; the seed pinned at apply is copied in at the first one) and
holds it exclusively while it executes (lock.py). Which workspace a tool call acts in is the
one of the nearest team or pipeline around the calling agent (``CURRENT``, a context variable
set where a team or pipeline with a ``workspace`` starts; the run's root sets it first).
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


async def open_workspaces(graph: Graph, home: Path | str, holder: str, *, wait: bool = True,
                          on_wait: Any = None, held: HeldLocks | None = None) -> HeldLocks | None:
    """Lock every workspace of ``graph`` for ``holder`` (unless ``held`` already: waiting for
    another run unless not ``wait``: WorkspaceBusy), then provision each; None when it has none."""
    if not graph.workspaces:
        return None
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
