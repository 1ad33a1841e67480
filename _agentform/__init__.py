"""agentform: a declarative GitOps engine for teams of LLM agents.

The public Python API: ``Engine`` (the one door the CLI, the HTTP app and the MCP server
go through), the error types it raises and the typed results it returns. Everything is
imported on first use, so that ``import agentform`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it (imported when the name is first used).
_EXPORTS: dict[str, str] = {
    "Engine": "agentform.engine.api",
    "RunResult": "agentform.engine.api",
    # errors (engine/errors.py): faces catch these, never import engine modules
    "AgentformError": "agentform.engine.errors",
    "ManifestError": "agentform.engine.errors",
    "UsageError": "agentform.engine.errors",
    "NotFound": "agentform.engine.errors",
    "StoreError": "agentform.engine.errors",
    "LockHeld": "agentform.engine.errors",
    "RunTakenOver": "agentform.engine.errors",
    "PlanStale": "agentform.engine.errors",
    "PlanDigestMismatch": "agentform.engine.errors",
    "RunError": "agentform.engine.errors",
    "BudgetExceeded": "agentform.engine.errors",
    "WorkspaceError": "agentform.engine.errors",
    "WorkspaceBusy": "agentform.engine.errors",
    "PathRefused": "agentform.engine.errors",
    "Diagnostic": "agentform.engine.errors",
    "printable": "agentform.engine.errors",
    # records and views that Engine methods return
    "Event": "agentform.engine.store.base",
    "RunRecord": "agentform.engine.store.base",
    "Condition": "agentform.engine.store.base",
    "ValidationReport": "agentform.engine.validation.report",
    "ResourceStatus": "agentform.engine.views",
    "ResourceDetail": "agentform.engine.views",
    "RevisionInfo": "agentform.engine.views",
    "RevisionDiff": "agentform.engine.views",
    "ResourceChange": "agentform.engine.views",
    "RunInfo": "agentform.engine.views",
    "RunPage": "agentform.engine.views",
    "ThreadInfo": "agentform.engine.views",
    "RunDetail": "agentform.engine.views",
    "SENSITIVE": "agentform.engine.plan",   # how a plan shows a secret-bearing value
    # `watch` and `get app` (engine/gitops/)
    "SyncResult": "agentform.engine.gitops.sync",
    "AppStatus": "agentform.engine.gitops.status",
    "MemoryScope": "agentform.engine.store.memory",   # `agentform memory`
    "MemoryEntry": "agentform.engine.store.memory",
    "KnowledgeError": "agentform.engine.errors",
    # `serve` and `token` (engine/tokens.py, audit.py, cost.py)
    "TokenInfo": "agentform.engine.tokens",
    "CreatedToken": "agentform.engine.tokens",
    "AuditEntry": "agentform.engine.audit",
    "CostReport": "agentform.engine.cost",
    "CostRow": "agentform.engine.cost",
    "GcReport": "agentform.engine.retention",   # `gc`
    "GcRun": "agentform.engine.retention",
    "GcKept": "agentform.engine.retention",
    "KnowledgeHits": "agentform.engine.knowledge.search",   # Engine.search_knowledge
    "KnowledgeHit": "agentform.engine.knowledge.search",
}

__all__ = [  # kept equal to _EXPORTS plus __version__ (tests/project/test_one_door.py)
    "AgentformError", "BudgetExceeded", "Condition", "Diagnostic", "Engine", "Event", "LockHeld",
    "ManifestError", "NotFound", "PathRefused", "PlanDigestMismatch", "PlanStale", "ResourceChange",
    "ResourceDetail", "ResourceStatus", "RevisionDiff", "RevisionInfo", "RunError", "RunInfo",
    "RunPage", "RunRecord", "RunResult", "RunTakenOver", "StoreError", "ThreadInfo", "UsageError",
    "ValidationReport", "WorkspaceBusy", "WorkspaceError", "__version__", "printable",
    "SyncResult", "AppStatus", "MemoryScope", "MemoryEntry", "RunDetail", "SENSITIVE",
    "KnowledgeError", "KnowledgeHits", "KnowledgeHit",
    "TokenInfo", "CreatedToken", "AuditEntry", "CostReport", "CostRow",
    "GcReport", "GcRun", "GcKept",
]

if TYPE_CHECKING:
    from agentform.engine.api import Engine, RunResult
    from agentform.engine.audit import AuditEntry
    from agentform.engine.cost import CostReport, CostRow
    from agentform.engine.errors import (
        AgentformError,
        BudgetExceeded,
        Diagnostic,
        KnowledgeError,
        LockHeld,
        ManifestError,
        NotFound,
        PathRefused,
        PlanDigestMismatch,
        PlanStale,
        RunError,
        RunTakenOver,
        StoreError,
        UsageError,
        WorkspaceBusy,
        WorkspaceError,
        printable,
    )
    from agentform.engine.gitops.status import AppStatus
    from agentform.engine.gitops.sync import SyncResult
    from agentform.engine.knowledge.search import KnowledgeHit, KnowledgeHits
    from agentform.engine.plan import SENSITIVE
    from agentform.engine.retention import GcKept, GcReport, GcRun
    from agentform.engine.store.base import Condition, Event, RunRecord
    from agentform.engine.store.memory import MemoryEntry, MemoryScope
    from agentform.engine.tokens import CreatedToken, TokenInfo
    from agentform.engine.validation.report import ValidationReport
    from agentform.engine.views import (
        ResourceChange,
        ResourceDetail,
        ResourceStatus,
        RevisionDiff,
        RevisionInfo,
        RunDetail,
        RunInfo,
        RunPage,
        ThreadInfo,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentform' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value   # later look-ups skip this hook
    return value
